import Bridge

/// The rule runc applies to a container ID, checked before the agent builds any path from one:
/// the ID names the run directory (`<run dir>/<id>`), the pod cgroup and runc's state, and an
/// ID such as `..` would make a failed create's clean-up remove a directory far above them.
enum ContainerID {
    /// runc's `^[\w+-\.]+$` (Go's class `+-\.` is the range `+` to `.`: `+ , - .`), and not a
    /// name that path cleaning changes (`.`, `..`).
    static func isValid(_ id: String) -> Bool {
        guard !id.isEmpty, id != ".", id != ".." else { return false }
        return id.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "+")...UInt8(ascii: "."):
                return true
            default:
                return false
            }
        }
    }

    /// Throws E_INVALIDARG, the HRESULT runc's "invalid container ID format" maps to (§10).
    static func validate(_ id: String) throws(BridgeError) {
        guard isValid(id) else { throw BridgeError(.invalidArgument, "invalid container ID format: '\(id)'") }
    }
}
