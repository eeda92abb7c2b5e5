import Bridge
import Glibc

/// GetProperties "Statistics": a container's cgroup counters in the containerd cgroup-v1
/// `Metrics` shape hcsshim's host decodes (snake_case keys, zero values omitted as protobuf
/// JSON does, uint64 kept exact). Reads cgroup v2 files through the mapping of
/// guest-behaviour §7.9, or the v1 controllers' own files on a v1/hybrid host.
public struct ContainerStatistics: Sendable {
    /// The cgroupfs mount (`/sys/fs/cgroup`).
    public var root: String

    /// Where the kernel lists its huge page sizes (`hugepages-<n>kB`).
    public var hugePagesDirectory: String

    public init(root: String = "/sys/fs/cgroup", hugePagesDirectory: String = "/sys/kernel/mm/hugepages") {
        self.root = root
        self.hugePagesDirectory = hugePagesDirectory
    }

    /// Whether `root` is a unified (v2) hierarchy.
    public var isUnified: Bool { CgroupFile.isUnified(root: root) }

    /// The metrics of the cgroup at `path` (the container's `linux.cgroupsPath`).
    public func metrics(cgroupsPath path: String) throws -> JSONValue {
        let relative = path.hasPrefix("/") ? path : "/" + path
        return isUnified ? try unified(relative) : try legacy(relative)
    }

    // MARK: cgroup v2

    private func unified(_ path: String) throws -> JSONValue {
        let dir = root + path
        guard access(dir, F_OK) == 0 else { throw BridgeError(.fail, "cgroup \(path) not found") }
        let memoryStat = CgroupFile.keyValues("\(dir)/memory.stat")
        let cpuStat = CgroupFile.keyValues("\(dir)/cpu.stat")
        let events = CgroupFile.keyValues("\(dir)/memory.events")
        let memoryMax = CgroupFile.number("\(dir)/memory.max")
        let swapMax = CgroupFile.number("\(dir)/memory.swap.max")
        var memory = Metrics()
        for (v1, v2) in [("cache", "file"), ("rss", "anon"), ("mapped_file", "file_mapped"), ("dirty", "file_dirty"),
                         ("writeback", "file_writeback"), ("pg_fault", "pgfault"), ("pg_maj_fault", "pgmajfault"),
                         ("inactive_anon", "inactive_anon"), ("active_anon", "active_anon"), ("inactive_file", "inactive_file"),
                         ("active_file", "active_file"), ("unevictable", "unevictable")] {
            memory.add(v1, memoryStat[v2])
        }
        memory.add("hierarchical_memory_limit", memoryMax)
        memory.add("hierarchical_swap_limit", swapMax)
        memory.object("usage", [("limit", memoryMax), ("usage", CgroupFile.number("\(dir)/memory.current")), ("max", CgroupFile.number("\(dir)/memory.peak"))])
        memory.object("swap", [("usage", CgroupFile.number("\(dir)/memory.swap.current")), ("limit", swapMax), ("max", CgroupFile.number("\(dir)/memory.swap.peak"))])
        memory.object("kernel", [("usage", memoryStat["kernel_stack"])])
        memory.object("kernel_tcp", [("usage", memoryStat["sock"])])
        var metrics = Metrics()
        metrics.hugeTLB(pageSizes: hugePageSizes(), directory: dir) { size in
            [("usage", "hugetlb.\(size).current"), ("max", "hugetlb.\(size).max")]
        }
        metrics.object("pids", [("current", CgroupFile.number("\(dir)/pids.current")), ("limit", CgroupFile.number("\(dir)/pids.max"))])
        metrics.nested("cpu", [
            ("usage", [("total", cpuStat["usage_usec"].map { $0 &* 1000 }), ("kernel", cpuStat["system_usec"].map { $0 &* 1000 }),
                       ("user", cpuStat["user_usec"].map { $0 &* 1000 })]),
            ("throttling", [("periods", cpuStat["nr_periods"]), ("throttled_periods", cpuStat["nr_throttled"]),
                            ("throttled_time", cpuStat["throttled_usec"].map { $0 &* 1000 })]),
        ])
        metrics.members.append(("memory", memory.value))
        if !events.isEmpty { metrics.object("memory_oom_control", [("oom_kill", events["oom_kill"])]) }
        return metrics.value
    }

