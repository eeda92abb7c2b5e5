import Bridge
import Glibc
import HostSupport
import Testing

/// The containers' parent cgroup (`/pods`; here the guest's `--cgroup-parent`) is limited to
/// the VM's RAM less `-root-mem-reserve-bytes` (guest-behaviour §3.2, §5, §7.10).
@Suite("End to end: the pods cgroup memory limit", .timeLimit(.minutes(5)))
struct PodsCgroupTests {
    @Test("set at start to RAM less the reserve; PodCgroupMemoryLimit recomputes it, as Update only; containers go under it")
    func podsMemoryLimit() async throws {
        let reserve: UInt64 = 64 << 20
        try await withGuest("pods-limit", arguments: ["-root-mem-reserve-bytes", "\(reserve)"]) { guest in
            let expected = try #require(totalRAM()) - reserve
            // The agent sets it before it serves: the negotiation answered, it is there.
            #expect(limit(of: guest.cgroupParent) == expected)

            let update = ModificationRequest(requestType: "Update", resourceType: "PodCgroupMemoryLimit", settings: .podCgroupMemoryLimit)
            _ = try await guest.client.send(ModifySettingsRequest(base: RequestBase(containerId: uvmContainerID), request: update))
            #expect(limit(of: guest.cgroupParent) == expected)

            for requestType in ["Add", ""] {  // "" is the implicit Add
                do {
                    let request = ModificationRequest(requestType: requestType, resourceType: "PodCgroupMemoryLimit", settings: .podCgroupMemoryLimit)
                    _ = try await guest.client.send(ModifySettingsRequest(base: RequestBase(containerId: uvmContainerID), request: request))
                    Issue.record("PodCgroupMemoryLimit accepted as \(requestType)")
                } catch let error as GuestRPCError {
                    #expect(error.hresult == .fail)
                    #expect(error.base.errorMessage.contains("the RequestType \"Add\" is not supported"), "\(error.base.errorMessage)")
                }
            }

            let id = "pods-member"
            let initPID = try await startContainer(guest, id: id)
            let cgroups = String(decoding: try HostFiles.read("/proc/\(initPID)/cgroup"), as: UTF8.self)
            #expect(cgroups.split(separator: "\n").contains { $0.contains(":\(guest.cgroupParent)/\(id)") }, "\(cgroups)")
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
            #expect(try await wait(guest, id, initPID) == 137)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    /// The memory limit of the cgroup at `path`, v2 or v1.
    private func limit(of path: String) -> UInt64? {
        let unified = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
        let file = unified ? "/sys/fs/cgroup\(path)/memory.max" : "/sys/fs/cgroup/memory\(path)/memory.limit_in_bytes"
        guard let bytes = try? HostFiles.read(file) else { return nil }
        return UInt64(String(decoding: bytes, as: UTF8.self).split(separator: "\n").first ?? "")
    }
}
