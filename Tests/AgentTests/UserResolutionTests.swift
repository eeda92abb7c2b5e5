@testable import Agent
import Bridge
import Glibc
import HostSupport
import Testing

/// `process.user.username` becomes uid/gid from the container's own passwd and group files
/// (guest-behaviour §7.1, §7.3).
@Suite("User names", .timeLimit(.minutes(5)))
struct UserResolutionTests {
    @Test("the OCI image spec's user forms resolve against the rootfs; a name must match exactly once")
    func forms() throws {
        let rootfs = "/tmp/gcs-users-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(rootfs, 0o755) == 0 && mkdir("\(rootfs)/etc", 0o755) == 0)
        defer { HostFiles.removeTree(rootfs) }
        try writeFile("\(rootfs)/etc/passwd", Array("""
            # comment
            root:x:0:0:root:/root:/bin/sh
            app:x:1000:1001::/home/app:/bin/sh
            twice:x:7:7::/:/bin/sh
            twice:x:8:8::/:/bin/sh

            """.utf8))
        try writeFile("\(rootfs)/etc/group", Array("root:x:0:\nstaff:x:50:app\n".utf8))
        func resolve(_ user: String) throws -> UserResolution.Resolved { try UserResolution.resolve(user, rootfs: rootfs) }
        #expect(try resolve("app") == .init(uid: 1000, gid: 1001))
        #expect(try resolve("1000") == .init(uid: 1000, gid: 1001))
        #expect(try resolve("4242") == .init(uid: 4242, gid: 0))  // a uid need not exist
        #expect(try resolve("app:staff") == .init(uid: 1000, gid: 50))
        #expect(try resolve("4242:staff") == .init(uid: 4242, gid: 50))
        #expect(try resolve("app:9") == .init(uid: 1000, gid: 9))
        #expect(try resolve("5:6") == .init(uid: 5, gid: 6))
        for bad in ["nobody", "twice", "app:nogroup", "a:b:c", ""] {
            #expect(throws: BridgeError.self, "\(bad)") { _ = try resolve(bad) }
        }
        #expect(throws: BridgeError.self) { _ = try UserResolution.resolve("app", rootfs: "/nonexistent") }

        var process: JSONValue = .object([("user", .object([("uid", .int(0)), ("gid", .int(0)), ("username", .string("app:staff"))])),
                                          ("args", .array([.string("id")]))])
        #expect(try UserResolution.apply(to: &process, rootfs: rootfs))
        #expect(process["user"] == .object([("uid", .int(1000)), ("gid", .int(50))]))
        #expect(try !UserResolution.apply(to: &process, rootfs: rootfs))
    }

    @Test("passwd and group with CRLF line endings (split as Go's bufio.ScanLines does)")
    func crlf() throws {
        let rootfs = "/tmp/gcs-users-crlf-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(rootfs, 0o755) == 0 && mkdir("\(rootfs)/etc", 0o755) == 0)
        defer { HostFiles.removeTree(rootfs) }
        try writeFile("\(rootfs)/etc/passwd", Array("root:x:0:0:root:/root:/bin/sh\r\napp:x:1000:1000::/:/bin/sh\r\n".utf8))
        try writeFile("\(rootfs)/etc/group", Array("root:x:0:\r\nstaff:x:50:app\r\n".utf8))
        #expect(try UserResolution.resolve("app", rootfs: rootfs) == .init(uid: 1000, gid: 1000))
        #expect(try UserResolution.resolve("app:staff", rootfs: rootfs) == .init(uid: 1000, gid: 50))
    }

    @Test("passwd and group are read as the container sees them: symlinks stay in its root, only regular files, bounded")
    func containedReads() throws {
        let rootfs = "/tmp/gcs-users-root-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(rootfs, 0o755) == 0 && mkdir("\(rootfs)/etc", 0o755) == 0 && mkdir("\(rootfs)/data", 0o755) == 0)
        defer { HostFiles.removeTree(rootfs) }
        // An absolute symlink names the container's file, not the VM's: in the VM's own
        // /etc/passwd "root" is uid 0, in the container's it is 4321.
        try writeFile("\(rootfs)/data/passwd", Array("root:x:4321:4321::/:/bin/sh\n".utf8))
        #expect(symlink("/data/passwd", "\(rootfs)/etc/passwd") == 0)
        #expect(try UserResolution.resolve("root", rootfs: rootfs) == .init(uid: 4321, gid: 4321))
        // `..` cannot climb out of the root either.
        #expect(unlink("\(rootfs)/etc/passwd") == 0 && symlink("../../../../../../data/passwd", "\(rootfs)/etc/passwd") == 0)
        #expect(try UserResolution.resolve("root", rootfs: rootfs) == .init(uid: 4321, gid: 4321))
        // A symlink to a device the VM has (an endless file) resolves inside the root, where there is none.
        #expect(unlink("\(rootfs)/etc/passwd") == 0 && symlink("/dev/zero", "\(rootfs)/etc/passwd") == 0)
        #expect(throws: BridgeError.self) { _ = try UserResolution.resolve("root", rootfs: rootfs) }
        // A FIFO would block its reader until someone writes: refused at once.
        #expect(unlink("\(rootfs)/etc/passwd") == 0 && mkfifo("\(rootfs)/etc/passwd", 0o644) == 0)
        #expect(throws: BridgeError.self) { _ = try UserResolution.resolve("root", rootfs: rootfs) }
        // A file too large to be a passwd file is refused, not read.
        #expect(unlink("\(rootfs)/etc/passwd") == 0)
        let fd = open("\(rootfs)/etc/passwd", O_WRONLY | O_CREAT, 0o644)
        #expect(fd >= 0 && ftruncate(fd, 64 << 20) == 0)
        close(fd)
        #expect(throws: BridgeError.self) { _ = try UserResolution.resolve("root", rootfs: rootfs) }
    }

