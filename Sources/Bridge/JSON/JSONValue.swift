/// An arbitrary JSON value, kept losslessly.
///
/// Exists for the parts of the protocol we forward rather than interpret: the OCI runtime spec
/// inside `ContainerConfig`, `OciProcess`, cgroup resources, trace contexts. Unknown fields
/// survive a decode/encode round trip, integers keep full 64-bit precision (a cgroup
/// `18446744073709551615` never becomes a Double), and object key order is preserved when
/// parsed by `JSONValueParser` (FoundationEssentials' decoder does not report key order).
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// Integers that fit Int64 (all negative integers must).
    case int(Int64)
    /// Non-negative integers above Int64.max.
    case uint(UInt64)
    /// Numbers with a fraction or exponent.
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// Members in document order.
    case object([(key: String, value: JSONValue)])

    /// The member `key` of an object, else nil, matched as Go's `encoding/json` (and so runc)
    /// matches it: members are decoded in document order, each into the field it names exactly
    /// or else ignoring case, so the last member matching either way wins. Reading the same
    /// member the runtime will read matters when a document repeats a key.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self, let index = JSONValue.memberIndex(key, in: members) else { return nil }
        return members[index].value
    }

    /// The index of the member Go would decode into field `key` (see the subscript).
    public static func memberIndex(_ key: String, in members: [(key: String, value: JSONValue)]) -> Int? {
        members.lastIndex(where: { $0.key == key || keysMatchIgnoringCase($0.key, key) })
    }

    /// Go's case-insensitive key match. Keys are ASCII in practice: those compare byte by byte
    /// with ASCII folding and allocate nothing (an absent optional field costs a scan of the
    /// keys, not a lowercased copy of each); other keys compare folded as Go folds them
    /// (`goFolded`).
    public static func keysMatchIgnoringCase(_ a: String, _ b: String) -> Bool {
        // Most keys compared are different fields: ASCII first bytes that differ even with the
        // case bit set cannot fold together (a first character's case mapping never moves it).
        if let x = a.utf8.first, let y = b.utf8.first, x < 0x80, y < 0x80, x | 0x20 != y | 0x20 { return false }
        var a = a, b = b
        let ascii = a.withUTF8 { x in
            b.withUTF8 { y -> Bool? in
                guard x.count == y.count else {
                    return x.allSatisfy({ $0 < 0x80 }) && y.allSatisfy({ $0 < 0x80 }) ? false : nil
                }
                for i in 0..<x.count {
                    let p = x[i], q = y[i]
                    if p >= 0x80 || q >= 0x80 { return nil }
                    if p == q { continue }
                    if p | 0x20 != q | 0x20 || !(0x61...0x7a).contains(p | 0x20) { return false }
                }
                return true
            }
        }
        return ascii ?? (goFolded(a) == goFolded(b))
    }

    /// Go's key folding (`encoding/json`'s `foldName`): ASCII letters to upper case, any other
    /// character to the upper case of its lower case, one character for one. So `ſ` (long s)
    /// folds to `S`, the Kelvin sign to `K`, `ı` and `İ` to `I`, as in Go; a plain lowercasing
    /// compare would see `Requeſt` as a different field from `Request` where Go (and runc) do
    /// not. Go maps character by character (simple case mapping); where Unicode's full mapping
    /// gives several characters, the first (lower) or the character itself (upper) stands in.
    static func goFolded(_ key: String) -> [Unicode.Scalar] {
        key.unicodeScalars.map { scalar in
            if scalar.isASCII {
                let v = scalar.value
                return (0x61...0x7A).contains(v) ? Unicode.Scalar(UInt8(v - 0x20)) : scalar
            }
            let lower = scalar.properties.lowercaseMapping.unicodeScalars
            let lowered = lower.first ?? scalar
            let upper = lowered.properties.uppercaseMapping.unicodeScalars
            if upper.count == 1, let single = upper.first { return single }
            return lowered
        }
    }

    /// Whether this is `null`.
    public var isNull: Bool { if case .null = self { return true } else { return false } }
    public var isObject: Bool { if case .object = self { return true } else { return false } }
    public var isString: Bool { if case .string = self { return true } else { return false } }

    /// An empty object, `{}`.
    public static let emptyObject = JSONValue.object([])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.uint(let a), .uint(let b)): return a == b
        case (.int, .uint), (.uint, .int): return false
        case (.double(let a), .double(let b)): return a == b
        case (.int(let a), .double(let b)), (.double(let b), .int(let a)):
            // Exact: 2^53 + 1 must not equal 2^53 (keeps equality transitive).
            return Double(a) == b && Int64(exactly: b) == a
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return JSONValue.membersEqual(a, b)
        default: return false
        }
    }

    /// JSON object equality: member order aside. Duplicate keys (which RFC 8259 permits and we
    /// keep, because we forward documents unchanged) pair up in their relative order, so a
    /// value with duplicates still equals itself and its round trip.
    private static func membersEqual(_ a: [(key: String, value: JSONValue)], _ b: [(key: String, value: JSONValue)]) -> Bool {
        guard a.count == b.count else { return false }
        if zip(a, b).allSatisfy({ $0.key == $1.key && $0.value == $1.value }) { return true }
        var candidates: [String: [JSONValue]] = [:]
        for member in b { candidates[member.key, default: []].append(member.value) }
        var used: [String: Int] = [:]
        for member in a {
            let next = used[member.key, default: 0]
            guard let values = candidates[member.key], next < values.count, values[next] == member.value else { return false }
            used[member.key] = next + 1
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(b)
        case .int(let i): hasher.combine(Double(i))
        case .uint(let u): hasher.combine(u)
        case .double(let d): hasher.combine(d)
        case .string(let s): hasher.combine(s)
        case .array(let a): hasher.combine(a)
        case .object(let members): hasher.combine(members.count)
        }
    }
}

