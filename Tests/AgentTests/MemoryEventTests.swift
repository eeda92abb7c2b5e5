@testable import Agent
import Bridge
import EventLoop
import Glibc
import HostSupport
import Logging
import Testing

/// The agent's own cgroup and the memory events it logs: its threshold
/// (`-gcs-mem-limit-bytes`) and OOM in the containers' parent.
@Suite("Memory events", .timeLimit(.minutes(5)))
struct MemoryEventTests {
    @Test("gcs joins its cgroup; a warning when that passes -gcs-mem-limit-bytes, a notice when it falls back")
    func agentThreshold() async throws {
        let threshold: UInt64 = 64 << 20
        try await withGuest("agent-memory", arguments: ["-gcs-mem-limit-bytes", "\(threshold)"]) { guest in
            let cgroups = String(decoding: try HostFiles.read("/proc/\(guest.pid)/cgroup"), as: UTF8.self)
            let lines = cgroups.split(separator: "\n")
            let memoryLine = lines.first { $0.contains(":memory:") } ?? lines.first { $0.hasPrefix("0::") }
            #expect(memoryLine?.hasSuffix(":\(guest.agentCgroup)") == true, "\(cgroups)")

            // A process the agent starts in the VM is in its cgroup: 96 MiB of tmpfs charged
            // to it takes the cgroup past the threshold; removing the file brings it back.
            let file = "/dev/shm/gcs-memory-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            defer { unlink(file) }
            let fill = try await guest.run(.utilityVM, args: ["/bin/sh", "-c", "dd if=/dev/zero of=\(file) bs=1M count=96 2>/dev/null"])
            #expect(fill.exitCode == 0)
            #expect(try await waitForLog(guest, containing: "memory usage for cgroup exceeded threshold"), "\(guest.log().suffix(2000))")
            let line = guest.log().split(separator: "\n").first { $0.contains("exceeded threshold") }
            #expect(line?.contains("thresholdBytes=\(threshold)") == true && line?.contains("cgroup=\(guest.agentCgroup)") == true
                    && line?.contains("count=1") == true, "\(line ?? "")")
            #expect(unlink(file) == 0)
            #expect(try await waitForLog(guest, containing: "memory usage for cgroup fell back below threshold"), "\(guest.log().suffix(2000))")
        }
    }

    @Test("a container that runs the pods cgroup out of memory is killed, and the OOM is logged",
          .enabled(if: !swapInUse(), "with swap the container would swap, not run out of memory"))
    func podsOutOfMemory() async throws {
        // The containers' parent limited to 96 MiB: RAM less a reserve of all but that.
        let reserve = try #require(totalRAM()) - (96 << 20)
        try await withGuest("pods-oom", arguments: ["-root-mem-reserve-bytes", "\(reserve)"]) { guest in
            let id = "eats-memory"
            // The shell doubles a string until the cgroup's limit stops it: the OOM killer.
            let initPID = try await startContainer(guest, id: id, args: ["sh", "-c", "s=x; while :; do s=$s$s; done"])
            #expect(try await wait(guest, id, initPID, timeoutMs: 60_000) == 137)
            #expect(try await waitForLog(guest, containing: "cgroup out of memory: its limit was reached and the kernel's OOM killer ran"),
                    "\(guest.log().suffix(2000))")
            let line = guest.log().split(separator: "\n").first { $0.contains("its limit was reached") }
            #expect(line?.contains("cgroup=\(guest.cgroupParent)") == true && line?.contains("memoryUsageLimit=\(96 << 20)") == true
                    && line?.contains("count=") == true, "\(line ?? "")")
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("cgroup v2 (read every second): a crossing either way is reported once; an OOM at the cgroup's own limit")
    func v2Checks() throws {
        let root = "/tmp/gcs-memory-v2-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(root, 0o755) == 0 && mkdir("\(root)/agent", 0o755) == 0)
        defer { HostFiles.removeTree(root) }
        func set(_ name: String, _ text: String) throws { try writeFile("\(root)/agent/\(name)", Array(text.utf8)) }
        let cgroup = MemoryCgroup(path: "/agent", root: root, isUnified: true)
        #expect(throws: BridgeError.self) { _ = try MemoryEventWatch.V2Check(event: .threshold(1), cgroup: cgroup) }
        #expect(throws: BridgeError.self) { _ = try MemoryEventWatch.V2Check(event: .outOfMemory, cgroup: cgroup) }
        try set("memory.current", "1000\n")
        try set("memory.max", "max\n")
        try set("memory.events", "low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\n")
        try set("memory.events.local", "low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\n")

        var threshold = try MemoryEventWatch.V2Check(event: .threshold(4096), cgroup: cgroup)
        #expect(threshold.next() == nil)
        try set("memory.current", "4096\n")  // at the threshold is above it, as the kernel counts
        #expect(threshold.next() == .init(usage: .init(current: 4096, peak: nil, limit: nil), count: 1, above: true))
        try set("memory.current", "8192\n")
        #expect(threshold.next() == nil)
        try set("memory.current", "4095\n")
        #expect(threshold.next() == .init(usage: .init(current: 4095, peak: nil, limit: nil), count: 2, above: false))
        #expect(threshold.next() == nil)

        // OOMs before the watch started, and OOMs of its children at their own limits, are not reported.
        var oom = try MemoryEventWatch.V2Check(event: .outOfMemory, cgroup: cgroup)
        #expect(oom.next() == nil)
        try set("memory.events", "low 0\nhigh 0\nmax 7\noom 5\noom_kill 5\n")
        #expect(oom.next() == nil)
        try set("memory.events.local", "low 0\nhigh 0\nmax 7\noom 3\noom_kill 2\n")
        try set("memory.max", "104857600\n")
        #expect(oom.next() == .init(usage: .init(current: 4095, peak: nil, limit: 104_857_600), count: 2, oomKills: 5))
        #expect(oom.next() == nil)

        // Without memory.events.local (kernels before 5.2), memory.events.
        #expect(unlink("\(root)/agent/memory.events.local") == 0)
        var older = try MemoryEventWatch.V2Check(event: .outOfMemory, cgroup: cgroup)
        try set("memory.events", "low 0\nhigh 0\nmax 8\noom 6\noom_kill 6\n")
        #expect(older.next()?.count == 1)
    }

    @Test("no cgroupfs: the agent is told why and serves without")
    func noCgroupfs() async throws {
        let root = "/tmp/gcs-no-cgroupfs-\(getpid())"
        #expect(AgentCgroup.join(path: "/gcs", threshold: 1, root: root, loop: .shared, logger: Logger(label: "test")) == nil)
        #expect(access(root, F_OK) != 0)
        let cgroup = MemoryCgroup(path: "/pods", root: root, isUnified: false)
        #expect(throws: BridgeError.self) {
            _ = try MemoryEventWatch.start(cgroup, for: .outOfMemory, loop: .shared, logger: Logger(label: "test"))
        }
    }
}

/// Whether the machine swaps (/proc/swaps lists a device).
private func swapInUse() -> Bool {
    guard let text = try? HostFiles.read("/proc/swaps") else { return false }
    return String(decoding: text, as: UTF8.self).split(separator: "\n").count > 1
}
