import Bridge
import FoundationEssentials
import Glibc

/// Turns the host's OCI spec into the one runc gets, and writes the bundle (guest-behaviour
/// §7.1). The per-kind rewrite (sandbox, workload, standalone) lives in `Spec/`.
enum ContainerPreparation {
    static func prepare(spec: JSONValue, id: String, bundle: String, configuration: AgentConfiguration) throws -> JSONValue {
        for section in ["process", "root", "linux"] where spec[section] == nil || spec[section] == .null {
            throw BridgeError(.fail, "container \(id): the OCI spec has no '\(section)' section")
        }
        try makeDirectory(bundle, mode: 0o700)
        var rewritten = spec
        rewritten.setMember(["linux", "cgroupsPath"], .string("\(configuration.cgroupParent)/\(id)"))
        rewritten.removeMember("windows")
        let bytes = try JSONEncoder().encode(rewritten) + [0x0A]
        try writeFile("\(bundle)/config.json", Array(bytes))
        return rewritten
    }

    static func statistics(cgroupsPath: JSONValue?) throws -> JSONValue {
        guard case .string(let path)? = cgroupsPath else { throw BridgeError(.fail, "container has no cgroupsPath") }
        return try ContainerStatistics().metrics(cgroupsPath: path)
    }
}

extension JSONValue {
    /// Sets the member at `path` (creating intermediate objects).
    mutating func setMember(_ path: [String], _ value: JSONValue) {
        guard let first = path.first else { self = value; return }
        guard case .object(var members) = self else { return }
        if let index = members.firstIndex(where: { $0.key == first }) {
            members[index].value.setMember(Array(path.dropFirst()), value)
        } else {
            var child = JSONValue.object([])
            child.setMember(Array(path.dropFirst()), value)
            members.append((first, child))
        }
        self = .object(members)
    }

    /// Removes the top-level member `key`.
    mutating func removeMember(_ key: String) {
        guard case .object(let members) = self else { return }
        self = .object(members.filter { $0.key != key })
    }
}
