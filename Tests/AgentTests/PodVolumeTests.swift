import Bridge
import EventLoop
import Glibc
import HostSupport
import Testing

/// A pod's shared volumes and hcsshim's spec annotations, end to end: `sandbox://`,
/// `sandbox-tmp://`, `hugepages://` and `uvm://` sources, `/dev/shm`'s size, the core-dump
/// limit, device re-resolution, and the sandbox's mounts gone once it is deleted.
@Suite("End to end: pod volumes and annotations", .timeLimit(.minutes(5)))
struct PodVolumeTests {
    static func mount(_ destination: String, _ source: String, _ options: [String] = ["rbind"]) -> JSONValue {
        .object([("destination", .string(destination)), ("type", .string("bind")), ("source", .string(source)),
                 ("options", .array(options.map(JSONValue.string)))])
    }

    /// A busybox spec with `annotations`, extra `mounts` and `devices`.
    static func spec(args: [String], annotations: [(String, String)], mounts: [JSONValue] = [], devices: [JSONValue] = []) -> JSONValue {
        guard case .object(var members) = Busybox.spec(rootfs: sharedRootfs, args: args) else { return .null }
        members.append(("annotations", .object(annotations.map { ($0.0, .string($0.1)) })))
        if let index = members.firstIndex(where: { $0.key == "mounts" }), case .array(let existing) = members[index].value {
            members[index].value = .array(existing + mounts)
        }
        if let index = members.firstIndex(where: { $0.key == "linux" }), case .object(var linux) = members[index].value {
            linux.append(("devices", .array(devices)))
            members[index].value = .object(linux)
        }
        return .object(members)
    }

    static func workload(_ sandbox: String) -> [(String, String)] {
        [("io.kubernetes.cri.container-type", "container"), ("io.kubernetes.cri.sandbox-id", sandbox)]
    }

