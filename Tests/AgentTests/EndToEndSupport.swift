import Bridge
import EventLoop
import Glibc
import HostSupport
import Logging
import Testing

/// The `gcs` binary built next to the test bundle.
func gcsBinary() -> String {
    var path = CommandLine.arguments[0]
    // .../.build/<triple>/debug/swift-gcsPackageTests.xctest -> .../debug/gcs
    while let slash = path.lastIndex(of: "/") {
        path = String(path[..<slash])
        if access(path + "/gcs", X_OK) == 0 { return path + "/gcs" }
    }
    return ".build/debug/gcs"
}

/// Starts a private gcs for one test, runs `body`, stops gcs and removes its state.
/// `launcher`: a command that execs gcs (LocalGuest.start).
func withGuest<T>(_ name: String, arguments: [String] = [], launcher: [String] = [], _ body: (LocalGuest) async throws -> T) async throws -> T {
    var logger = Logger(label: "e2e-\(name)")
    logger.logLevel = .warning
    let work = "/tmp/gcs-e2e-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    // GCS_E2E_LOGLEVEL=debug: the agents' logs (kept in the test's work directory) say more.
    let level = getenv("GCS_E2E_LOGLEVEL").map { String(cString: $0) } ?? "info"
    let guest = try await LocalGuest.start(gcsBinary: gcsBinary(), workDirectory: work, logLevel: level, extraArguments: arguments,
                                           launcher: launcher, logger: logger)
    do {
        let result = try await body(guest)
        _ = try await guest.stop()
        unmountAll(below: work)
        HostFiles.removeTree(work)
        return result
    } catch {
        Issue.record("gcs log:\n\(guest.log())")
        guest.kill()
        _ = try? await guest.stop()
        unmountAll(below: work)  // a test that failed half-way leaves its pods' mounts
        HostFiles.removeTree(work)
        throw error
    }
}

/// Detaches every mount below `directory` (the agent's are in the test's own namespace), the
/// latest first; the agent's own deletes leave none, a test that failed half-way may.
func unmountAll(below directory: String) {
    guard let points = try? PodVolumeTests.mountPoints(under: directory) else { return }
    for point in points.reversed() { _ = umount2(point, Int32(MNT_DETACH)) }
}

/// A busybox rootfs shared by the tests of one process (made once).
let sharedRootfs: String = {
    let dir = "/tmp/gcs-e2e-rootfs-\(getpid())"
    // Removed when the test process exits (its containers are gone by then).
    atexit { HostFiles.removeTree("/tmp/gcs-e2e-rootfs-\(getpid())") }
    do {
        return try Busybox.makeRootfs(in: dir)
    } catch {
        // Said once, loudly: every container test that follows fails on the missing rootfs.
        print("END-TO-END TESTS: the busybox rootfs could not be made (is busybox-static installed?): \(error)")
        return "\(dir)/rootfs"
    }
}()

/// Creates a container running `args` as its init and starts the init; returns the init pid.
@discardableResult
func startContainer(_ guest: LocalGuest, id: String, args: [String] = ["sleep", "3600"]) async throws -> UInt32 {
    try await guest.createContainer(id: id, spec: Busybox.spec(rootfs: sharedRootfs, args: args))
    return try await guest.start(.containerInit(id), stdout: false, stderr: false).pid
}

func wait(_ guest: LocalGuest, _ container: String, _ pid: UInt32, timeoutMs: UInt32 = .max) async throws -> UInt32 {
    try await guest.client.send(WaitForProcessRequest(base: RequestBase(containerId: container), processId: pid, timeoutInMs: timeoutMs)).exitCode
}

/// The HRESULT a guest call failed with (nil on success).
func hresult(of body: () async throws -> Void) async -> HResult? {
    do { try await body(); return nil } catch let error as GuestRPCError { return error.hresult } catch { return HResult(0xFFFF_FFFF) }
}

/// Open descriptors and threads of a process (from /proc).
func resourceCounts(_ pid: pid_t) -> (fds: Int, threads: Int) {
    var fds = 0
    if let dir = opendir("/proc/\(pid)/fd") {
        while readdir(dir) != nil { fds += 1 }
        closedir(dir)
        fds -= 2
    }
    var threads = 0
    if let file = fopen("/proc/\(pid)/status", "r") {
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, file) != nil {
            let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if text.hasPrefix("Threads:") { threads = Int(text.dropFirst(8).filter { $0.isNumber }) ?? 0 }
        }
        fclose(file)
    }
    return (fds, threads)
}

/// Waits until the guest's log contains `text`, at most 10 s. Lines the agent logs from its
/// own events (the kernel log, memory events) come a kernel wake-up or a settling delay after
/// the event, with nothing to wait on from here: the log is read again every 5 ms, after a
/// round trip that shows the agent still serving.
func waitForLog(_ guest: LocalGuest, containing text: String) async throws -> Bool {
    let deadline = ContinuousClock.now.advanced(by: .seconds(10))
    while !guest.log().contains(text) {
        guard ContinuousClock.now < deadline else { return false }
        _ = try await guest.client.send(StartContainerRequest(base: RequestBase(containerId: "noop")), checkResult: false)
        try await Task.sleep(for: .milliseconds(5))
    }
    return true
}

/// MemTotal, in bytes (what sysinfo reports as total RAM).
func totalRAM() -> UInt64? {
    guard let text = try? String(decoding: HostFiles.read("/proc/meminfo"), as: UTF8.self),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
          let kib = UInt64(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return nil }
    return kib * 1024
}
