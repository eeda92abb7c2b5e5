@testable import Agent
import Bridge
import Glibc
import Testing

/// The spec rewrites that need no container: privileged device lists, the core limit beside
/// other rlimits, path cleaning and the mount table's escapes.
@Suite("Spec annotations and special sources", .timeLimit(.minutes(5)))
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

    @Test("flags read as Go's strconv.ParseBool reads them")
    func flags() {
        for (text, expected) in [("true", true), ("True", true), ("TRUE", true), ("1", true), ("t", true),
                                 ("yes", false), ("false", false), ("0", false), ("", false)] {
            #expect(SpecAnnotations.flag(Self.spec([("k", text)]), "k") == expected, "\(text)")
        }
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

    @Test("a rewrite lands on the member runc decodes and leaves it the only one under its key")
    func rewriteWithRepeatedKeys() throws {
        // runc (Go) decodes "Linux" last: rewriting "linux" alone would leave "/evil" in force.
        var spec = try JSONValueParser.parse(#"{"linux":{"cgroupsPath":""},"ociVersion":"1","Linux":{"cgroupsPath":"/evil","x":1}}"#)
        spec.setMember(["linux", "cgroupsPath"], .string("/pods/p/c"))
        #expect(spec.serialized() == #"{"ociVersion":"1","linux":{"cgroupsPath":"/pods/p/c","x":1}}"#)
        // A null (or any non-object) on the way is replaced, not silently left without the rewrite.
        var nulled = try JSONValueParser.parse(#"{"linux":{"cgroupsPath":"/a"},"LINUX":null}"#)
        nulled.setMember(["linux", "cgroupsPath"], .string("/pods/p/c"))
        #expect(nulled.serialized() == #"{"linux":{"cgroupsPath":"/pods/p/c"}}"#)
    }
}
