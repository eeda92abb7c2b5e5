import Bridge
import Glibc
import HostSupport
import Testing

/// ModifySettings `ContainerConstraints` (§7.10): new resource limits for a running container,
/// applied with `runc update`, checked in the container's cgroup files.
@Suite("End to end: container constraints", .timeLimit(.minutes(5)))
struct ContainerConstraintsTests {
    @Test("new memory and pids limits reach the running container's cgroup; misaddressed requests get the Go guest's errors")
    func updateLimits() async throws {
        try await withGuest("constraints") { guest in
            let id = "constraints"
            let initPID = try await startContainer(guest, id: id)
            let memoryLimit: Int64 = 200 << 20
            try await modify(guest, id, linux: .object([
                ("memory", .object([("limit", .int(memoryLimit))])),
                ("pids", .object([("limit", .int(64))])),
            ]))
            #expect(cgroupValue(pid: pid_t(initPID), controller: "memory", v1: "memory.limit_in_bytes", v2: "memory.max") == "\(memoryLimit)")
            #expect(cgroupValue(pid: pid_t(initPID), controller: "pids", v1: "pids.max", v2: "pids.max") == "64")

            // Resources Go cannot decode into LinuxResources (a string where a number belongs):
            // invalid JSON, before runc runs; what only runc can refuse comes back as its error.
            let malformed = await hresult { try await modify(guest, id, linux: .object([("cpu", .object([("shares", .string("lots"))]))])) }
            #expect(malformed == .invalidJSON)
            let negative = await hresult { try await modify(guest, id, linux: .object([("Memory", .object([("swappiness", .int(-1))]))])) }
            #expect(negative == .invalidJSON)  // keys match case-insensitively, as in Go
            let refused = await hresult { try await modify(guest, id, linux: .object([("cpu", .object([("cpus", .string("not-a-cpu-list"))]))])) }
            #expect(refused != nil && refused != .invalidJSON)

            // Addressed wrongly: to an unknown container, to the VM, or another type to a container.
            let unknown = await hresult { try await modify(guest, "no-such-container", linux: .emptyObject) }
            #expect(unknown == .systemNotFound)
            let toVM = await hresult { try await modify(guest, uvmContainerID, linux: .emptyObject) }
            #expect(toVM == .systemNotFound)
            do {
                let request = ModificationRequest(requestType: "Add", resourceType: "MappedDirectory",
                                                  settings: .mappedDirectory(MappedDirectory()))
                _ = try await guest.client.send(ModifySettingsRequest(base: RequestBase(containerId: id), request: request))
                Issue.record("a MappedDirectory for a container was accepted")
            } catch let error as GuestRPCError {
                #expect(error.hresult == .fail)
                #expect(error.base.errorMessage.contains("not supported for containers"), "\(error.base.errorMessage)")
            }

            let ok = try await guest.run(.exec(id, Busybox.process(args: ["echo", "alive"])))
            #expect(ok.stdoutText == "alive\n")
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
            #expect(try await wait(guest, id, initPID) == 137)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    private func modify(_ guest: LocalGuest, _ container: String, linux: JSONValue) async throws {
        let request = ModificationRequest(requestType: "Update", resourceType: "ContainerConstraints",
                                          settings: .containerConstraints(ContainerConstraints(linux: linux)))
        _ = try await guest.client.send(ModifySettingsRequest(base: RequestBase(containerId: container), request: request))
    }

    /// A cgroup file of the cgroup `pid` is in: `v2` under the unified hierarchy, else `v1` under
    /// `controller`'s hierarchy. Nil when the process or the file is not there.
    private func cgroupValue(pid: pid_t, controller: String, v1: String, v2: String) -> String? {
        guard let text = try? String(decoding: HostFiles.read("/proc/\(pid)/cgroup"), as: UTF8.self) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path: String
            if fields[0] == "0" && fields[1].isEmpty {
                path = "/sys/fs/cgroup\(fields[2])/\(v2)"
            } else if fields[1].split(separator: ",").contains(Substring(controller)) {
                path = "/sys/fs/cgroup/\(fields[1])\(fields[2])/\(v1)"
            } else {
                continue
            }
            if let value = try? HostFiles.read(path) {
                return String(decoding: value, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
            }
        }
        return nil
    }
}
