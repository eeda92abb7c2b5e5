import Bridge
import Logging

/// The OCI annotations by which hcsshim asks the guest to change a container's spec
/// (guest-behaviour §7.1 steps 6.7, 7.6, 7.7): a core-dump limit, the size of `/dev/shm`, and
/// privileged containers, which get every device of the VM. Values are taken as the Go guest
/// takes them (exact keys; flags as `strconv.ParseBool` reads them); a malformed limit or size
/// is a clear error.
enum SpecAnnotations {
    static let rlimitCore = "io.microsoft.lcow.rlimitcore"
    static let shmSizeKB = "io.microsoft.lcow.shm.size-kb"
    static let privileged = "io.microsoft.virtualmachine.lcow.privileged"

    /// The annotation `key`'s value, if the spec has it as a string.
    static func value(_ spec: JSONValue, _ key: String) -> String? {
        guard case .object(let annotations)? = spec["annotations"] else { return nil }
        // A Go map key: exact, the last of repeated keys wins.
        guard let member = annotations.last(where: { $0.key == key }), case .string(let value) = member.value else { return nil }
        return value
    }

    /// A boolean annotation as Go's `strconv.ParseBool` reads it; anything else is false.
    static func flag(_ spec: JSONValue, _ key: String) -> Bool {
        ["1", "t", "T", "true", "TRUE", "True"].contains(value(spec, key) ?? "")
    }

    /// `rlimitcore` = `"<soft>;<hard>"`: an `RLIMIT_CORE` entry appended to `process.rlimits`.
    static func applyCoreLimit(_ spec: inout JSONValue) throws {
        guard let text = value(spec, rlimitCore), !text.isEmpty else { return }
        let parts = text.split(separator: ";", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw BridgeError(.fail, "\(rlimitCore) '\(text)': wrong number of values, expected '<soft>;<hard>'") }
        guard let soft = UInt64(parts[0]), let hard = UInt64(parts[1]) else {
            throw BridgeError(.fail, "\(rlimitCore) '\(text)': the soft and hard limits must be unsigned integers")
        }
        let existing: [JSONValue] = { if case .array(let r)? = spec["process"]?["rlimits"] { return r } else { return [] } }()
        let entry = JSONValue.object([("type", .string("RLIMIT_CORE")), ("hard", .uint(hard)), ("soft", .uint(soft))])
        spec.setMember(["process", "rlimits"], .array(existing + [entry]))
    }

    /// A workload's annotations (step 7.6): `/dev/shm`'s size, then its devices: all of the
    /// VM's with an allow-all rule when privileged, otherwise each `linux.devices` entry
    /// re-read from the VM's `/dev` with a rule allowing it.
    static func applyWorkload(_ spec: inout JSONValue, hostDevices: () -> [DeviceNode] = { DeviceNode.all() }) throws {
        if let text = value(spec, shmSizeKB) {
            guard let size = UInt64(text), size > 0 else {
                throw BridgeError(.fail, "\(shmSizeKB) '\(text)': the /dev/shm size must be a positive number of KiB")
            }
            var mounts: [JSONValue] = { if case .array(let m)? = spec["mounts"] { return m } else { return [] } }()
            mounts.removeAll { $0["destination"] == .string("/dev/shm") }
            let options = ["nosuid", "noexec", "nodev", "mode=1777", "size=\(size)k"].map(JSONValue.string)
            mounts.append(.object([("destination", .string("/dev/shm")), ("type", .string("tmpfs")), ("source", .string("shm")),
                                   ("options", .array(options))]))
            spec.setMember(["mounts"], .array(mounts))
        }
        let requested: [JSONValue] = { if case .array(let d)? = spec["linux"]?["devices"] { return d } else { return [] } }()
        let isPrivileged = flag(spec, privileged)
        guard !requested.isEmpty || isPrivileged else { return }
        var rules: [JSONValue] = { if case .array(let r)? = spec["linux"]?["resources"]?["devices"] { return r } else { return [] } }()
        var devices: [JSONValue] = []
        if isPrivileged {
            devices = requested
            for node in hostDevices() { add(node, to: &devices) }
            rules = [.object([("allow", .bool(true)), ("access", .string("rwm"))])]
        } else {
            for entry in requested {
                guard case .string(let path)? = entry["path"] else { throw BridgeError(.fail, "linux.devices entry without a path") }
                let node = try DeviceNode(path: path)
                if add(node, to: &devices) { rules.append(node.allowRule()) }
            }
        }
        spec.setMember(["linux", "devices"], .array(devices))
        spec.setMember(["linux", "resources", "devices"], .array(rules))
    }

    /// Adds `node` unless it has no numbers (a link to nothing); an entry of the same path is
    /// replaced. True when it was appended (and so needs its own allow rule).
    @discardableResult
    private static func add(_ node: DeviceNode, to devices: inout [JSONValue]) -> Bool {
        if node.major == 0 && node.minor == 0 { return false }
        if let index = devices.firstIndex(where: { $0["path"] == .string(node.path) }) {
            devices[index] = node.specEntry
            return false
        }
        devices.append(node.specEntry)
        return true
    }
}
