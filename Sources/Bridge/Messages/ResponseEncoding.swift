import FoundationEssentials

extension BridgeResponse {
    /// The body as the guest sends it: the full response on success, the response base only
    /// on failure (type-specific fields are absent from error responses, §6.2).
    public func wireBody() throws -> Data {
        if base.result.isSuccess { return try messageBody() }
        var out: [UInt8] = []
        base.jsonValue.write(to: &out)
        return Data(out)
    }
}
