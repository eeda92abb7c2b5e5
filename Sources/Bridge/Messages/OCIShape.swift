/// The shape of the OCI runtime-spec documents the host embeds (Create's `OciSpecification`,
/// ExecuteProcess's `OciProcess`, ModifySettings' `ContainerConstraints.Linux`) as Go's guest
/// decodes them: into runtime-spec's typed `Spec`, `Process` and `LinuxResources`.
///
/// Exists so that a field of the wrong type fails the request as invalid JSON (0xC037010D)
/// before anything runs, as in Go, instead of being written into a bundle and refused by runc
/// with E_FAIL (or read as a default by the agent: a `"terminal":"yes"` taken for false).
/// The agent keeps these documents as JSON and hands them to runc; this only checks them.
/// Go's rules: keys match exactly, then case-insensitively (`JSONValue`'s subscript); unknown
/// keys are ignored; `null` is accepted anywhere (it leaves a Go field as it was); an integer
/// field takes no fraction and nothing out of its range. Every field of the runtime-spec
/// structs the guest or runc reads is listed; the rarely sent sections (`hooks`, `seccomp`,
/// `scheduler`, `intelRdt`, ...) are checked for their container type only.
indirect enum OCIShape: Sendable {
    case bool, string, int64, uint64, uint32
    /// An object of which these members are checked.
    case fields([(String, OCIShape)])
    case array(OCIShape)
    /// `map[string]T`.
    case map(OCIShape)
    /// An object, its members unchecked.
    case object

    /// `LinuxResources`; the rarely sent sections (`blockIO`, `network`, `rdma`) are checked
    /// for their container type only, runc checks the rest.
    static let linuxResources: OCIShape = .fields([
        ("memory", .fields([("limit", .int64), ("reservation", .int64), ("swap", .int64), ("kernel", .int64), ("kernelTCP", .int64),
                            ("swappiness", .uint64), ("disableOOMKiller", .bool), ("useHierarchy", .bool),
                            ("checkBeforeUpdate", .bool)])),
        ("cpu", .fields([("shares", .uint64), ("quota", .int64), ("burst", .uint64), ("period", .uint64), ("realtimeRuntime", .int64),
                         ("realtimePeriod", .uint64), ("cpus", .string), ("mems", .string), ("idle", .int64)])),
        ("pids", .fields([("limit", .int64)])),
        ("devices", .array(.fields([("allow", .bool), ("type", .string), ("major", .int64), ("minor", .int64), ("access", .string)]))),
        ("unified", .map(.string)),
        ("hugepageLimits", .array(.fields([("pageSize", .string), ("limit", .uint64)]))),
        ("blockIO", .object), ("network", .object), ("rdma", .object),
    ])

    static let idMapping: OCIShape = .fields([("containerID", .uint32), ("hostID", .uint32), ("size", .uint32)])

    static let process: OCIShape = .fields([
        ("terminal", .bool),
        ("consoleSize", .fields([("height", .uint64), ("width", .uint64)])),
        ("user", .fields([("uid", .uint32), ("gid", .uint32), ("umask", .uint32), ("additionalGids", .array(.uint32)),
                          ("username", .string)])),
        ("args", .array(.string)), ("commandLine", .string), ("env", .array(.string)), ("cwd", .string),
        ("capabilities", .fields(["bounding", "effective", "inheritable", "permitted", "ambient"].map { ($0, .array(.string)) })),
        ("rlimits", .array(.fields([("type", .string), ("hard", .uint64), ("soft", .uint64)]))),
        ("noNewPrivileges", .bool), ("apparmorProfile", .string), ("oomScoreAdj", .int64), ("selinuxLabel", .string),
        ("scheduler", .object), ("ioPriority", .object),
    ])

    static let spec: OCIShape = .fields([
        ("ociVersion", .string),
        ("process", process),
        ("root", .fields([("path", .string), ("readonly", .bool)])),
        ("hostname", .string), ("domainname", .string),
        ("mounts", .array(.fields([("destination", .string), ("type", .string), ("source", .string), ("options", .array(.string)),
                                   ("uidMappings", .array(idMapping)), ("gidMappings", .array(idMapping))]))),
        ("hooks", .object),
        ("annotations", .map(.string)),
        ("linux", .fields([
            ("uidMappings", .array(idMapping)), ("gidMappings", .array(idMapping)),
            ("sysctl", .map(.string)),
            ("resources", linuxResources),
            ("cgroupsPath", .string),
            ("namespaces", .array(.fields([("type", .string), ("path", .string)]))),
            ("devices", .array(.fields([("path", .string), ("type", .string), ("major", .int64), ("minor", .int64),
                                        ("fileMode", .uint32), ("uid", .uint32), ("gid", .uint32)]))),
            ("seccomp", .object), ("rootfsPropagation", .string),
            ("maskedPaths", .array(.string)), ("readonlyPaths", .array(.string)),
            ("mountLabel", .string), ("intelRdt", .object), ("personality", .object),
        ])),
    ])

    /// Throws `DecodingError.typeMismatch` naming the first value Go could not decode, by its
    /// path from `root` (`Spec.process.terminal`).
    func check(_ value: JSONValue, path root: String, codingPath: [any CodingKey] = []) throws {
        do {
            try check(value)
        } catch {
            throw DecodingError.typeMismatch(JSONValue.self, .init(
                codingPath: codingPath, debugDescription: "json: cannot unmarshal into Go struct field \(root)\(error.path) of type \(error.expected)"))
        }
    }

    /// Where a check failed: the path is built only then, as the error unwinds (a spec has
    /// hundreds of values, and formatting each one's path cost more than checking it).
    struct Mismatch: Error {
        var path = ""
        let expected: String
        func within(_ component: String) -> Mismatch { Mismatch(path: component + path, expected: expected) }
    }

    private func check(_ value: JSONValue) throws(Mismatch) {
        if value.isNull { return }
        switch self {
        case .bool: guard case .bool = value else { throw Mismatch(expected: "bool") }
        case .string: guard case .string = value else { throw Mismatch(expected: "string") }
        case .int64: guard case .int = value else { throw Mismatch(expected: "int64") }
        case .uint64:
            switch value {
            case .uint: break
            case .int(let i) where i >= 0: break
            default: throw Mismatch(expected: "uint64")
            }
        case .uint32:
            switch value {
            case .uint(let u) where u <= UInt64(UInt32.max): break
            case .int(let i) where i >= 0 && i <= Int64(UInt32.max): break
            default: throw Mismatch(expected: "uint32")
            }
        case .object: guard case .object = value else { throw Mismatch(expected: "object") }
        case .fields(let fields):
            guard case .object = value else { throw Mismatch(expected: "object") }
            for (name, shape) in fields {
                guard let member = value[name] else { continue }
                do { try shape.check(member) } catch { throw error.within(".\(name)") }
            }
        case .array(let element):
            guard case .array(let items) = value else { throw Mismatch(expected: "array") }
            for (index, item) in items.enumerated() {
                do { try element.check(item) } catch { throw error.within("[\(index)]") }
            }
        case .map(let element):
            guard case .object(let members) = value else { throw Mismatch(expected: "map[string]") }
            for member in members {
                do { try element.check(member.value) } catch { throw error.within("[\(member.key)]") }
            }
        }
    }
}
