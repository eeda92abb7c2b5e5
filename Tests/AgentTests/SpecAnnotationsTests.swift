@testable import Agent
import Bridge
import Glibc
import Testing

/// The spec rewrites that need no container: privileged device lists, the core limit beside
/// other rlimits, path cleaning and the mount table's escapes.
@Suite("Spec annotations and special sources")
struct SpecAnnotationsTests {
    static func spec(_ annotations: [(String, String)], devices: [JSONValue] = [], rules: [JSONValue] = []) -> JSONValue {
        .object([("annotations", .object(annotations.map { ($0.0, .string($0.1)) })),
                 ("process", .object([("rlimits", .array([.object([("type", .string("RLIMIT_NOFILE")), ("hard", .int(1024)), ("soft", .int(1024))])]))])),
                 ("linux", .object([("devices", .array(devices)), ("resources", .object([("devices", .array(rules))]))]))])
    }

    @Test("privileged: every VM device, the spec's own entries kept or replaced by path, one allow-all rule")
    func privileged() throws {
        let null = try DeviceNode(path: "/dev/null")
        var zero = try DeviceNode(path: "/dev/zero")
        zero.path = "/dev/custom"
        let mine: JSONValue = .object([("path", .string("/dev/mine")), ("type", .string("c")), ("major", .int(10)), ("minor", .int(200))])
        let stale: JSONValue = .object([("path", .string("/dev/null")), ("type", .string("c")), ("major", .int(9)), ("minor", .int(9))])
        let deny: JSONValue = .object([("allow", .bool(false)), ("access", .string("rwm"))])
        var spec = Self.spec([("io.microsoft.virtualmachine.lcow.privileged", "true")], devices: [mine, stale], rules: [deny])
        try SpecAnnotations.applyWorkload(&spec, hostDevices: { [null, zero] })
        #expect(spec["linux"]?["devices"] == .array([mine, null.specEntry, zero.specEntry]))
        #expect(spec["linux"]?["resources"]?["devices"] == .array([.object([("allow", .bool(true)), ("access", .string("rwm"))])]))
        // What a privileged container gets here: /dev's nodes, not the pty or shm directories.
        let all = DeviceNode.all()
        #expect(all.contains(null) && all.contains { $0.path == "/dev/zero" })
        #expect(!all.contains { $0.path.hasPrefix("/dev/pts/") || $0.path == "/dev/console" })
    }

    @Test("not privileged: only the named devices, re-read, each with its own rule after the spec's")
    func namedDevices() throws {
        let deny: JSONValue = .object([("allow", .bool(false)), ("access", .string("rwm"))])
        var spec = Self.spec([("io.microsoft.virtualmachine.lcow.privileged", "yes")],
                             devices: [.object([("path", .string("/dev/zero"))])], rules: [deny])
        try SpecAnnotations.applyWorkload(&spec, hostDevices: { Issue.record("host devices listed"); return [] })
        let zero = try DeviceNode(path: "/dev/zero")
        #expect(spec["linux"]?["devices"] == .array([zero.specEntry]))
        #expect(spec["linux"]?["resources"]?["devices"] == .array([deny, zero.allowRule()]))
        #expect(zero.type == "c" && zero.major == 1 && zero.minor == 5)
    }

    @Test("rlimitcore is appended to the process's other rlimits")
    func coreLimit() throws {
        var spec = Self.spec([("io.microsoft.lcow.rlimitcore", "0;18446744073709551615")])
        try SpecAnnotations.applyCoreLimit(&spec)
        guard case .array(let limits)? = spec["process"]?["rlimits"] else { Issue.record("no rlimits"); return }
        #expect(limits.count == 2)
        #expect(limits.last == .object([("type", .string("RLIMIT_CORE")), ("hard", .uint(.max)), ("soft", .uint(0))]))
    }

    @Test("paths are cleaned as Go cleans them; mount table escapes decoded")
    func paths() {
        #expect(cleanPath("/a/b/../c/./d//e/") == "/a/c/d/e")
        #expect(cleanPath("/a/sandboxMounts/../../x") == "/x")
        #expect(cleanPath("/../../") == "/")
        #expect(SandboxMounts.unescapeMountField("/tmp/with\\040space\\011tab\\134") == "/tmp/with space\ttab\\")
        #expect(SandboxMounts.unescapeMountField("/plain") == "/plain")
    }
}

/// OCI resources as a pod cgroup's files, on both cgroup versions (a fake v2 root: only its
/// `cgroup.controllers` matters to the conversion).
@Suite("Pod cgroup settings")
struct SandboxCgroupSettingsTests {
    static let resources: JSONValue = .object([
        ("memory", .object([("limit", .int(268_435_456)), ("reservation", .int(-1))])),
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
            .init(controller: "memory", file: "memory.low", value: "max"),
            .init(controller: "cpu", file: "cpu.weight", value: "39"),
            .init(controller: "cpu", file: "cpu.max", value: "50000 100000"),
            .init(controller: "cpuset", file: "cpuset.cpus", value: "0"),
            .init(controller: "pids", file: "pids.max", value: "max"),
            .init(controller: "memory", file: "memory.high", value: "200000000"),
        ])
    }
}
