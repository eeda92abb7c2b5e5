/// The checks hcsshim's host applies to what the guest sends (spec §4.4), as pure functions so
/// `BridgeClient` can enforce them and tests can name them.
public enum HostChecks {
    /// Whether `text` parses as a GUID the way the host's `guid.FromString` does:
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits of either case.
    public static func isGUID(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return false }
        for (i, b) in bytes.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                if b != UInt8(ascii: "-") { return false }
            } else if !((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)) {
                return false
            }
        }
        return true
    }

    /// A response base the host can decode: `ActivityId` absent or a GUID.
    public static func validate(_ base: ResponseBase) throws(BridgeClientError) {
        if !base.activityId.isEmpty && !isGUID(base.activityId) {
            throw .protocolViolation("response ActivityId \"\(base.activityId.prefix(64))\" is not a GUID")
        }
    }

    /// A successful NegotiateProtocol response the host accepts (hcsshim's guest connection,
    /// `connect`): `Version` 4; `RuntimeOsType` "linux" in any case (the host reads an empty one
    /// as Windows); and `Capabilities.GuestDefinedCapabilities` present as an object, which the
    /// host decodes on its own and fails the connection without. Checked on the raw body: our
    /// decoder gives a missing key its zero value, which would hide exactly these mistakes.
    public static func validateNegotiation(_ body: UnsafeRawBufferPointer) throws(BridgeClientError) {
        guard let response = try? JSONValueParser.parse(body) else {
            throw .protocolViolation("negotiation response is not JSON")
        }
        switch response["Version"] {
        case .int(4)?, .uint(4)?: break
        case let other: throw .protocolViolation("unexpected version \(other.map { "\($0)" } ?? "(none)") returned")
        }
        guard let capabilities = response["Capabilities"], case .object = capabilities else {
            throw .protocolViolation("negotiation response has no Capabilities")
        }
        guard case .string(let os)? = capabilities["RuntimeOsType"], os.lowercased() == "linux" else {
            throw .protocolViolation("negotiation response RuntimeOsType is not linux")
        }
        guard case .object? = capabilities["GuestDefinedCapabilities"] else {
            throw .protocolViolation("negotiation response has no GuestDefinedCapabilities object")
        }
    }

    /// A notification the host can decode: GUID `ActivityId` (an empty string is fatal; the
    /// key may be absent only because our decoder cannot tell), `ResultInfo` valid JSON if set.
    public static func validate(_ notification: ContainerNotification) throws(BridgeClientError) {
        if !isGUID(notification.base.activityId) {
            throw .protocolViolation("notification ActivityId \"\(notification.base.activityId.prefix(64))\" is not a GUID")
        }
        if !notification.resultInfo.isEmpty,
           (try? BridgeJSON.decode(JSONValue.self, fromEmbedded: notification.resultInfo)) == nil {
            throw .protocolViolation("notification ResultInfo is not valid JSON")
        }
    }
}

/// Errors of `BridgeClient`.
public enum BridgeClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bridge is closed; `reason` is nil for an orderly close.
    case closed(reason: String?)
    /// The guest broke a rule the host enforces (the bridge was torn down).
    case protocolViolation(String)
    /// A synchronous request got no answer in time (the bridge was torn down, as hcsshim does).
    case timeout(id: UInt64)

    public var description: String {
        switch self {
        case .closed(let reason): return reason.map { "bridge closed: \($0)" } ?? "bridge closed"
        case .protocolViolation(let text): return "bridge protocol violation: \(text)"
        case .timeout(let id): return "bridge message timeout (id \(id))"
        }
    }
}

/// A response whose `Result` is not 0, as hcsshim reports it: "guest RPC failure: <message>".
public struct GuestRPCError: Error, Sendable, CustomStringConvertible {
    public var base: ResponseBase
    public var hresult: HResult { base.result }
    public init(base: ResponseBase) { self.base = base }
    public var description: String {
        "guest RPC failure: " + (base.errorMessage.isEmpty ? "HRESULT \(base.result.hex)" : base.errorMessage)
    }
}
