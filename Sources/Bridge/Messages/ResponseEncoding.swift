import FoundationEssentials

extension BridgeResponse {
    /// The body as the guest sends it: the full response on success, the response base only
    /// on failure (type-specific fields are absent from error responses, §6.2).
    public func wireBody() throws -> Data {
        base.result.isSuccess ? try messageBody() : base.jsonData
    }
}
