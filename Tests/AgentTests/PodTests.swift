import Bridge
import EventLoop
import Glibc
import HostSupport
import Testing

@Suite("End to end: pods")
struct PodTests {
    @Test("a sandbox and a workload: the workload sees the pod's hostname and hosts; cgroups nest under the pod")
    func pod() async throws {
        try await withGuest("pod") { guest in
            func annotated(_ spec: JSONValue, _ annotations: [(String, String)], hostname: String) -> JSONValue {
                guard case .object(var members) = spec else { return spec }
                members.removeAll { $0.key == "annotations" || $0.key == "hostname" }
                members.append(("hostname", .string(hostname)))
                members.append(("annotations", .object(annotations.map { ($0.0, .string($0.1)) })))
                return .object(members)
            }
            let sandbox = "pod-sandbox", workload = "pod-workload"
            let sandboxSpec = annotated(Busybox.spec(rootfs: sharedRootfs, args: ["sleep", "3600"]),
                                        [("io.kubernetes.cri.container-type", "sandbox")], hostname: "my-pod")
            try await guest.createContainer(id: sandbox, spec: sandboxSpec)
            _ = try await guest.start(.containerInit(sandbox), stdout: false, stderr: false)
            // A workload for a pod that does not exist is refused.
            let orphan = annotated(Busybox.spec(rootfs: sharedRootfs, args: ["true"]),
                                   [("io.kubernetes.cri.container-type", "container"), ("io.kubernetes.cri.sandbox-id", "no-such-pod")], hostname: "")
            #expect(await hresult { try await guest.createContainer(id: "orphan", spec: orphan) } == .fail)
            let workloadSpec = annotated(Busybox.spec(rootfs: sharedRootfs, args: ["sleep", "3600"]),
                                         [("io.kubernetes.cri.container-type", "container"), ("io.kubernetes.cri.sandbox-id", sandbox)], hostname: "")
            try await guest.createContainer(id: workload, spec: workloadSpec)
            _ = try await guest.start(.containerInit(workload), stdout: false, stderr: false)
            let files = try await guest.run(.exec(workload, Busybox.process(args: ["sh", "-c", "cat /etc/hostname; grep my-pod /etc/hosts"])))
            #expect(files.stdoutText == "my-pod\n127.0.0.1 my-pod\n")
            let config = String(decoding: try HostFiles.read("\(guest.workDirectory)/bundles/\(workload)/config.json"), as: UTF8.self)
            #expect(config.contains("\"cgroupsPath\":\"\(guest.cgroupParent)/\(sandbox)/\(workload)\""))
            for id in [workload, sandbox] {
                _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            }
        }
    }
}
