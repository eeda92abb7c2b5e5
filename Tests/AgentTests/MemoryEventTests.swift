@testable import Agent
import Bridge
import EventLoop
import Glibc
import HostSupport
import Logging
import Testing

/// The agent's own cgroup and the memory events it logs: its threshold
/// (`-gcs-mem-limit-bytes`) and OOM in the containers' parent.
@Suite("Memory events")
struct MemoryEventTests {
    @Test("gcs joins its cgroup; a warning when that passes -gcs-mem-limit-bytes, a notice when it falls back")
    func agentThreshold() async throws {
        let threshold: UInt64 = 64 << 20
        try await withGuest("agent-memory", arguments: ["-gcs-mem-limit-bytes", "\(threshold)"]) { guest in
            let cgroups = String(decoding: try HostFiles.read("/proc/\(guest.pid)/cgroup"), as: UTF8.self)
            let lines = cgroups.split(separator: "\n")
            let memoryLine = lines.first { $0.contains(":memory:") } ?? lines.first { $0.hasPrefix("0::") }
            #expect(memoryLine?.hasSuffix(":\(guest.agentCgroup)") == true, "\(cgroups)")
            #expect(!guest.log().contains("memory usage exceeded"), "\(guest.log().suffix(2000))")

            // A process the agent starts in the VM is in its cgroup: 96 MiB of tmpfs charged
            // to it takes the cgroup past the threshold; removing the file brings it back.
            let file = "/dev/shm/gcs-memory-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let fill = try await guest.run(.utilityVM, args: ["/bin/sh", "-c", "dd if=/dev/zero of=\(file) bs=1M count=96 2>/dev/null"])
            defer { unlink(file) }
            #expect(fill.exitCode == 0)
            #expect(try await waitForLog(guest, containing: "agent cgroup: memory usage exceeded its threshold"), "\(guest.log().suffix(2000))")
            let line = guest.log().split(separator: "\n").first { $0.contains("memory usage exceeded") }
            #expect(line?.contains("threshold=\(threshold)") == true && line?.contains("cgroup=\(guest.agentCgroup)") == true,
                    "\(line ?? "")")
            #expect(unlink(file) == 0)
            #expect(try await waitForLog(guest, containing: "agent cgroup: memory usage fell back below its threshold"),
                    "\(guest.log().suffix(2000))")
        }
    }

    @Test("a container that runs the pods cgroup out of memory is killed, and the OOM is logged")
    func podsOutOfMemory() async throws {
        // The containers' parent limited to 96 MiB: RAM less a reserve of all but that.
        let reserve = try #require(totalRAM()) - (96 << 20)
        try await withGuest("pods-oom", arguments: ["-root-mem-reserve-bytes", "\(reserve)"]) { guest in
            let id = "eats-memory"
            // The shell doubles a string until the cgroup's limit stops it (no swap here: the OOM killer).
            let initPID = try await startContainer(guest, id: id, args: ["sh", "-c", "s=x; while :; do s=$s$s; done"])
            #expect(try await wait(guest, id, initPID) == 137)
            #expect(try await waitForLog(guest, containing: "pods cgroup: out of memory, the kernel's OOM killer takes a process in it"),
                    "\(guest.log().suffix(2000))")
            let line = guest.log().split(separator: "\n").first { $0.contains("pods cgroup: out of memory") }
            #expect(line?.contains("cgroup=\(guest.cgroupParent)") == true && line?.contains("limit=\(96 << 20)") == true, "\(line ?? "")")
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("cgroup v2 (read every second): a crossing either way is reported once; an OOM when oom_kill grows")
    func v2Checks() throws {
        let root = "/tmp/gcs-memory-v2-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(root, 0o755) == 0 && mkdir("\(root)/agent", 0o755) == 0)
        defer { removeAll(root) }
        func set(_ name: String, _ text: String) throws { try writeFile("\(root)/agent/\(name)", Array(text.utf8)) }
        let cgroup = MemoryCgroup(path: "/agent", root: root, isUnified: true)
        try set("memory.current", "1000\n")
        try set("memory.max", "max\n")
        try set("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 1\n")

        var threshold = MemoryEventWatch.V2Check(event: .threshold(4096), cgroup: cgroup)
        #expect(threshold.next() == nil)
        try set("memory.current", "8192\n")
        let above = threshold.next()!
        #expect(above.usage.current == 8192 && above.usage.limit == nil && above.count == 1)
        #expect(threshold.next() == nil)
        try set("memory.current", "4096\n")
        #expect(threshold.next()?.count == 2)
        #expect(threshold.next() == nil)

        // The kills before the watch started are not reported.
        var oom = MemoryEventWatch.V2Check(event: .outOfMemory, cgroup: cgroup)
        #expect(oom.next() == nil)
        try set("memory.events", "low 0\nhigh 0\nmax 7\noom 3\noom_kill 3\n")
        try set("memory.max", "104857600\n")
        let killed = oom.next()!
        #expect(killed.count == 2 && killed.oomKills == 3 && killed.usage.limit == 104_857_600)
        #expect(oom.next() == nil)
    }

    @Test("no cgroupfs: the agent is told why and serves without")
    func noCgroupfs() async throws {
        let root = "/tmp/gcs-no-cgroupfs-\(getpid())"
        #expect(AgentCgroup.join(path: "/gcs", threshold: 1, root: root, loop: .shared, logger: Logger(label: "test")) == nil)
        #expect(access(root, F_OK) != 0)
        let cgroup = MemoryCgroup(path: "/pods", root: root, isUnified: false)
        #expect(throws: BridgeError.self) {
            _ = try MemoryEventWatch.start(cgroup, for: .outOfMemory, what: "pods cgroup", loop: .shared, logger: Logger(label: "test"))
        }
    }
}
