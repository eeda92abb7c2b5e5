import FoundationEssentials

/// Decodes `Decodable` types from JSON with Go's `encoding/json` rules, which are what both
/// hcsshim peers use: a struct field takes the last member whose key matches its name exactly or
/// ignoring case (a map takes each key exactly, the last repeat winning), a number with a
/// fraction or exponent does not fit an integer field, `null` where a value is required reads
/// as the zero value (`""`, 0, false, an empty object or array; an optional reads it as nil),
/// and a value kept as `JSONValue` is the parsed node itself, member order included.
///
/// Exists so that every body follows the same rules as the hot messages' direct decoders
/// (`DirectJSONDecodable`, built on the same `JSONValue.memberIndex`): FoundationEssentials'
/// `JSONDecoder` matches keys exactly and keeps the first of repeated keys, so a body the Go
/// guest would read one way was read another. The document is parsed once by
/// `JSONValueParser` (strict RFC 8259, depth-bounded) and the types read the tree.
public struct GoJSONDecoder: Sendable {
    public init() {}

    /// Decodes `type` from a JSON document.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        try decode(type, from: try JSONValueParser.parse(bytes))
    }

    /// Decodes `type` from a JSON document.
    public func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try data.withUnsafeBytes { try decode(type, from: $0) }
    }

    /// Decodes `type` from a parsed document.
    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try JSONValueDecoder(value: value, codingPath: []).decodeValue(type)
    }
}

/// One node of the tree seen as a `Decoder`.
struct JSONValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        switch value {
        case .object(let members): return KeyedDecodingContainer(KeyedContainer<Key>(members: members, codingPath: codingPath))
        case .null: return KeyedDecodingContainer(KeyedContainer<Key>(members: [], codingPath: codingPath))
        default: throw mismatch([String: JSONValue].self, value, codingPath)
        }
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch value {
        case .array(let elements): return UnkeyedContainer(elements: elements, codingPath: codingPath)
        case .null: return UnkeyedContainer(elements: [], codingPath: codingPath)
        default: throw mismatch([JSONValue].self, value, codingPath)
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleContainer(value: value, codingPath: codingPath) }

    /// `T` from this node: a `JSONValue` is the node itself, anything else decodes itself.
    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        if T.self == JSONValue.self { return value as! T }
        return try T(from: self)
    }
}

private func mismatch(_ type: Any.Type, _ value: JSONValue, _ path: [any CodingKey], _ detail: String? = nil) -> DecodingError {
    let found: String
    switch value {
    case .null: found = "null"
    case .bool: found = "a boolean"
    case .int, .uint, .double: found = "a number"
    case .string: found = "a string"
    case .array: found = "an array"
    case .object: found = "an object"
    }
    return .typeMismatch(type, .init(codingPath: path, debugDescription: detail ?? "expected \(type), found \(found)"))
}

/// Scalars with Go's conversions: integers only from integral numbers in range, floats from any
/// number, strings and booleans only from their own kind; `null` is the zero value.
private enum Scalar {
    static func bool(_ value: JSONValue, _ path: [any CodingKey]) throws -> Bool {
        switch value {
        case .bool(let b): return b
        case .null: return false
        default: throw mismatch(Bool.self, value, path)
        }
    }

    static func string(_ value: JSONValue, _ path: [any CodingKey]) throws -> String {
        switch value {
        case .string(let s): return s
        case .null: return ""
        default: throw mismatch(String.self, value, path)
        }
    }

    static func integer<T: FixedWidthInteger>(_ value: JSONValue, _ path: [any CodingKey]) throws -> T {
        let result: T?
        switch value {
        case .null: return 0
        case .int(let i): result = T(exactly: i)
        case .uint(let u): result = T(exactly: u)
        case .double: throw mismatch(T.self, value, path, "a number with a fraction or exponent does not fit \(T.self)")
        default: throw mismatch(T.self, value, path)
        }
        guard let result else { throw mismatch(T.self, value, path, "number out of range for \(T.self)") }
        return result
    }

    static func double(_ value: JSONValue, _ path: [any CodingKey]) throws -> Double {
        switch value {
        case .int(let i): return Double(i)
        case .uint(let u): return Double(u)
        case .double(let d): return d
        case .null: return 0
        default: throw mismatch(Double.self, value, path)
        }
    }

