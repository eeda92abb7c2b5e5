import Bridge
import EventLoop
import Glibc
import HostSupport
import Testing

/// hcsshim's virtual pods (several pods in one VM), end to end: the container whose id is the
/// virtual pod's is its sandbox, with its files under `virtual-pods/<id>` beside its bundle;
/// the pod's workloads join it whatever sandbox id they name.
@Suite("End to end: virtual pods", .timeLimit(.minutes(5)))
struct VirtualPodTests {
    static let annotation = "io.microsoft.cri.virtual-pod-id"

    static func spec(_ args: [String], _ annotations: [(String, String)], hostname: String = "") -> JSONValue {
        guard case .object(var members) = PodVolumeTests.spec(args: args, annotations: annotations) else { return .null }
        if !hostname.isEmpty { members.append(("hostname", .string(hostname))) }
        return .object(members)
    }

    @Test("a virtual pod's sandbox keeps its files apart from its bundle; its workloads join it; all removed with it")
    func virtualPod() async throws {
        try await withGuest("virtual-pod") { guest in
            let pod = "vpod-a", workload = "vpod-a-work"
            // Its CRI type says "container": the id decides, as in Go's guest.
            try await guest.createContainer(id: pod, spec: Self.spec(["sleep", "3600"], [
                (Self.annotation, pod), ("io.kubernetes.cri.container-type", "container"),
            ], hostname: "virtual-a"))
            let root = "\(guest.workDirectory)/bundles/virtual-pods/\(pod)"
            #expect(String(decoding: try HostFiles.read("\(root)/hostname"), as: UTF8.self) == "virtual-a\n")
            #expect(access("\(guest.workDirectory)/bundles/\(pod)/hostname", F_OK) != 0)
            _ = try await guest.start(.containerInit(pod), stdout: false, stderr: false)
            // The sandbox id it names is not the pod's: the virtual pod's id counts.
            try await guest.createContainer(id: workload, spec: Self.spec(["cat", "/etc/hostname"], [
                (Self.annotation, pod), ("io.kubernetes.cri.container-type", "container"), ("io.kubernetes.cri.sandbox-id", "elsewhere"),
            ]))
            let hostname = try await guest.run(.containerInit(workload))
            #expect(hostname.stdoutText == "virtual-a\n", "\(hostname.stderrText)")
            let config = String(decoding: try HostFiles.read("\(guest.workDirectory)/bundles/\(workload)/config.json"), as: UTF8.self)
            #expect(config.contains("\"cgroupsPath\":\"\(guest.cgroupParent)/\(pod)/\(workload)\""))
            for id in [workload, pod] {
                _ = try? await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            }
            #expect(access(root, F_OK) != 0, "\(root) left behind")
        }
    }

    @Test("a sandbox of a virtual pod with another id, or a pod id that could climb out of its directory, is refused; nothing is left")
    func refused() async throws {
        try await withGuest("virtual-pod-refused") { guest in
            let other = Self.spec(["true"], [(Self.annotation, "vpod-b"), ("io.kubernetes.cri.container-type", "sandbox")])
            #expect(await hresult { try await guest.createContainer(id: "not-vpod-b", spec: other) } == .fail)
            let climbing = Self.spec(["true"], [(Self.annotation, "a..b")])
            #expect(await hresult { try await guest.createContainer(id: "a..b", spec: climbing) } == .fail)
            // A workload of a virtual pod that does not exist.
            let orphan = Self.spec(["true"], [(Self.annotation, "vpod-c"), ("io.kubernetes.cri.container-type", "container")])
            #expect(await hresult { try await guest.createContainer(id: "vpod-c-work", spec: orphan) } == .fail)
            #expect(access("\(guest.workDirectory)/bundles/virtual-pods", F_OK) != 0)
            for id in ["not-vpod-b", "a..b", "vpod-c-work"] { #expect(access("\(guest.workDirectory)/bundles/\(id)", F_OK) != 0, "\(id)") }
        }
    }
}
