import FoundationEssentials

/// Encodes what the guest sends so that every frame fits the host's 16…65536-byte limit (§2):
/// growable text is cut, and as a last resort the response becomes a short E_FAIL. Exists as
/// one place to test the bound for every response shape.
public enum OutgoingBodies {
    /// Longest error text we put in `ErrorMessage` (it is repeated in the error record).
    public static let maxErrorText = 16 << 10

    /// The body of `response` within `limit` bytes (limit = max frame size − 16).
    public static func response<R: BridgeResponse>(_ response: R, limit: Int = FrameHeader.hostMaxMessageSize - FrameHeader.byteCount) -> Data {
        var response = response
        for _ in 0..<4 {
            guard let data = try? response.wireBody() else { break }
            if data.count <= limit { return data }
            let excess = data.count - limit
            if response.base.result.isSuccess {
                response = response.shrunk(by: excess)
            } else {
                response.base = response.base.shrunk(by: excess)
            }
        }
        let activityId = response.base.activityId.utf8.count <= 64 ? response.base.activityId : ""
        let fallback = ResponseBase.failure(BridgeError(.fail, "response exceeded the bridge message size limit"), activityId: activityId)
        return (try? BridgeJSON.encode(fallback)) ?? Data(#"{"Result":-2147467259}"#.utf8)
    }

    /// A failure body for `error`.
    public static func failure(_ error: BridgeError, activityId: String, limit: Int = FrameHeader.hostMaxMessageSize - FrameHeader.byteCount) -> Data {
        response(EmptyResponse(base: .failure(error, activityId: activityId)), limit: limit)
    }

    /// The notification body, or nil when it cannot fit (only an absurd container id can
    /// make it exceed the limit; such a notification could not be matched by the host anyway).
    public static func notification(_ notification: ContainerNotification, limit: Int = FrameHeader.hostMaxMessageSize - FrameHeader.byteCount) -> Data? {
        guard let data = try? BridgeJSON.encode(notification), data.count <= limit else { return nil }
        return data
    }
}

extension ResponseBase {
    /// This base with its texts cut by `excess` encoded bytes each.
    public func shrunk(by excess: Int) -> ResponseBase {
        func cut(_ text: String) -> String {
            text.isEmpty ? text : TextBudget.truncate(text, toEncodedBytes: TextBudget.encodedCount(text) - excess)
        }
        var copy = self
        copy.errorMessage = cut(errorMessage)
        copy.errorRecords = errorRecords.map { record in
            var record = record
            record.message = cut(record.message)
            record.stackTrace = cut(record.stackTrace)
            record.functionName = cut(record.functionName)
            record.fileName = cut(record.fileName)
            return record
        }
        if copy.errorRecords.count > 1 { copy.errorRecords = [copy.errorRecords[0]] }
        return copy
    }
}
