/// Direct (parser/writer) coding of the parts every message shares: the request and response
/// bases, error records, and the bare response. Mirrors the `Codable` forms in Base.swift.

extension EmptyResponse: DirectJSONDecodable, DirectJSONEncodable {
    public init(json: JSONValue) throws { base = try ResponseBase(json: json) }
    public var jsonValue: JSONValue { base.jsonValue }
}

extension ResponseBase: DirectJSONEncodable {
    /// The response base as JSON, with the same omit-empty rules as its `Encodable` form.
    public var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("Result", .int(Int64(result.rawValue)))]
        if !activityId.isEmpty { members.append(("ActivityId", .string(activityId))) }
        if !errorMessage.isEmpty { members.append(("ErrorMessage", .string(errorMessage))) }
        if !errorRecords.isEmpty { members.append(("ErrorRecords", .array(errorRecords.map(\.jsonValue)))) }
        return .object(members)
    }
}

extension JSONValue {
    /// This object's members followed by `fields`: a message body is its base first, then its
    /// own fields, as Go lays out an embedded struct.
    func appending(_ fields: [(key: String, value: JSONValue)]) -> JSONValue {
        guard case .object(let members) = self else { return self }
        return .object(members + fields)
    }
}

extension ErrorRecord {
    var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("Result", .int(Int64(result.rawValue))), ("Message", .string(message))]
        if !stackTrace.isEmpty { members.append(("StackTrace", .string(stackTrace))) }
        members += [("ModuleName", .string(moduleName)), ("FileName", .string(fileName)), ("Line", .int(Int64(line)))]
        if !functionName.isEmpty { members.append(("FunctionName", .string(functionName))) }
        return .object(members)
    }
}
