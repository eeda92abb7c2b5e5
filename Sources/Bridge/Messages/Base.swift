import FoundationEssentials

/// The null GUID: the `ContainerId` of requests that target the utility VM itself, and the
/// `ActivityId` the host always sends.
public let uvmContainerID = "00000000-0000-0000-0000-000000000000"

/// Fields every request body starts with (§6.1). Also the base of the container notification,
/// which hcsshim models as a request-shaped message.
public struct RequestBase: Codable, Sendable, Hashable {
    public var containerId: String
    public var activityId: String
    /// W3C trace-context headers (`otsc`), omitted when nil or empty.
    public var openTelemetry: [String: String]?
    /// Legacy OpenCensus span context (`ocsc`), passed through untouched.
    public var openCensus: JSONValue?

    public init(containerId: String = "", activityId: String = uvmContainerID,
                openTelemetry: [String: String]? = nil, openCensus: JSONValue? = nil) {
        self.containerId = containerId
        self.activityId = activityId
        self.openTelemetry = openTelemetry
        self.openCensus = openCensus
    }

    enum CodingKeys: String, CodingKey {
        case containerId = "ContainerId", activityId = "ActivityId", otsc, ocsc
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        containerId = try c.go(.containerId, "")
        activityId = try c.go(.activityId, "")
        openTelemetry = try c.goOptional(.otsc)
        openCensus = try c.goOptional(.ocsc)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(containerId, forKey: .containerId)
        try c.encode(activityId, forKey: .activityId)
        if let openTelemetry, !openTelemetry.isEmpty { try c.encode(openTelemetry, forKey: .otsc) }
        try c.omitNil(openCensus, .ocsc)
    }

    /// From a parsed document (fast path for base-only requests).
    public init(json: JSONValue) throws {
        let f = try JSONFields(json, what: "request")
        containerId = try f.string("ContainerId")
        activityId = try f.string("ActivityId")
        if let otsc = f.value("otsc") {
            openTelemetry = try JSONFields(otsc, what: "otsc").stringMap(from: otsc)
        }
        openCensus = f.value("ocsc")
    }

