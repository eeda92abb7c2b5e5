/// `GetProperties` (§8.9): the query travels as a JSON document inside a string.
public struct GetPropertiesRequest: BridgeRequest, Hashable {
    public typealias Response = GetPropertiesResponse
    public static let identifier = MessageIdentifier.getProperties
    public var base: RequestBase
    /// The embedded query document, verbatim; "" means no properties.
    public var query: String

    public init(base: RequestBase, query: String) {
        self.base = base
        self.query = query
    }

    public init(base: RequestBase, propertyTypes: [String]) throws {
        self.init(base: base, query: try BridgeJSON.embed(PropertyQuery(propertyTypes: propertyTypes)))
    }

    enum CodingKeys: String, CodingKey { case query = "Query" }

    public init(from decoder: any Decoder) throws {
        base = try RequestBase(from: decoder)
        query = try decoder.container(keyedBy: CodingKeys.self).go(.query, "")
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(query, forKey: .query)
    }

    /// The decoded query (empty string → no property types); undecodable → `0xC037010D`.
    public func decodedQuery() throws(BridgeError) -> PropertyQuery {
        if query.isEmpty { return PropertyQuery() }
        do {
            return try BridgeJSON.decode(PropertyQuery.self, fromEmbedded: query)
        } catch {
            throw .invalidJSON("Query", error)
        }
    }
}

/// `{"PropertyTypes":[…]}`; `Queries` (schema 2.5) is kept but ignored by the guest.
public struct PropertyQuery: Codable, Sendable, Hashable {
    public var propertyTypes: [String]
    public var queries: JSONValue?

    public init(propertyTypes: [String] = [], queries: JSONValue? = nil) {
        self.propertyTypes = propertyTypes
        self.queries = queries
    }

    public static let processList = "ProcessList"
    public static let statistics = "Statistics"

    enum CodingKeys: String, CodingKey { case propertyTypes = "PropertyTypes", queries = "Queries" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        propertyTypes = try c.go(.propertyTypes, [])
        queries = try c.goOptional(.queries)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(propertyTypes, .propertyTypes)
        try c.omitNil(queries, .queries)
    }
}

/// The properties document a handler produces; the server embeds it as a string, trimmed to
/// fit the 64 KiB message limit (process list entries are dropped from the end).
public struct PropertiesDocument: Codable, Sendable, Hashable {
    public var processList: [ProcessDetails]
    /// cgroup statistics in the containerd v1 `Metrics` shape (snake_case keys, uint64 values
    /// kept exact by `JSONValue`).
    public var lcowMetrics: JSONValue?

    public init(processList: [ProcessDetails] = [], lcowMetrics: JSONValue? = nil) {
        self.processList = processList
        self.lcowMetrics = lcowMetrics
    }

    enum CodingKeys: String, CodingKey { case processList = "ProcessList", lcowMetrics = "LCOWMetrics" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        processList = try c.go(.processList, [])
        lcowMetrics = try c.goOptional(.lcowMetrics)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(processList, .processList)
        try c.omitNil(lcowMetrics, .lcowMetrics)
    }

    /// The document as an embedded string whose JSON-string encoding fits `budget` bytes.
    public func embedded(fittingEncodedBytes budget: Int) throws -> String {
        var document = self
        while true {
            let text = try BridgeJSON.embed(document)
            let cost = TextBudget.encodedCount(text)
            if cost <= budget { return text }
            if document.processList.isEmpty {
                if document.lcowMetrics == nil { return "{}" }
                document.lcowMetrics = nil
                continue
            }
            // Drop proportionally (plus one) and retry; converges in a few rounds.
            let keep = Int(Double(document.processList.count) * Double(budget) / Double(cost)) - 1
            document.processList.removeLast(document.processList.count - max(0, min(keep, document.processList.count - 1)))
        }
    }
}

/// `{"ProcessId": pid}`.
public struct ProcessDetails: Codable, Sendable, Hashable {
    public var processId: UInt32
    public init(processId: UInt32) { self.processId = processId }
    enum CodingKeys: String, CodingKey { case processId = "ProcessId" }
    public init(from decoder: any Decoder) throws {
        processId = try decoder.container(keyedBy: CodingKeys.self).go(.processId, 0)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(processId, forKey: .processId)
    }
}

/// The GetProperties answer: `Properties` is an embedded JSON document, never omitted.
public struct GetPropertiesResponse: BridgeResponse, Hashable {
    public var base: ResponseBase
    public var properties: String

    public init(base: ResponseBase = ResponseBase(), properties: String = "{}") {
        self.base = base
        self.properties = properties
    }

    enum CodingKeys: String, CodingKey { case properties = "Properties" }

    public init(from decoder: any Decoder) throws {
        base = try ResponseBase(from: decoder)
        properties = try decoder.container(keyedBy: CodingKeys.self).go(.properties, "")
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(properties, forKey: .properties)
    }

    /// Re-embeds a smaller document when the text is too long (it must stay valid JSON).
    public func shrunk(by excess: Int) -> GetPropertiesResponse {
        var copy = self
        let budget = TextBudget.encodedCount(properties) - excess
        if let document = try? BridgeJSON.decode(PropertiesDocument.self, fromEmbedded: properties),
           let text = try? document.embedded(fittingEncodedBytes: budget) {
            copy.properties = text
        } else {
            copy.properties = "{}"
        }
        return copy
    }

    /// The decoded properties document (host side).
    public func document() throws -> PropertiesDocument {
        try BridgeJSON.decode(PropertiesDocument.self, fromEmbedded: properties.isEmpty ? "{}" : properties)
    }
}
