import FoundationEssentials

/// A bridge message that reads itself from a document parsed by `JSONValueParser`, with Go's
/// `encoding/json` rules (`JSONFields`).
///
/// Exists for the hot path: ExecuteProcess, WaitForProcess and friends arrive thousands of
/// times a second in a dense VM, and FoundationEssentials' `JSONDecoder` costs several times
/// what the direct parse does for these small bodies. The `Decodable` conformance stays the
/// reference; tests check that both paths agree on every fixture.
public protocol DirectJSONDecodable {
    init(json: JSONValue) throws
}

/// A bridge message that writes itself as a `JSONValue`, field for field what its
/// `Encodable` form produces (same names, order and omit-empty rules).
public protocol DirectJSONEncodable {
    var jsonValue: JSONValue { get }
}

/// How a message type is put on and taken off the wire. Every bridge message gets the
/// `Codable` path by default and the direct path when it is `DirectJSONDecodable` /
/// `DirectJSONEncodable`; the choice is made per type at compile time (protocol witnesses), so
/// the hot path pays no dynamic cast.
public protocol BridgeMessageCoding: Codable {
    /// The JSON body of this message.
    func messageBody() throws -> Data
    /// Decodes a body (the literal `null` counts as `{}`, as in Go).
    static func fromMessageBody(_ body: UnsafeRawBufferPointer) throws -> Self
}

extension BridgeMessageCoding {
    public func messageBody() throws -> Data { try BridgeJSON.encode(self) }
    public static func fromMessageBody(_ body: UnsafeRawBufferPointer) throws -> Self {
        if RequestRouter.isNullLiteral(body) { return try BridgeJSON.decode(Self.self, fromEmbedded: "{}") }
        return try BridgeJSON.decode(Self.self, from: body)
    }
}

extension BridgeMessageCoding where Self: DirectJSONEncodable {
    public func messageBody() throws -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        jsonValue.write(to: &out)
        return Data(out)
    }
}

extension BridgeMessageCoding where Self: DirectJSONDecodable {
    public static func fromMessageBody(_ body: UnsafeRawBufferPointer) throws -> Self {
        let document = try JSONValueParser.parse(body)
        return try Self(json: document.isNull ? .emptyObject : document)
    }
}

extension BridgeJSON {
    /// Encodes a message body: directly when the type can, else with `JSONEncoder`.
    public static func encodeMessage<T: Encodable>(_ value: T) throws -> Data {
        if let direct = value as? any DirectJSONEncodable {
            var out: [UInt8] = []
            out.reserveCapacity(256)
            direct.jsonValue.write(to: &out)
            return Data(out)
        }
        return try encode(value)
    }

    /// Decodes a message body: through the direct parser when the type can, else with
    /// `JSONDecoder`. A body that is the literal `null` decodes as `{}` (Go leaves the value
    /// zeroed).
    public static func decodeMessage<T: Decodable>(_ type: T.Type, from body: UnsafeRawBufferPointer) throws -> T {
        if let direct = T.self as? any DirectJSONDecodable.Type {
            let document = try JSONValueParser.parse(body)
            return try direct.init(json: document.isNull ? .emptyObject : document) as! T
        }
        return try decode(type, from: body)
    }
}