    // MARK: cgroup v1

    private func legacy(_ path: String) throws -> JSONValue {
        let memoryDir = "\(root)/memory\(path)", cpuDir = "\(root)/cpu\(path)", cpuacctDir = "\(root)/cpuacct\(path)", pidsDir = "\(root)/pids\(path)"
        guard access(memoryDir, F_OK) == 0 || access(pidsDir, F_OK) == 0 else { throw BridgeError(.fail, "cgroup \(path) not found") }
        let memoryStat = CgroupFile.keyValues("\(memoryDir)/memory.stat")
        let cpuStat = CgroupFile.keyValues("\(cpuDir)/cpu.stat")
        // memory.stat as containerd's cgroup-v1 `MemoryStat` names it, then each key's
        // `total_` (hierarchy-wide) form: the host's working set is usage - total_inactive_file.
        let statKeys = [("cache", "cache"), ("rss", "rss"), ("rss_huge", "rss_huge"), ("mapped_file", "mapped_file"), ("dirty", "dirty"),
                        ("writeback", "writeback"), ("pg_pg_in", "pgpgin"), ("pg_pg_out", "pgpgout"), ("pg_fault", "pgfault"),
                        ("pg_maj_fault", "pgmajfault"), ("inactive_anon", "inactive_anon"), ("active_anon", "active_anon"),
                        ("inactive_file", "inactive_file"), ("active_file", "active_file"), ("unevictable", "unevictable")]
        var memory = Metrics()
        for (key, name) in statKeys { memory.add(key, memoryStat[name]) }
        memory.add("hierarchical_memory_limit", memoryStat["hierarchical_memory_limit"])
        memory.add("hierarchical_swap_limit", memoryStat["hierarchical_memsw_limit"])
        for (key, name) in statKeys { memory.add("total_" + key, memoryStat["total_" + name]) }
        for (key, prefix) in [("usage", "memory"), ("swap", "memory.memsw"), ("kernel", "memory.kmem"), ("kernel_tcp", "memory.kmem.tcp")] {
            memory.object(key, [("limit", CgroupFile.number("\(memoryDir)/\(prefix).limit_in_bytes")),
                                ("usage", CgroupFile.number("\(memoryDir)/\(prefix).usage_in_bytes")),
                                ("max", CgroupFile.number("\(memoryDir)/\(prefix).max_usage_in_bytes")),
                                ("failcnt", CgroupFile.number("\(memoryDir)/\(prefix).failcnt"))])
        }
        var metrics = Metrics()
        metrics.hugeTLB(pageSizes: hugePageSizes(), directory: "\(root)/hugetlb\(path)") { size in
            [("usage", "hugetlb.\(size).usage_in_bytes"), ("max", "hugetlb.\(size).max_usage_in_bytes"), ("failcnt", "hugetlb.\(size).failcnt")]
        }
        // v1 `pids.max` "max" is no limit, reported as 0 (omitted) as containerd's v1 does.
        let pidsLimit = CgroupFile.number("\(pidsDir)/pids.max").flatMap { $0 == .max ? nil : $0 }
        metrics.object("pids", [("current", CgroupFile.number("\(pidsDir)/pids.current")), ("limit", pidsLimit)])
        var usage = Metrics()
        usage.add("total", CgroupFile.number("\(cpuacctDir)/cpuacct.usage"))
        usage.add("kernel", CgroupFile.number("\(cpuacctDir)/cpuacct.usage_sys"))
        usage.add("user", CgroupFile.number("\(cpuacctDir)/cpuacct.usage_user"))
        usage.array("per_cpu", CgroupFile.numbers("\(cpuacctDir)/cpuacct.usage_percpu"))
        var cpu = Metrics()
        cpu.members.append(("usage", usage.value))
        cpu.object("throttling", [("periods", cpuStat["nr_periods"]), ("throttled_periods", cpuStat["nr_throttled"]),
                                  ("throttled_time", cpuStat["throttled_time"])])
        metrics.members.append(("cpu", cpu.value))
        metrics.members.append(("memory", memory.value))
        let oom = CgroupFile.keyValues("\(memoryDir)/memory.oom_control")
        if !oom.isEmpty {
            metrics.object("memory_oom_control", [("oom_kill_disable", oom["oom_kill_disable"]), ("under_oom", oom["under_oom"]), ("oom_kill", oom["oom_kill"])])
        }
        return metrics.value
    }
}

