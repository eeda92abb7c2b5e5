/// The shape of an OCI `LinuxResources` object as Go decodes it into runtime-spec's typed
/// struct: the guest decodes `ContainerConstraints.Linux` that way, so a field of the wrong
/// type fails the request as invalid JSON (0xC037010D) before anything runs, instead of
/// reaching `runc update`. Keys match as Go matches them (exact, then case-insensitive);
/// `null` is allowed anywhere (pointer fields). Sections whose inside is rarely sent
/// (`blockIO`, `hugepageLimits`, `network`, `rdma`) are checked for their container type only;
/// runc checks the rest.
enum LinuxResourcesShape {
    enum Kind { case int64, uint64, bool, string }

    static let memory: [(String, Kind)] = [
        ("limit", .int64), ("reservation", .int64), ("swap", .int64), ("kernel", .int64), ("kernelTCP", .int64),
        ("swappiness", .uint64), ("disableOOMKiller", .bool), ("useHierarchy", .bool), ("checkBeforeUpdate", .bool),
    ]
    static let cpu: [(String, Kind)] = [
        ("shares", .uint64), ("quota", .int64), ("burst", .uint64), ("period", .uint64), ("realtimeRuntime", .int64),
        ("realtimePeriod", .uint64), ("cpus", .string), ("mems", .string), ("idle", .int64),
    ]
    static let pids: [(String, Kind)] = [("limit", .int64)]
    static let device: [(String, Kind)] = [("allow", .bool), ("type", .string), ("major", .int64), ("minor", .int64), ("access", .string)]

    /// Throws `DecodingError.typeMismatch` naming the first field Go could not decode.
    static func check(_ value: JSONValue, codingPath: [any CodingKey]) throws {
        func mismatch(_ field: String, _ expected: String) -> DecodingError {
            DecodingError.typeMismatch(JSONValue.self, .init(codingPath: codingPath,
                                                             debugDescription: "json: cannot unmarshal into Go struct field LinuxResources.\(field) of type \(expected)"))
        }
        func fields(_ object: JSONValue?, _ section: String, _ shape: [(String, Kind)]) throws {
            guard let object, !object.isNull else { return }
            guard case .object = object else { throw mismatch(section, "object") }
            for (name, kind) in shape {
                guard let field = object[name], !field.isNull else { continue }
                if !matches(field, kind) { throw mismatch("\(section).\(name)", "\(kind)") }
            }
        }
        if value.isNull { return }
        guard case .object = value else { throw mismatch("Linux", "object") }
        try fields(value["memory"], "memory", memory)
        try fields(value["cpu"], "cpu", cpu)
        try fields(value["pids"], "pids", pids)
        if let devices = value["devices"], !devices.isNull {
            guard case .array(let list) = devices else { throw mismatch("devices", "array") }
            for entry in list { try fields(entry, "devices", device) }
        }
        if let unified = value["unified"], !unified.isNull {
            guard case .object(let members) = unified else { throw mismatch("unified", "map[string]string") }
            for member in members where !member.value.isNull {
                guard case .string = member.value else { throw mismatch("unified", "map[string]string") }
            }
        }
        for section in ["blockIO", "network", "rdma"] {
            if let v = value[section], !v.isNull, !isObject(v) { throw mismatch(section, "object") }
        }
        if let v = value["hugepageLimits"], !v.isNull, !isArray(v) { throw mismatch("hugepageLimits", "array") }
    }

    static func matches(_ value: JSONValue, _ kind: Kind) -> Bool {
        switch (kind, value) {
        case (.int64, .int): return true
        case (.uint64, .int(let i)): return i >= 0
        case (.uint64, .uint): return true
        case (.bool, .bool), (.string, .string): return true
        default: return false
        }
    }

    static func isObject(_ value: JSONValue) -> Bool { if case .object = value { return true } else { return false } }
    static func isArray(_ value: JSONValue) -> Bool { if case .array = value { return true } else { return false } }
}
