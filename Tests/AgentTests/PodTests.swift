import Bridge
import EventLoop
import Glibc
import HostSupport
import Testing

@Suite("End to end: pods", .timeLimit(.minutes(5)))
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

    @Test("the pod cgroup carries the sandbox's resources and goes with the sandbox")
    func podCgroup() async throws {
        try await withGuest("pod-cgroup") { guest in
            let sandbox = "cg-sandbox"
            guard case .object(var members) = Busybox.spec(rootfs: sharedRootfs, args: ["sleep", "3600"]) else { return }
            members.append(("annotations", .object([("io.kubernetes.cri.container-type", .string("sandbox"))])))
            let resources: JSONValue = .object([("memory", .object([("limit", .int(256 << 20))])),
                                                ("cpu", .object([("shares", .int(512)), ("quota", .int(50_000)), ("period", .int(100_000)),
                                                                 ("cpus", .string("0")), ("mems", .string("0"))])),
                                                ("pids", .object([("limit", .int(100))]))])
            if let index = members.firstIndex(where: { $0.key == "linux" }), case .object(var linux) = members[index].value {
                linux.append(("resources", resources))
                members[index].value = .object(linux)
            }
            try await guest.createContainer(id: sandbox, spec: .object(members))
            let root = "/sys/fs/cgroup"
            let unified = access("\(root)/cgroup.controllers", F_OK) == 0
            func file(_ controller: String, _ name: String) -> String {
                unified ? "\(root)\(guest.cgroupParent)/\(sandbox)/\(name)" : "\(root)/\(controller)\(guest.cgroupParent)/\(sandbox)/\(name)"
            }
            func read(_ path: String) -> String {
                String((try? HostFiles.read(path)).map { String(decoding: $0, as: UTF8.self) }?.split(separator: "\n").first ?? "(missing)")
            }
            #expect(read(file("memory", unified ? "memory.max" : "memory.limit_in_bytes")) == "\(256 << 20)")
            #expect(read(file("pids", "pids.max")) == "100")
            // On v1 a new cpuset cgroup starts with no CPUs: its parents get theirs first.
            #expect(read(file("cpuset", unified ? "cpuset.cpus" : "cpuset.cpus")) == "0")
            #expect(read(file("cpuset", "cpuset.mems")) == "0")
            if unified {
                #expect(read(file("cpu", "cpu.max")) == "50000 100000")
            } else {
                #expect(read(file("cpu", "cpu.shares")) == "512")
                #expect(read(file("cpu", "cpu.cfs_quota_us")) == "50000")
            }
            // The sandbox container's own cgroup is inside the pod's.
            let initPID = try await guest.start(.containerInit(sandbox), stdout: false, stderr: false).pid
            let cgroups = (try? HostFiles.read("/proc/\(initPID)/cgroup")).map { String(decoding: $0, as: UTF8.self) } ?? ""
            #expect(cgroups.contains("\(guest.cgroupParent)/\(sandbox)/\(sandbox)"))
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: sandbox)))
            #expect(try await wait(guest, sandbox, initPID) == 137)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: sandbox)))
            for controller in unified ? [""] : ["memory", "cpu", "pids", "cpuset", "devices"] {
                let directory = unified ? "\(root)\(guest.cgroupParent)/\(sandbox)" : "\(root)/\(controller)\(guest.cgroupParent)/\(sandbox)"
                #expect(access(directory, F_OK) != 0, "\(directory) left behind")
            }
        }
    }

    /// The network namespace `pid` is in (the `net:[inode]` link).
    static func networkNamespace(_ pid: pid_t) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        let n = readlink("/proc/\(pid)/ns/net", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "(unreadable)"
    }

    @Test("host-network mode: the annotated sandbox and its workloads stay in the VM's network namespace; other pods get their own")
    func hostNetwork() async throws {
        try await withGuest("pod-host-network") { guest in
            func spec(_ annotations: [(String, String)]) -> JSONValue {
                guard case .object(var members) = Busybox.spec(rootfs: sharedRootfs, args: ["sleep", "3600"]) else { return .null }
                members.append(("annotations", .object(annotations.map { ($0.0, .string($0.1)) })))
                if let index = members.firstIndex(where: { $0.key == "linux" }), case .object(var linux) = members[index].value,
                   let ns = linux.firstIndex(where: { $0.key == "namespaces" }), case .array(let namespaces) = linux[ns].value {
                    linux[ns].value = .array(namespaces + [.object([("type", .string("network"))])])
                    members[index].value = .object(linux)
                }
                return .object(members)
            }
            let sandboxType = ("io.kubernetes.cri.container-type", "sandbox")
            let hostNetwork = ("io.microsoft.virtualmachine.lcow.hostnetwork", "true")
            let ids = ["hn-sandbox", "hn-workload", "own-sandbox", "own-workload"]
            // The last workload's own annotation counts for nothing: its pod has its own network.
            let specs = [spec([sandboxType, hostNetwork]),
                         spec([("io.kubernetes.cri.container-type", "container"), ("io.kubernetes.cri.sandbox-id", "hn-sandbox")]),
                         spec([sandboxType]),
                         spec([("io.kubernetes.cri.container-type", "container"), ("io.kubernetes.cri.sandbox-id", "own-sandbox"), hostNetwork])]
            var pids: [pid_t] = []
            for (id, spec) in zip(ids, specs) {
                try await guest.createContainer(id: id, spec: spec)
                pids.append(pid_t(try await guest.start(.containerInit(id), stdout: false, stderr: false).pid))
            }
            let vm = Self.networkNamespace(getpid())
            #expect(Self.networkNamespace(pids[0]) == vm)
            #expect(Self.networkNamespace(pids[1]) == vm)
            #expect(Self.networkNamespace(pids[2]) != vm)
            #expect(Self.networkNamespace(pids[3]) != vm)
            for id in ids.reversed() {
                _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            }
        }
    }
}