    @Test("a container whose spec names its user runs as it; execs run as their own name, else as the container's, with its rlimits")
    func endToEnd() async throws {
        try await withGuest("users") { guest in
            let id = "users"
            guard case .object(var spec) = Busybox.spec(rootfs: sharedRootfs, args: ["sleep", "3600"]),
                  let index = spec.firstIndex(where: { $0.key == "process" }) else { Issue.record("busybox spec"); return }
            spec[index].value.setMember(["user", "username"], .string("app"))
            // Execs also get the container's resource limits (guest-behaviour §7.3).
            spec[index].value.setMember(["rlimits"], .array([.object([("type", .string("RLIMIT_NOFILE")), ("hard", .int(1234)), ("soft", .int(1234))])]))
            try await guest.createContainer(id: id, spec: .object(spec))
            let initPID = try await guest.start(.containerInit(id), stdout: false, stderr: false).pid
            let status = String(decoding: try HostFiles.read("/proc/\(initPID)/status"), as: UTF8.self)
            #expect(status.contains("Uid:\t1000\t1000\t1000\t1000") && status.contains("Gid:\t1000\t1000\t1000\t1000"), "\(status)")

            func ids(_ username: String?) async throws -> String {
                var process = Busybox.process(args: ["sh", "-c", "id -u; id -g"])
                if let username { process.setMember(["user", "username"], .string(username)) }
                return try await guest.run(.exec(id, process)).stdoutText
            }
            #expect(try await ids(nil) == "1000\n1000\n")
            var limits = Busybox.process(args: ["sh", "-c", "ulimit -n"])
            limits.setMember(["rlimits"], .array([.object([("type", .string("RLIMIT_NOFILE")), ("hard", .int(99)), ("soft", .int(99))])]))
            #expect(try await guest.run(.exec(id, limits)).stdoutText == "1234\n")
            #expect(try await ids("root") == "0\n0\n")
            #expect(try await ids("app:staff") == "1000\n50\n")
            do {
                _ = try await ids("nobody-here")
                Issue.record("an unknown user name was accepted")
            } catch let error as GuestRPCError {
                #expect(error.base.errorMessage.contains("failed to find user nobody-here"), "\(error.base.errorMessage)")
            }
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
            #expect(try await wait(guest, id, initPID) == 137)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }
}

/// The program of a process run in the VM, found on the agent's PATH as Go's exec.LookPath finds it.
@Suite("External process: PATH lookup", .timeLimit(.minutes(5)))
struct ExternalProgramLookupTests {
    @Test("a directory named like the program is skipped; a match through a relative entry is Go's ErrDot; an empty PATH searches nothing")
    func lookPath() throws {
        let work = "/tmp/gcs-lookpath-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(work, 0o755) == 0 && mkdir("\(work)/a", 0o755) == 0 && mkdir("\(work)/a/sh", 0o755) == 0)
        defer { HostFiles.removeTree(work) }
        #expect(try ExternalProcess.resolve("sh", searchPath: "\(work)/a:/bin") == "/bin/sh")
        #expect(try ExternalProcess.resolve("/bin/anything", searchPath: "") == "/bin/anything")
        let missing = try #require(throws: BridgeError.self) { _ = try ExternalProcess.resolve("no-such-program", searchPath: "\(work)/a:/bin") }
        #expect(missing.message == "exec: \"no-such-program\": executable file not found in $PATH")
        #expect(throws: BridgeError.self) { _ = try ExternalProcess.resolve("sh", searchPath: "") }
        // /bin reached through a relative entry, from any working directory less than 16 deep.
        let relative = String(repeating: "../", count: 16) + "bin"
        let dot = try #require(throws: BridgeError.self) { _ = try ExternalProcess.resolve("sh", searchPath: "\(relative):/bin") }
        #expect(dot.message.contains("cannot run executable found relative to current directory"))
    }
}

/// The advanced features this guest does not implement (guest-behaviour §7.1 step 7.9, GPU and
/// VPCI assignment): a Create asking for one fails rather than starting without it.
@Suite("Create: features refused", .timeLimit(.minutes(5)))
struct UnsupportedFeatureTests {
    @Test("windows.devices are refused where Go's guest assigns them: a workload's GPU or VPCI devices")
    func devices() {
        func spec(_ devices: [JSONValue]) -> JSONValue { .object([("windows", .object([("devices", .array(devices))]))]) }
        let gpu = JSONValue.object([("idType", .string("gpu")), ("id", .string("PCIP\\VEN_10DE"))])
        let workload = ContainerKind.workload(sandboxID: "pod")
        #expect(ContainerPreparation.unsupportedFeature(in: spec([gpu]), kind: workload) != nil)
        #expect(ContainerPreparation.unsupportedFeature(in: spec([.object([("idType", .string("vpci-instance-id"))])]), kind: workload) != nil)
        #expect(ContainerPreparation.unsupportedFeature(in: spec([gpu]), kind: .sandbox) == nil)  // Go ignores them there
        #expect(ContainerPreparation.unsupportedFeature(in: spec([gpu]), kind: .standalone) == nil)
        #expect(ContainerPreparation.unsupportedFeature(in: spec([.object([("idType", .string("class"))])]), kind: workload) == nil)
        #expect(ContainerPreparation.unsupportedFeature(in: spec([]), kind: workload) == nil)
    }
}