    /// The base as a JSON object (host field order).
    public var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("ContainerId", .string(containerId)), ("ActivityId", .string(activityId))]
        if let openTelemetry, !openTelemetry.isEmpty {
            members.append(("otsc", .object(openTelemetry.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        if let openCensus { members.append(("ocsc", openCensus)) }
        return .object(members)
    }

    /// `ContainerId` and `ActivityId` from any body, tolerating wrong types and undecodable
    /// bodies (both empty then), as the Go guest's first pass over every request does.
    public static func lenient(from body: UnsafeRawBufferPointer) -> (containerId: String, activityId: String) {
        guard let probe = try? BridgeJSON.decode(LenientBase.self, from: body) else { return ("", "") }
        return (probe.containerId, probe.activityId)
    }

    struct LenientBase: Decodable {
        var containerId: String
        var activityId: String
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            containerId = c.lenientString(.containerId)
            activityId = c.lenientString(.activityId)
        }
    }
}

/// Fields every response body starts with (§6.2).
public struct ResponseBase: Codable, Sendable, Hashable {
    public var result: HResult
    /// Copied from the request; omitted when empty (an empty string is fatal for the host).
    public var activityId: String
    public var errorMessage: String
    public var errorRecords: [ErrorRecord]

    public init(result: HResult = .ok, activityId: String = "", errorMessage: String = "", errorRecords: [ErrorRecord] = []) {
        self.result = result
        self.activityId = activityId
        self.errorMessage = errorMessage
        self.errorRecords = errorRecords
    }

    enum CodingKeys: String, CodingKey {
        case result = "Result", activityId = "ActivityId", errorMessage = "ErrorMessage", errorRecords = "ErrorRecords"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        result = try c.go(.result, .ok)
        activityId = try c.go(.activityId, "")
        errorMessage = try c.go(.errorMessage, "")
        errorRecords = try c.go(.errorRecords, [])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(result, forKey: .result)
        try c.omitEmpty(activityId, .activityId)
        try c.omitEmpty(errorMessage, .errorMessage)
        try c.omitEmpty(errorRecords, .errorRecords)
    }

    /// From a parsed document (fast path for base-only responses).
    public init(json: JSONValue) throws {
        let f = try JSONFields(json, what: "response")
        result = HResult(rawValue: try f.int32("Result"))
        activityId = try f.string("ActivityId")
        errorMessage = try f.string("ErrorMessage")
        errorRecords = []
        if let records = f.value("ErrorRecords") {
            guard case .array(let elements) = records else { throw JSONFields.TypeError(key: "ErrorRecords", expected: "array") }
            for element in elements {
                let r = try JSONFields(element, what: "ErrorRecords")
                errorRecords.append(ErrorRecord(result: HResult(rawValue: try r.int32("Result")), message: try r.string("Message"),
                                                stackTrace: try r.string("StackTrace"), moduleName: try r.string("ModuleName"),
                                                fileName: try r.string("FileName"), line: try r.uint32("Line"),
                                                functionName: try r.string("FunctionName")))
            }
        }
    }

    /// A failure base for `error`, shaped like the Go guest's: the message in `ErrorMessage`
    /// and one record with module `gcs`, no file and line "unknown" (4294967295).
    public static func failure(_ error: BridgeError, activityId: String) -> ResponseBase {
        let text = TextBudget.truncate(error.description, toEncodedBytes: 16 << 10)
        let record = ErrorRecord(result: error.hresult, message: text, moduleName: "gcs", fileName: "", line: .max)
        return ResponseBase(result: error.hresult, activityId: activityId, errorMessage: text, errorRecords: [record])
    }
}

/// One entry of `ErrorRecords` (§6.2). The host only logs these.
public struct ErrorRecord: Codable, Sendable, Hashable {
    public var result: HResult
    public var message: String
    public var stackTrace: String
    public var moduleName: String
    public var fileName: String
    /// 4294967295 means "unknown".
    public var line: UInt32
    public var functionName: String

    public init(result: HResult, message: String, stackTrace: String = "", moduleName: String = "gcs",
                fileName: String = "", line: UInt32 = .max, functionName: String = "") {
        self.result = result
        self.message = message
        self.stackTrace = stackTrace
        self.moduleName = moduleName
        self.fileName = fileName
        self.line = line
        self.functionName = functionName
    }

    enum CodingKeys: String, CodingKey {
        case result = "Result", message = "Message", stackTrace = "StackTrace", moduleName = "ModuleName"
        case fileName = "FileName", line = "Line", functionName = "FunctionName"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        result = try c.go(.result, .ok)
        message = try c.go(.message, "")
        stackTrace = try c.go(.stackTrace, "")
        moduleName = try c.go(.moduleName, "")
        fileName = try c.go(.fileName, "")
        line = try c.go(.line, 0)
        functionName = try c.go(.functionName, "")
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(result, forKey: .result)
        try c.encode(message, forKey: .message)
        try c.omitEmpty(stackTrace, .stackTrace)
        try c.encode(moduleName, forKey: .moduleName)
        try c.encode(fileName, forKey: .fileName)
        try c.encode(line, forKey: .line)
        try c.omitEmpty(functionName, .functionName)
    }
}

/// A request body: knows its message identifier and the response body it gets.
public protocol BridgeRequest: BridgeMessageCoding, Sendable {
    associatedtype Response: BridgeResponse
    static var identifier: MessageIdentifier { get }
    var base: RequestBase { get set }
}

/// A response body: the base plus type-specific fields (absent on failure).
public protocol BridgeResponse: BridgeMessageCoding, Sendable {
    var base: ResponseBase { get set }
    /// This response with its growable text cut by at least `excess` encoded bytes (to fit the
    /// host's 64 KiB limit). Default: unchanged (most responses are a few dozen bytes).
    func shrunk(by excess: Int) -> Self
}

extension BridgeResponse {
    public func shrunk(by excess: Int) -> Self { self }
}

/// The bare success/failure response used by most requests.
public struct EmptyResponse: BridgeResponse, Hashable {
    public var base: ResponseBase
    public init(base: ResponseBase = ResponseBase()) { self.base = base }
    public init(from decoder: any Decoder) throws { base = try ResponseBase(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try base.encode(to: encoder) }
}

/// Requests whose body is the request base only (Start, Shutdown*, DumpStacks,
/// DeleteContainerState, and unimplemented ones such as UpdateContainer).
public protocol BaseOnlyRequest: BridgeRequest, DirectJSONDecodable, DirectJSONEncodable {
    init(base: RequestBase)
}

extension BaseOnlyRequest {
    public init(from decoder: any Decoder) throws { self.init(base: try RequestBase(from: decoder)) }
    public func encode(to encoder: any Encoder) throws { try base.encode(to: encoder) }
    public init(json: JSONValue) throws { self.init(base: try RequestBase(json: json)) }
    public var jsonValue: JSONValue { base.jsonValue }
}