    /// hugetlbfs with 2 MiB pages (x86; not arm64 with 64 KiB pages).
    static var hugetlbfsAvailable: Bool {
        access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) == 0
            && ((try? HostFiles.read("/proc/filesystems")).map { String(decoding: $0, as: UTF8.self).contains("hugetlbfs") } ?? false)
    }

    /// Whether `path` is absent (lstat fails with ENOENT).
    static func absent(_ path: String) -> Bool {
        var st = stat()
        let rc = lstat(path, &st)
        let error = errno
        return rc != 0 && error == ENOENT
    }

    static func mountPoints(under root: String) throws -> [String] {
        String(decoding: try HostFiles.read("/proc/self/mountinfo"), as: UTF8.self).split(separator: "\n")
            .compactMap { line in line.split(separator: " ").dropFirst(4).first.map(String.init) }
            .filter { $0.hasPrefix(root + "/") }
    }

    @Test("workloads share sandbox:// and sandbox-tmp:// volumes; shm size, core limit and devices applied; all unmounted at the end")
    func volumes() async throws {
        try await withGuest("pod-volumes") { guest in
            let sandbox = "vol-sandbox", writer = "vol-writer", reader = "vol-reader"
            let root = "\(guest.workDirectory)/bundles/\(sandbox)"
            try await guest.createContainer(id: sandbox, spec: Self.spec(args: ["sleep", "3600"], annotations: [("io.kubernetes.cri.container-type", "sandbox")]))
            _ = try await guest.start(.containerInit(sandbox), stdout: false, stderr: false)
            let points = try Self.mountPoints(under: root)
            for directory in ["sandboxMounts", "sandboxTmpfsMounts", "hugepages"] { #expect(points.contains("\(root)/\(directory)")) }
            var st = stat()
            #expect(stat("\(root)/logs", &st) == 0 && st.st_mode & 0o777 == 0o777)

            let uvmDirectory = "\(guest.workDirectory)/uvm-share"
            #expect(mkdir(uvmDirectory, 0o755) == 0)
            let marker = open("\(uvmDirectory)/marker", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            #expect("from the VM\n".withCString { write(marker, $0, strlen($0)) } == 12)
            close(marker)
            var mounts = [Self.mount("/vol", "sandbox://vol"), Self.mount("/mem", "sandbox-tmp://mem"),
                          Self.mount("/uvm", "uvm://\(uvmDirectory)", ["rbind", "ro"])]
            // A SCSI BlockDev mount leaves a link to the device; the host names it as a blockdev:// destination.
            #expect(symlink("/dev/null", "\(guest.workDirectory)/blockdev-link") == 0)
            mounts.append(Self.mount("blockdev:///blk", "\(guest.workDirectory)/blockdev-link", ["bind", "ro"]))
            let hugePages = Self.hugetlbfsAvailable
            if hugePages { mounts.append(Self.mount("/hp", "hugepages://2M/hp")) }
            let writerSpec = Self.spec(args: ["sleep", "3600"],
                                       annotations: Self.workload(sandbox) + [("io.microsoft.lcow.shm.size-kb", "2048"),
                                                                              ("io.microsoft.lcow.rlimitcore", "4096;8192")],
                                       mounts: mounts,
                                       devices: [.object([("path", .string("/dev/null")), ("type", .string("c")), ("major", .int(0)), ("minor", .int(0))])])
            try await guest.createContainer(id: writer, spec: writerSpec)
            _ = try await guest.start(.containerInit(writer), stdout: false, stderr: false)
            let script = "echo shared > /vol/file; echo memory > /mem/file; cat /uvm/marker; grep -c ' /mem tmpfs ' /proc/mounts; " +
                "grep ' /dev/shm ' /proc/mounts | grep -o 'size=[0-9]*k'; grep 'core file' /proc/self/limits | tr -s ' ' | sed 's/ *$//'; " +
                "grep -c ' /hp hugetlbfs ' /proc/mounts; test -c /blk && echo device"
            let written = try await guest.run(.exec(writer, Busybox.process(args: ["sh", "-c", script])))
            #expect(written.stdoutText == "from the VM\n1\nsize=2048k\nMax core file size 4096 8192 bytes\n\(hugePages ? 1 : 0)\ndevice\n")
            // The device the host named with made-up numbers was re-read from the VM's /dev.
            let config = try JSONValueParser.parse(String(decoding: try HostFiles.read("\(guest.workDirectory)/bundles/\(writer)/config.json"), as: UTF8.self))
            #expect(config["linux"]?["devices"]?.arrayFirst?["major"] == .int(1))
            #expect(config["linux"]?["devices"]?.arrayFirst?["minor"] == .int(3))
            // Rules: the blockdev mount's (read-only), then the re-read device's.
            #expect(config["linux"]?["resources"]?["devices"] == .array([
                .object([("allow", .bool(true)), ("type", .string("c")), ("major", .int(1)), ("minor", .int(3)), ("access", .string("r"))]),
                .object([("allow", .bool(true)), ("type", .string("c")), ("major", .int(1)), ("minor", .int(3)), ("access", .string("rwm"))])]))

            // A second workload sees what the first wrote in both volumes.
            try await guest.createContainer(id: reader, spec: Self.spec(args: ["sleep", "3600"], annotations: Self.workload(sandbox),
                                                                        mounts: [Self.mount("/v", "sandbox://vol"), Self.mount("/m", "sandbox-tmp://mem")]))
            _ = try await guest.start(.containerInit(reader), stdout: false, stderr: false)
            let read = try await guest.run(.exec(reader, Busybox.process(args: ["sh", "-c", "cat /v/file /m/file"])))
            #expect(read.stdoutText == "shared\nmemory\n")

            for id in [reader, writer, sandbox] {
                _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            }
            #expect(try Self.mountPoints(under: root).isEmpty)
            #expect(Self.absent(root))
        }
    }

    @Test("bad special sources and annotations are clear errors, and the pod serves on")
    func refused() async throws {
        try await withGuest("pod-refused") { guest in
            let sandbox = "bad-sandbox"
            let root = "\(guest.workDirectory)/bundles/\(sandbox)"
            try await guest.createContainer(id: sandbox, spec: Self.spec(args: ["sleep", "3600"], annotations: [("io.kubernetes.cri.container-type", "sandbox")]))
            // A container left a symlink to the VM's files in a shared volume.
            let outside = "\(guest.workDirectory)/outside"
            #expect(mkdir(outside, 0o755) == 0)
            #expect(symlink(outside, "\(root)/sandboxMounts/evil") == 0)
            // Each with a phrase its error message must contain: refused for the right reason.
            let bad: [(annotations: [(String, String)], mounts: [JSONValue], devices: [JSONValue], reason: String)] = [
                ([], [Self.mount("/x", "sandbox://../../escape")], [], "is not within"),
                ([], [Self.mount("/x", "sandbox-tmp://a/../../../b")], [], "is not within"),
                ([], [Self.mount("/x", "sandbox://evil/made-outside")], [], "is a symlink"),
                ([], [Self.mount("/x", "hugepages://1G/big")], [], "only 2M hugepages are supported"),
                ([], [Self.mount("/x", "hugepages://2M/../../x")], [], "is not within"),
                ([], [Self.mount("/x", "uvm:///no/such/path")], [], "could not open uVM mount target"),
                ([("io.microsoft.lcow.shm.size-kb", "0")], [], [], "must be a positive number"),
                ([("io.microsoft.lcow.shm.size-kb", "lots")], [], [], "must be a positive number"),
                ([("io.microsoft.lcow.rlimitcore", "1024")], [], [], "wrong number of values"),
                ([("io.microsoft.lcow.rlimitcore", "a;b")], [], [], "must be unsigned integers"),
                ([], [], [.object([("path", .string("/dev/no-such-device"))])], "is not a usable device node"),
            ]
            for (index, input) in bad.enumerated() {
                let spec = Self.spec(args: ["true"], annotations: Self.workload(sandbox) + input.annotations, mounts: input.mounts, devices: input.devices)
                do {
                    try await guest.createContainer(id: "bad-\(index)", spec: spec)
                    Issue.record("case \(index) was accepted")
                } catch let error as GuestRPCError {
                    #expect(error.hresult == .fail, "case \(index)")
                    #expect(error.base.errorMessage.contains(input.reason), "case \(index): \(error.base.errorMessage)")
                }
            }
            // Nothing escaped the sandbox's directories, and the pod still takes workloads (the
            // whole shared directory too, as `sandbox://`).
            #expect(Self.absent("\(guest.workDirectory)/bundles/escape"))
            #expect(Self.absent("\(outside)/made-outside"))
            try await guest.createContainer(id: "good", spec: Self.spec(args: ["true"], annotations: Self.workload(sandbox),
                                                                         mounts: [Self.mount("/x", "sandbox://fine/deeper"), Self.mount("/all", "sandbox://")]))
            var st = stat()
            for level in ["fine", "fine/deeper"] {
                #expect(stat("\(root)/sandboxMounts/\(level)", &st) == 0 && st.st_mode & 0o777 == 0o777, "\(level)")
            }
            for id in ["good", sandbox] {
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            }
            #expect(try Self.mountPoints(under: root).isEmpty)
        }
    }
}

extension JSONValue {
    var arrayFirst: JSONValue? { if case .array(let elements) = self { return elements.first } else { return nil } }
}