extension ContainerStatistics {
    /// The kernel's huge page sizes as cgroup files name them (`2MB`, `1GB`: containerd's
    /// units, 1024-based), from `hugepages-<n>kB`, smallest first.
    func hugePageSizes() -> [String] {
        let kilobytes = LocalDirectory.entries(hugePagesDirectory).compactMap { name -> UInt64? in
            guard name.hasPrefix("hugepages-"), name.hasSuffix("kB") else { return nil }
            return UInt64(name.dropFirst("hugepages-".count).dropLast(2))
        }
        return kilobytes.sorted().map { size in
            var value = size, unit = 1  // in "KB"
            let units = ["B", "KB", "MB", "GB", "TB", "PB"]
            while value >= 1024 && value % 1024 == 0 && unit < units.count - 1 { value /= 1024; unit += 1 }
            return "\(value)\(units[unit])"
        }
    }
}

/// Builds one protobuf-JSON object: zero or absent numbers are omitted; sub-objects appear
/// (possibly empty) as hcsshim's fixture shows.
struct Metrics {
    var members: [(key: String, value: JSONValue)] = []
    var value: JSONValue { .object(members) }

    mutating func add(_ key: String, _ number: UInt64?) {
        guard let number, number != 0 else { return }
        members.append((key, number > UInt64(Int64.max) ? .uint(number) : .int(Int64(number))))
    }

    /// A repeated field: omitted when empty; its zeros are kept (they are per-CPU positions).
    mutating func array(_ key: String, _ numbers: [UInt64]) {
        guard !numbers.isEmpty else { return }
        members.append((key, .array(numbers.map { $0 > UInt64(Int64.max) ? .uint($0) : .int(Int64($0)) })))
    }

    mutating func object(_ key: String, _ fields: [(String, UInt64?)]) {
        var inner = Metrics()
        for (name, number) in fields { inner.add(name, number) }
        members.append((key, inner.value))
    }

    /// `hugetlb`: one entry per page size whose files the cgroup has (the controller may be
    /// absent), its numbers from `files(size)` and its `pagesize`.
    mutating func hugeTLB(pageSizes: [String], directory: String, files: (String) -> [(String, String)]) {
        var entries: [JSONValue] = []
        for size in pageSizes {
            let fields = files(size)
            guard let first = fields.first, access("\(directory)/\(first.1)", F_OK) == 0 else { continue }
            var entry = Metrics()
            for (key, file) in fields { entry.add(key, CgroupFile.number("\(directory)/\(file)")) }
            entry.members.append(("pagesize", .string(size)))
            entries.append(entry.value)
        }
        if !entries.isEmpty { members.append(("hugetlb", .array(entries))) }
    }

    mutating func nested(_ key: String, _ objects: [(String, [(String, UInt64?)])]) {
        var inner = Metrics()
        for (name, fields) in objects { inner.object(name, fields) }
        members.append((key, inner.value))
    }
}