extension JSONValue: Codable {
    /// The generic path (inside other Codable types). Probes the likely kinds first: every
    /// failed probe costs a thrown error, so leaves (strings, numbers) are tried before
    /// containers. Whole documents should use `JSONValueParser` instead.
    public init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer() {
            if single.decodeNil() { self = .null; return }
            if let s = try? single.decode(String.self) { self = .string(s); return }
            if let i = try? single.decode(Int64.self) { self = .int(i); return }
            if let b = try? single.decode(Bool.self) { self = .bool(b); return }
            if let u = try? single.decode(UInt64.self) { self = .uint(u); return }
            if let d = try? single.decode(Double.self) { self = .double(d); return }
        }
        if let object = try? decoder.container(keyedBy: AnyCodingKey.self) {
            var members: [(key: String, value: JSONValue)] = []
            members.reserveCapacity(object.allKeys.count)
            for key in object.allKeys {
                members.append((key.stringValue, try object.decode(JSONValue.self, forKey: key)))
            }
            self = .object(members)
            return
        }
        var array = try decoder.unkeyedContainer()
        var elements: [JSONValue] = []
        if let count = array.count { elements.reserveCapacity(count) }
        while !array.isAtEnd { elements.append(try array.decode(JSONValue.self)) }
        self = .array(elements)
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer(); try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer(); try c.encode(b)
        case .int(let i):
            var c = encoder.singleValueContainer(); try c.encode(i)
        case .uint(let u):
            var c = encoder.singleValueContainer(); try c.encode(u)
        case .double(let d):
            var c = encoder.singleValueContainer(); try c.encode(d)
        case .string(let s):
            var c = encoder.singleValueContainer(); try c.encode(s)
        case .array(let elements):
            var c = encoder.unkeyedContainer()
            for element in elements { try c.encode(element) }
        case .object(let members):
            var c = encoder.container(keyedBy: AnyCodingKey.self)
            for member in members { try c.encode(member.value, forKey: AnyCodingKey(member.key)) }
        }
    }
}

/// A coding key for any string: used for pass-through objects and maps.
public struct AnyCodingKey: CodingKey, Hashable, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(_ string: String) { stringValue = string }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { stringValue = String(intValue) }
}
