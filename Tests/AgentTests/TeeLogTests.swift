import Bridge
import EventLoop
import Glibc
import HostSupport
import Shims
import Testing

/// hcsshim's tee log annotations, end to end: a container's init output copied into its pod's
/// log directory, that directory mounted into another container, and paths that would leave it.
@Suite("End to end: tee logs", .timeLimit(.minutes(5)))
struct TeeLogTests {
    static let path = "io.microsoft.container.lcow.tee-log-path"
    static let mount = "io.microsoft.container.lcow.tee-log-dir-mount"

    @Test("a workload's init output reaches the host and its pod's log file; another workload reads it through the log directory mount")
    func teeAndMount() async throws {
        try await withGuest("tee-log") { guest in
            let sandbox = "tee-sandbox", writer = "tee-writer", reader = "tee-reader"
            let root = "\(guest.workDirectory)/bundles/\(sandbox)"
            try await guest.createContainer(id: sandbox, spec: PodVolumeTests.spec(args: ["sleep", "3600"],
                                                                                   annotations: [("io.kubernetes.cri.container-type", "sandbox")]))
            _ = try await guest.start(.containerInit(sandbox), stdout: false, stderr: false)
            // Execs are not teed, as in Go's guest: only the init's output is.
            try await guest.createContainer(id: writer, spec: PodVolumeTests.spec(
                args: ["sh", "-c", "echo out-line; echo err-line >&2; head -c 300000 /dev/zero | tr '\\0' x"],
                annotations: PodVolumeTests.workload(sandbox) + [(Self.path, "dir/../dir/writer.log")]))
            let written = try await guest.run(.containerInit(writer))
            #expect(written.exitCode == 0 && written.stderrText == "err-line\n")
            #expect(written.stdout.count == 9 + 300_000 && written.stdoutText.hasPrefix("out-line\n"))
            let log = String(decoding: try HostFiles.read("\(root)/logs/dir/writer.log"), as: UTF8.self)
            #expect(log.count == 9 + 9 + 300_000, "\(log.prefix(100))")
            #expect(log.contains("out-line\n") && log.contains("err-line\n") && log.filter { $0 == "x" }.count == 300_000)
            try await guest.createContainer(id: reader, spec: PodVolumeTests.spec(
                args: ["sh", "-c", "head -c 9 /var/logs/containers/dir/writer.log; ls /var/logs/containers/dir"],
                annotations: PodVolumeTests.workload(sandbox) + [(Self.mount, "/var/logs/containers")]))
            let read = try await guest.run(.containerInit(reader))
            #expect(read.exitCode == 0, "\(read.stderrText)")
            #expect(read.stdoutText == "\(log.prefix(9))writer.log\n")
            for id in [reader, writer, sandbox] {
                _ = try? await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            }
        }
    }

    @Test("a tee log that cannot be written (a full disk) stops copying; the host still gets all the output, and the failure is logged")
    func fullDisk() async throws {
        try await withGuest("tee-log-full") { guest in
            // A standalone container's log directory is its bundle's `logs`: made here first,
            // as a 16 KiB tmpfs (withGuest unmounts it).
            let id = "tee-full", bundle = "\(guest.workDirectory)/bundles/tee-full"
            try #require(mkdir("\(guest.workDirectory)/bundles", 0o755) == 0 || errno == EEXIST)
            try #require(mkdir(bundle, 0o755) == 0 && mkdir("\(bundle)/logs", 0o777) == 0)
            try #require(shim_mount_fs("tmpfs", "\(bundle)/logs", "tmpfs", "size=16k,mode=0777") == 0, "mount: errno \(errno)")
            try await guest.createContainer(id: id, spec: PodVolumeTests.spec(
                args: ["sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' y"], annotations: [(Self.path, "full.log")]))
            let result = try await guest.run(.containerInit(id))
            #expect(result.exitCode == 0)
            #expect(result.stdout.count == 1_000_000 && result.stdout.allSatisfy { $0 == UInt8(ascii: "y") })
            #expect(guest.log().contains("container output not all copied to its tee log"), "\(guest.log().suffix(1000))")
            // The agent's delete never crosses into another filesystem: the test's own goes first.
            #expect(umount2("\(bundle)/logs", 0) == 0)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("a tee log path that leaves the log directory, or one the start cannot open, is a clear error; the agent serves on")
    func badPaths() async throws {
        try await withGuest("tee-log-bad") { guest in
            let escaping = PodVolumeTests.spec(args: ["true"], annotations: [(Self.path, "../../escaped.log")])
            #expect(await hresult { try await guest.createContainer(id: "tee-escape", spec: escaping) } == .fail)
            #expect(access("\(guest.workDirectory)/bundles/escaped.log", F_OK) != 0)
            // A standalone container's log directory is in its bundle; a symlink planted where
            // the log file goes is not followed (the directory may be a container's to write).
            let id = "tee-symlink"
            try await guest.createContainer(id: id, spec: PodVolumeTests.spec(args: ["true"], annotations: [(Self.path, "c.log")]))
            let logs = "\(guest.workDirectory)/bundles/\(id)/logs"
            #expect(symlink("/etc/passwd", "\(logs)/c.log") == 0)
            #expect(await hresult { _ = try await guest.start(.containerInit(id)) } == .fail)
            #expect(unlink("\(logs)/c.log") == 0)
            // Asked again once the symlink is gone, the start goes through.
            let result = try await guest.run(.containerInit(id))
            #expect(result.exitCode == 0)
            #expect(access("\(logs)/c.log", F_OK) == 0)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            #expect(try await guest.run(.utilityVM, args: ["/bin/echo", "serving"]).stdoutText == "serving\n")
        }
    }
}
