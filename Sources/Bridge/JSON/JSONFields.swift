/// Reads typed fields out of a parsed JSON object with Go `encoding/json` rules: a missing key
/// or `null` gives the zero value, a wrong type is an error, and keys match exactly first, then
/// case-insensitively (as Go does). Used by the documents parsed with `JSONValueParser`.
public struct JSONFields {
    public struct TypeError: Error, CustomStringConvertible, Sendable {
        public var key: String
        public var expected: String
        public var description: String { "cannot unmarshal into field \(key) of type \(expected)" }
    }

    private let members: [(key: String, value: JSONValue)]

    /// `value` must be an object or `null` (treated as empty).
    public init(_ value: JSONValue, what: String = "document") throws {
        switch value {
        case .object(let members): self.members = members
        case .null: members = []
        default: throw TypeError(key: what, expected: "object")
        }
    }

    /// The value for `key`; nil when absent or `null`.
    public func value(_ key: String) -> JSONValue? {
        // Go decodes the members in document order, each into the field it matches exactly or
        // else ignoring case: the last match of either kind wins. Exact matches are cheap to
        // find; only a member after the last of them can win by matching ignoring case.
        var found: JSONValue?
        var firstAfterExact = 0
        for (index, m) in members.enumerated() where m.key == key { found = m.value; firstAfterExact = index + 1 }
        for m in members[firstAfterExact...].reversed() where JSONValue.keysMatchIgnoringCase(m.key, key) {
            found = m.value
            break
        }
        if case .null = found { return nil }
        return found
    }

    public func string(_ key: String) throws -> String {
        guard let v = value(key) else { return "" }
        guard case .string(let s) = v else { throw TypeError(key: key, expected: "string") }
        return s
    }

    public func bool(_ key: String) throws -> Bool {
        guard let v = value(key) else { return false }
        guard case .bool(let b) = v else { throw TypeError(key: key, expected: "bool") }
        return b
    }

    public func uint32(_ key: String) throws -> UInt32 { try integer(key) }

    public func int32(_ key: String) throws -> Int32 { try integer(key) }

    /// An integer field of type `T`: an integral JSON number in `T`'s range (Go rejects
    /// fractions, exponents and out-of-range values for integer fields).
    public func integer<T: FixedWidthInteger>(_ key: String, as type: T.Type = T.self) throws -> T {
        guard let v = value(key) else { return 0 }
        switch v {
        case .int(let i): if let exact = T(exactly: i) { return exact }
        case .uint(let u): if let exact = T(exactly: u) { return exact }
        default: break
        }
        throw TypeError(key: key, expected: "\(T.self)".lowercased())
    }

    public func strings(_ key: String) throws -> [String] {
        guard let v = value(key) else { return [] }
        guard case .array(let elements) = v else { throw TypeError(key: key, expected: "[]string") }
        return try elements.map { e in
            switch e {
            case .string(let s): return s
            case .null: return ""
            default: throw TypeError(key: key, expected: "[]string")
            }
        }
    }

    public func stringMap(_ key: String) throws -> [String: String] {
        guard let v = value(key) else { return [:] }
        return try stringMap(from: v, key: key)
    }

    /// `v` as a map of strings.
    public func stringMap(from v: JSONValue, key: String = "map") throws -> [String: String] {
        guard case .object(let members) = v else { throw TypeError(key: key, expected: "map[string]string") }
        var map: [String: String] = [:]
        for m in members {
            switch m.value {
            case .string(let s): map[m.key] = s
            case .null: map[m.key] = ""
            default: throw TypeError(key: key, expected: "map[string]string")
            }
        }
        return map
    }
}
