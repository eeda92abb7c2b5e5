@testable import Agent
import Bridge
import Glibc
import Testing

/// OCI resources as a pod cgroup's files, on both cgroup versions (a fake v2 root: only its
/// `cgroup.controllers` matters to the conversion).
@Suite("Pod cgroup settings", .timeLimit(.minutes(5)))
struct SandboxCgroupSettingsTests {
    static let resources: JSONValue = .object([
        ("memory", .object([("limit", .int(268_435_456)), ("swap", .int(536_870_912)), ("reservation", .int(-1))])),
        ("cpu", .object([("shares", .int(1024)), ("quota", .int(50_000)), ("period", .int(100_000)), ("cpus", .string("0"))])),
        ("pids", .object([("limit", .int(0))])),
        ("hugepageLimits", .array([.object([("pageSize", .string("2MB")), ("limit", .int(0))])])),
        ("blockIO", .object([])),
    ])

    @Test("cgroup v1 files")
    func v1() {
        let cgroup = SandboxCgroup(path: "/pods/p", root: "/nonexistent")
        let (settings, ignored) = cgroup.settings(for: Self.resources)
        #expect(settings == [
            .init(controller: "memory", file: "memory.limit_in_bytes", value: "268435456"),
            .init(controller: "memory", file: "memory.memsw.limit_in_bytes", value: "536870912"),
            .init(controller: "memory", file: "memory.soft_limit_in_bytes", value: "-1"),
            .init(controller: "cpu", file: "cpu.shares", value: "1024"),
            .init(controller: "cpu", file: "cpu.cfs_period_us", value: "100000"),
            .init(controller: "cpu", file: "cpu.cfs_quota_us", value: "50000"),
            .init(controller: "cpuset", file: "cpuset.cpus", value: "0"),
            .init(controller: "pids", file: "pids.max", value: "max"),
        ])
        #expect(ignored == ["hugepageLimits"])
    }

    @Test("cgroup v2 files: weight from shares, cpu.max, the unified map")
    func v2() throws {
        let root = "/tmp/gcs-fake-cgroup2-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkdir(root, 0o755) == 0)
        defer { removeTree(root) }
        try writeFile("\(root)/cgroup.controllers", Array("cpu memory pids\n".utf8))
        let cgroup = SandboxCgroup(path: "/pods/p", root: root)
        guard case .object(var members) = Self.resources else { return }
        members.append(("unified", .object([("memory.high", .string("200000000"))])))
        let (settings, _) = cgroup.settings(for: .object(members))
        #expect(settings == [
            .init(controller: "memory", file: "memory.max", value: "268435456"),
            .init(controller: "memory", file: "memory.swap.max", value: "268435456"),
            .init(controller: "memory", file: "memory.low", value: "max"),
            .init(controller: "cpu", file: "cpu.weight", value: "39"),
            .init(controller: "cpu", file: "cpu.max", value: "50000 100000"),
            .init(controller: "cpuset", file: "cpuset.cpus", value: "0"),
            .init(controller: "pids", file: "pids.max", value: "max"),
            .init(controller: "memory", file: "memory.high", value: "200000000"),
        ])
    }
}

/// Statistics' `hugetlb` entries on fake cgroupfs trees of both versions.
@Suite("Statistics: hugetlb", .timeLimit(.minutes(5)))
struct HugeTLBStatisticsTests {
    static func tree(_ files: [String: String]) throws -> String {
        let root = "/tmp/gcs-fake-hugetlb-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        for (path, content) in files {
            try makeDirectory("\(root)/\(path)".split(separator: "/").dropLast().joined(separator: "/").withLeadingSlash)
            try writeFile("\(root)/\(path)", Array(content.utf8))
        }
        for size in ["2048", "1048576"] { try makeDirectory("\(root)/kernel/hugepages-\(size)kB") }
        return root
    }

    @Test("cgroup v1: usage, max usage and failcnt per page size the controller has")
    func v1() throws {
        let root = try Self.tree(["cg/memory/pods/c/memory.stat": "rss 1\n",
                                  "cg/hugetlb/pods/c/hugetlb.2MB.usage_in_bytes": "4194304\n",
                                  "cg/hugetlb/pods/c/hugetlb.2MB.max_usage_in_bytes": "8388608\n",
                                  "cg/hugetlb/pods/c/hugetlb.2MB.failcnt": "1\n"])
        defer { removeTree(root) }
        #expect(ContainerStatistics(root: "\(root)/cg", hugePagesDirectory: "\(root)/kernel").hugePageSizes() == ["2MB", "1GB"])
        let metrics = try ContainerStatistics(root: "\(root)/cg", hugePagesDirectory: "\(root)/kernel").metrics(cgroupsPath: "/pods/c")
        #expect(metrics["hugetlb"] == .array([.object([("usage", .int(4_194_304)), ("max", .int(8_388_608)), ("failcnt", .int(1)),
                                                       ("pagesize", .string("2MB"))])]))
    }

    @Test("cgroup v2: current and max; an unlimited max stays exact")
    func v2() throws {
        let root = try Self.tree(["cg/cgroup.controllers": "hugetlb memory\n",
                                  "cg/pods/c/hugetlb.2MB.current": "2097152\n", "cg/pods/c/hugetlb.2MB.max": "max\n",
                                  "cg/pods/c/hugetlb.1GB.current": "0\n", "cg/pods/c/hugetlb.1GB.max": "0\n"])
        defer { removeTree(root) }
        let metrics = try ContainerStatistics(root: "\(root)/cg", hugePagesDirectory: "\(root)/kernel").metrics(cgroupsPath: "/pods/c")
        #expect(metrics["hugetlb"] == .array([.object([("usage", .int(2_097_152)), ("max", .uint(.max)), ("pagesize", .string("2MB"))]),
                                              .object([("pagesize", .string("1GB"))])]))
    }
}

