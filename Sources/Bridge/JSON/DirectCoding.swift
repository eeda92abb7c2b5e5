import FoundationEssentials

/// A bridge message that reads itself from a document parsed by `JSONValueParser`, with Go's
/// `encoding/json` rules (`JSONFields`).
///
/// Exists for the hot path: ExecuteProcess, WaitForProcess and friends arrive thousands of
/// times a second in a dense VM, and even `GoJSONDecoder` (the `Decodable` path, through
/// keyed containers) costs a multiple of the direct read for these small bodies. The
/// `Decodable` conformance stays the reference; tests check that both paths agree on every
/// fixture.
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
        // A literal `null` body needs no case of its own: GoJSONDecoder reads null as an empty object.
        try BridgeJSON.decode(Self.self, from: body)
    }
}

extension DirectJSONEncodable {
    /// The compact JSON text of `jsonValue`.
    public var jsonData: Data {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        jsonValue.write(to: &out)
        return Data(out)
    }
}

extension BridgeMessageCoding where Self: DirectJSONEncodable {
    public func messageBody() throws -> Data { jsonData }
}

extension BridgeMessageCoding where Self: DirectJSONDecodable {
    public static func fromMessageBody(_ body: UnsafeRawBufferPointer) throws -> Self {
        let document = try JSONValueParser.parse(body)
        return try Self(json: document.isNull ? .emptyObject : document)
    }
}
