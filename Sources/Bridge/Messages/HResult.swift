/// A Windows HRESULT as the bridge carries it: a signed 32-bit number (§5.2, §6.3). Its own type
/// so codes are written once, compared by value and printed the way hcsshim prints them.
public struct HResult: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// From the unsigned spelling used in documentation, e.g. `HResult(0x80004001)`.
    public init(_ unsigned: UInt32) { rawValue = Int32(bitPattern: unsigned) }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(Int32.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    /// Lower-case hex of the unsigned value, as Go's `%x` prints it: `0xc037010d`.
    public var hex: String { "0x" + String(UInt32(bitPattern: rawValue), radix: 16) }
    public var description: String { hex }
    public var isSuccess: Bool { rawValue == 0 }

    public static let ok = HResult(rawValue: 0)
    /// No handler for this message in the current state.
    public static let notImplemented = HResult(0x8000_4001)
    /// Generic failure: the default for errors without a specific code.
    public static let fail = HResult(0x8000_4005)
    /// Process (or other object) not found.
    public static let notFound = HResult(0x8007_0490)
    public static let invalidArgument = HResult(0x8007_0057)
    /// A finite WaitForProcess timed out.
    public static let timeout = HResult(0xC037_0109)
    public static let unknownMessage = HResult(0xC037_010B)
    public static let unsupportedProtocolVersion = HResult(0xC037_010C)
    /// A body or embedded document failed to decode.
    public static let invalidJSON = HResult(0xC037_010D)
    /// Unknown container id.
    public static let systemNotFound = HResult(0xC037_010E)
    public static let systemAlreadyExists = HResult(0xC037_010F)
    public static let invalidState = HResult(0x8037_0105)
    public static let systemAlreadyStopped = HResult(0xC037_0110)
}

/// The error type request handlers throw: an HRESULT for the host plus a human-readable message.
/// Any other error a handler throws is reported as `E_FAIL` with its description.
public struct BridgeError: Error, Hashable, Sendable, CustomStringConvertible {
    public var hresult: HResult
    /// What went wrong, without the HRESULT prefix.
    public var message: String

    public init(_ hresult: HResult, _ message: String = "") {
        self.hresult = hresult
        self.message = message
    }

    /// The text sent as `ErrorMessage`, formatted like hcsshim's HRESULT errors:
    /// `HRESULT 0x80004001: <message>`, or `HRESULT: 0xc0370109` without a message.
    public var description: String {
        message.isEmpty ? "HRESULT: \(hresult.hex)" : "HRESULT \(hresult.hex): \(message)"
    }

    /// The E_NOTIMPL error the guest returns for a message it has no handler for.
    public static func notSupported(_ type: MessageIdentifier) -> BridgeError {
        BridgeError(.notImplemented, "bridge: function not supported, header type: \(type.guestName)")
    }

    /// The invalid-JSON error for a body or embedded document that failed to decode.
    public static func invalidJSON(_ what: String, _ error: any Error) -> BridgeError {
        BridgeError(.invalidJSON, "failed to unmarshal JSON in \(what): \(JSONErrorText.describe(error))")
    }
}

/// Short descriptions of decoding errors (the default ones print whole coding paths and
/// underlying NSError-style dictionaries).
public enum JSONErrorText {
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return String(describing: error) }
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map(\.stringValue).joined(separator: ".")
            return p.isEmpty ? "" : " at \(p)"
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "cannot unmarshal into \(type)\(path(context)): \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "missing \(type)\(path(context))"
        case .keyNotFound(let key, let context):
            return "missing key \(key.stringValue)\(path(context))"
        case .dataCorrupted(let context):
            return "invalid JSON\(path(context)): \(context.debugDescription)"
        @unknown default:
            return String(describing: error)
        }
    }
}