/// Statistics on a cgroup-v1 guest: the fields containerd's v1 `Metrics` has, which hcsshim's
/// host reads (its working set is memory usage - total_inactive_file).
@Suite("Statistics: cgroup v1", .timeLimit(.minutes(5)))
struct LegacyStatisticsTests {
    @Test("memory.stat and its totals, every memory entry with its failcnt, per-CPU usage, OOM control; pids.max 'max' omitted")
    func v1() throws {
        let c = "pods/c"
        let root = try HugeTLBStatisticsTests.tree([
            "cg/memory/\(c)/memory.stat": """
                cache 8192
                rss 4096
                rss_huge 2097152
                pgpgin 10
                pgpgout 7
                pgfault 30
                inactive_file 4096
                hierarchical_memory_limit 9223372036854771712
                total_cache 16384
                total_rss 8192
                total_pgpgin 20
                total_inactive_file 12288

                """,
            "cg/memory/\(c)/memory.usage_in_bytes": "65536\n", "cg/memory/\(c)/memory.limit_in_bytes": "268435456\n",
            "cg/memory/\(c)/memory.max_usage_in_bytes": "131072\n", "cg/memory/\(c)/memory.failcnt": "2\n",
            "cg/memory/\(c)/memory.kmem.usage_in_bytes": "1024\n", "cg/memory/\(c)/memory.kmem.failcnt": "1\n",
            "cg/memory/\(c)/memory.kmem.tcp.max_usage_in_bytes": "512\n",
            "cg/memory/\(c)/memory.oom_control": "oom_kill_disable 1\nunder_oom 0\noom_kill 3\n",
            "cg/cpuacct/\(c)/cpuacct.usage": "3000\n", "cg/cpuacct/\(c)/cpuacct.usage_percpu": "1000 0 2000 \n",
            "cg/pids/\(c)/pids.current": "4\n", "cg/pids/\(c)/pids.max": "max\n",
        ])
        defer { removeTree(root) }
        let metrics = try ContainerStatistics(root: "\(root)/cg", hugePagesDirectory: "\(root)/kernel").metrics(cgroupsPath: "/\(c)")
        let memory = try #require(metrics["memory"])
        #expect(memory["rss_huge"] == .int(2_097_152) && memory["pg_pg_in"] == .int(10) && memory["pg_pg_out"] == .int(7))
        #expect(memory["total_cache"] == .int(16384) && memory["total_rss"] == .int(8192) && memory["total_pg_pg_in"] == .int(20))
        #expect(memory["total_inactive_file"] == .int(12288))
        #expect(memory["total_dirty"] == nil)  // absent or zero: omitted
        #expect(memory["usage"] == .object([("limit", .int(268_435_456)), ("usage", .int(65536)), ("max", .int(131_072)), ("failcnt", .int(2))]))
        #expect(memory["kernel"] == .object([("usage", .int(1024)), ("failcnt", .int(1))]))
        #expect(memory["kernel_tcp"] == .object([("max", .int(512))]))
        #expect(metrics["cpu"]?["usage"] == .object([("total", .int(3000)), ("per_cpu", .array([.int(1000), .int(0), .int(2000)]))]))
        #expect(metrics["pids"] == .object([("current", .int(4))]))
        #expect(metrics["memory_oom_control"] == .object([("oom_kill_disable", .int(1)), ("oom_kill", .int(3))]))
    }
}

private extension String {
    var withLeadingSlash: String { hasPrefix("/") ? self : "/" + self }
}
