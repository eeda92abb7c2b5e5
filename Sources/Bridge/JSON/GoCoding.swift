import FoundationEssentials

/// Go `encoding/json` semantics on top of Swift's keyed containers.
///
/// Both hcsshim peers decode with Go: a missing key or `null` leaves the zero value, unknown keys
/// are ignored, a wrong type is an error. On output, `omitempty` drops zero values. These
/// helpers keep every message type's Codable conformance to one line per field.
extension KeyedDecodingContainer {
    /// The value for `key`, or `fallback` when the key is absent or `null`.
    @inlinable
    public func go<T: Decodable>(_ key: Key, _ fallback: @autoclosure () -> T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback()
    }

    /// An optional value: absent or `null` → nil.
    @inlinable
    public func goOptional<T: Decodable>(_ key: Key, as type: T.Type = T.self) throws -> T? {
        try decodeIfPresent(T.self, forKey: key)
    }

    /// A string for `key` that tolerates a wrong type (used only to recover `ActivityId` and
    /// `ContainerId` from a body that failed to decode, as the Go guest does).
    @inlinable
    public func lenientString(_ key: Key) -> String {
        (try? decodeIfPresent(String.self, forKey: key)) ?? ""
    }
}

extension KeyedEncodingContainer {
    /// `omitempty` for strings.
    @inlinable
    public mutating func omitEmpty(_ value: String, _ key: Key) throws {
        if !value.isEmpty { try encode(value, forKey: key) }
    }

    /// `omitempty` for booleans.
    @inlinable
    public mutating func omitEmpty(_ value: Bool, _ key: Key) throws {
        if value { try encode(value, forKey: key) }
    }

    /// `omitempty` for integers.
    @inlinable
    public mutating func omitEmpty<T: FixedWidthInteger & Encodable>(_ value: T, _ key: Key) throws {
        if value != 0 { try encode(value, forKey: key) }
    }

    /// `omitempty` for arrays.
    @inlinable
    public mutating func omitEmpty<T: Encodable>(_ value: [T], _ key: Key) throws {
        if !value.isEmpty { try encode(value, forKey: key) }
    }

    /// `omitempty` for maps.
    @inlinable
    public mutating func omitEmpty<T: Encodable>(_ value: [String: T], _ key: Key) throws {
        if !value.isEmpty { try encode(value, forKey: key) }
    }

    /// A nil pointer is omitted (Go `omitempty` on pointers and interfaces).
    @inlinable
    public mutating func omitNil<T: Encodable>(_ value: T?, _ key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
}

/// The JSON coders used for every bridge body, configured once: Go-compatible output (no
/// escaped slashes) and Go's decoding rules (`GoJSONDecoder`).
public enum BridgeJSON {
    /// Encoder for bodies and embedded documents. `JSONEncoder` is Sendable and its encode is
    /// safe to call concurrently.
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes]
        return e
    }()

    public static let decoder = GoJSONDecoder()

    /// Encodes `value` to bytes.
    @inlinable
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        try encoder.encode(value)
    }

    /// Decodes `T` from `bytes` without copying them.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        try decoder.decode(T.self, from: bytes)
    }

    /// Decodes `T` from an embedded JSON document carried in a string field.
    public static func decode<T: Decodable>(_ type: T.Type, fromEmbedded text: String) throws -> T {
        var text = text
        return try text.withUTF8 { try decode(T.self, from: UnsafeRawBufferPointer($0)) }
    }

    /// Encodes `value` as an embedded JSON document (a string).
    @inlinable
    public static func embed<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Embeds a document that writes itself (`ProcessParameters`): no JSONEncoder involved.
    public static func embed<T: Encodable & DirectJSONEncodable>(_ value: T) -> String {
        value.jsonValue.serialized()
    }
}