    static func float(_ value: JSONValue, _ path: [any CodingKey]) throws -> Float {
        let d = try double(value, path)
        guard d.isFinite, abs(d) <= Double(Float.greatestFiniteMagnitude) else {
            throw mismatch(Float.self, value, path, "number out of range for Float")
        }
        return Float(d)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [(key: String, value: JSONValue)]
    let codingPath: [any CodingKey]
    /// For a map (`[String: T]`: its key type takes any string), each key's last member: a
    /// map's keys match exactly, as Go decodes maps, and are looked up once each (a scan per
    /// key would make a large map quadratic). nil for a struct, whose fields match Go's way
    /// (`JSONValue.memberIndex`).
    let mapIndex: [String: Int]?

    init(members: [(key: String, value: JSONValue)], codingPath: [any CodingKey]) {
        self.members = members
        self.codingPath = codingPath
        if Key(stringValue: "\u{1}map probe\u{1}") != nil {
            var index = [String: Int](minimumCapacity: members.count)
            for (position, member) in members.enumerated() { index[member.key] = position }
            mapIndex = index
        } else {
            mapIndex = nil
        }
    }

    /// The distinct keys in document order (of their last occurrence).
    var allKeys: [Key] {
        if let mapIndex {
            return members.indices.compactMap { mapIndex[members[$0].key] == $0 ? Key(stringValue: members[$0].key) : nil }
        }
        var seen = Set<String>()
        return members.reversed().compactMap { member in seen.insert(member.key).inserted ? Key(stringValue: member.key) : nil }.reversed()
    }

    private func lookup(_ key: Key) -> JSONValue? {
        if let mapIndex { return mapIndex[key.stringValue].map { members[$0].value } }
        return JSONValue.memberIndex(key.stringValue, in: members).map { members[$0].value }
    }

    private func require(_ key: Key) throws -> JSONValue {
        guard let value = lookup(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no member \"\(key.stringValue)\""))
        }
        return value
    }

    private func path(_ key: Key) -> [any CodingKey] { codingPath + [key] }

    func contains(_ key: Key) -> Bool { lookup(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool { try require(key).isNull }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try Scalar.bool(require(key), path(key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try Scalar.string(require(key), path(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try Scalar.double(require(key), path(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try Scalar.float(require(key), path(key)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try Scalar.integer(require(key), path(key)) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try Scalar.integer(require(key), path(key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try Scalar.integer(require(key), path(key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try Scalar.integer(require(key), path(key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try Scalar.integer(require(key), path(key)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try Scalar.integer(require(key), path(key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try Scalar.integer(require(key), path(key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try Scalar.integer(require(key), path(key)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try Scalar.integer(require(key), path(key)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try Scalar.integer(require(key), path(key)) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONValueDecoder(value: require(key), codingPath: path(key)).decodeValue(type)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try JSONValueDecoder(value: require(key), codingPath: path(key)).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try JSONValueDecoder(value: require(key), codingPath: path(key)).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        let key = AnyCodingKey("super")
        return JSONValueDecoder(value: members.last(where: { $0.key == "super" })?.value ?? .null, codingPath: codingPath + [key])
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        JSONValueDecoder(value: lookup(key) ?? .null, codingPath: path(key))
    }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0

    init(elements: [JSONValue], codingPath: [any CodingKey]) {
        self.elements = elements
        self.codingPath = codingPath
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private var path: [any CodingKey] { codingPath + [AnyCodingKey(intValue: currentIndex)!] }

    /// The current element; the index moves on only once it decoded.
    private mutating func next<T>(_ type: T.Type, _ decode: (JSONValue, [any CodingKey]) throws -> T) throws -> T {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: path, debugDescription: "the array has no more elements"))
        }
        let value = try decode(elements[currentIndex], path)
        currentIndex += 1
        return value
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(JSONValue.self, .init(codingPath: path, debugDescription: "the array has no more elements"))
        }
        if elements[currentIndex].isNull { currentIndex += 1; return true }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next(type, Scalar.bool) }
    mutating func decode(_ type: String.Type) throws -> String { try next(type, Scalar.string) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next(type, Scalar.double) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next(type, Scalar.float) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next(type, Scalar.integer) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next(type, Scalar.integer) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next(type, Scalar.integer) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next(type, Scalar.integer) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next(type, Scalar.integer) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next(type, Scalar.integer) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next(type, Scalar.integer) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next(type, Scalar.integer) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next(type, Scalar.integer) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next(type, Scalar.integer) }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try next(type) { value, path in try JSONValueDecoder(value: value, codingPath: path).decodeValue(type) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next(KeyedDecodingContainer<NestedKey>.self) { value, path in try JSONValueDecoder(value: value, codingPath: path).container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next((any UnkeyedDecodingContainer).self) { value, path in try JSONValueDecoder(value: value, codingPath: path).unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder {
        try next((any Decoder).self) { value, path in JSONValueDecoder(value: value, codingPath: path) }
    }
}

private struct SingleContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value.isNull }
    func decode(_ type: Bool.Type) throws -> Bool { try Scalar.bool(value, codingPath) }
    func decode(_ type: String.Type) throws -> String { try Scalar.string(value, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try Scalar.double(value, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { try Scalar.float(value, codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try Scalar.integer(value, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try Scalar.integer(value, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try Scalar.integer(value, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try Scalar.integer(value, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try Scalar.integer(value, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try Scalar.integer(value, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try Scalar.integer(value, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try Scalar.integer(value, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try Scalar.integer(value, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try Scalar.integer(value, codingPath) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONValueDecoder(value: value, codingPath: codingPath).decodeValue(type)
    }
}
