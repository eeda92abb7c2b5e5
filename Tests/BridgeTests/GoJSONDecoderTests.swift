import Bridge
import FoundationEssentials
import Testing

/// Bodies decoded through their `Decodable` conformance follow Go's `encoding/json`, as the
/// direct decoders of the hot messages do.
@Suite("Go decoding rules on the Codable path", .timeLimit(.minutes(5)))
struct GoJSONDecoderTests {
    static func body<T: BridgeMessageCoding>(_ type: T.Type, _ text: String) throws -> T {
        var text = text
        return try text.withUTF8 { try T.fromMessageBody(UnsafeRawBufferPointer($0)) }
    }

    @Test("a struct field takes the last member matching its name exactly or ignoring case")
    func fieldsMatchAsGoMatchesThem() throws {
        let start = try Self.body(StartContainerRequest.self, #"{"ContainerId":"a","containerid":"b","ActivityId":"x"}"#)
        #expect(start.base.containerId == "b")
        #expect(start.base.activityId == "x")
        let folded = try Self.body(GetPropertiesRequest.self, #"{"CONTAINERID":"c","query":"{\"propertytypes\":[\"ProcessList\"]}"}"#)
        #expect(folded.base.containerId == "c")
        #expect(try folded.decodedQuery().propertyTypes == ["ProcessList"])
        // The exact name does not win over a later folded one (Go decodes in document order).
        let later = try Self.body(ModifySettingsRequest.self,
                                  #"{"Request":{"ResourceType":"ContainerConstraints","Settings":{}},"request":{"ResourceType":"PodCgroupMemoryLimit","Settings":{"Limit":1}}}"#)
        #expect(later.request.resourceType == "PodCgroupMemoryLimit")
    }

    @Test("a map keeps every key exactly, the last repeat winning")
    func mapsMatchExactly() throws {
        let map = try BridgeJSON.decoder.decode([String: Int].self, from: Data(#"{"a":1,"A":2,"a":3}"#.utf8))
        #expect(map == ["a": 3, "A": 2])
    }

    @Test("integers only from integral numbers in range; null and absent leave the zero value")
    func numbersAsGoConvertsThem() throws {
        struct Sample: Decodable, Equatable {
            var small: UInt8 = 0, big: UInt64 = 0, ratio = 0.0
            enum CodingKeys: String, CodingKey { case small = "Small", big = "Big", ratio = "Ratio" }
            init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                small = try c.go(.small, 0)
                big = try c.go(.big, 0)
                ratio = try c.go(.ratio, 0)
            }
        }
        let decoder = BridgeJSON.decoder
        let ok = try decoder.decode(Sample.self, from: Data(#"{"Small":255,"Big":18446744073709551615,"Ratio":2}"#.utf8))
        #expect(ok.small == 255 && ok.big == .max && ok.ratio == 2)
        let zero = try decoder.decode(Sample.self, from: Data(#"{"Small":null,"Unknown":[1,{"x":2}]}"#.utf8))
        #expect(zero.small == 0 && zero.big == 0)
        for bad in [#"{"Small":256}"#, #"{"Small":-1}"#, #"{"Small":1.5}"#, #"{"Small":1e2}"#, #"{"Small":"1"}"#, #"{"Ratio":true}"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try decoder.decode(Sample.self, from: Data(bad.utf8)) }
        }
        #expect(throws: JSONValueParser.Error.self) { try decoder.decode(Sample.self, from: Data(#"{"Small":1,}"#.utf8)) }
    }

    @Test("a pass-through value is the parsed node, member order and exact integers kept")
    func passThroughKeepsTheNode() throws {
        let query = try BridgeJSON.decode(PropertyQuery.self, fromEmbedded: #"{"PropertyTypes":[],"Queries":{"z":18446744073709551615,"a":[1.5,null]}}"#)
        #expect(query.queries == .object([("z", .uint(.max)), ("a", .array([.double(1.5), .null]))]))
        #expect(query.queries?.serialized() == #"{"z":18446744073709551615,"a":[1.5,null]}"#)
    }

    @Test("a body of the wrong shape is an invalid-JSON answer naming the field")
    func wrongShapeIsRejected() {
        var text = #"{"ContainerId":"c","Query":{"PropertyTypes":[]}}"#
        let decision = text.withUTF8 { RequestRouter.route(type: .getProperties, body: UnsafeRawBufferPointer($0), negotiated: true) }
        guard case .reject(let error, _) = decision else { Issue.record("accepted: \(decision)"); return }
        #expect(error.hresult == .invalidJSON)
        #expect(error.message.contains("Query"))
    }

    @Test("ModifySettings without Settings, or with null Settings, for a type that has them is invalid JSON, as in Go")
    func modifySettingsWithoutSettings() {
        func route(_ body: String) -> RouteDecision {
            var text = body
            return text.withUTF8 { RequestRouter.route(type: .modifySettings, body: UnsafeRawBufferPointer($0), negotiated: true) }
        }
        guard case .reject(let error, _) = route(#"{"ContainerId":"c","Request":{"ResourceType":"ContainerConstraints","RequestType":"Update"}}"#) else {
            Issue.record("accepted without Settings"); return
        }
        #expect(error.hresult == .invalidJSON)
        #expect(error.message.contains("Settings"), "\(error.message)")
        guard case .reject(let nullError, _) = route(#"{"ContainerId":"c","Request":{"ResourceType":"ContainerConstraints","RequestType":"Update","Settings":null}}"#) else {
            Issue.record("null Settings accepted"); return
        }
        #expect(nullError.hresult == .invalidJSON)
        #expect(nullError.message.contains("Settings"), "\(nullError.message)")
        guard case .dispatch = route(#"{"ContainerId":"c","Request":{"ResourceType":"PodCgroupMemoryLimit","RequestType":"Update"}}"#) else {
            Issue.record("PodCgroupMemoryLimit, which has no Settings, refused"); return
        }
    }

    @Test("null where a value is required reads as the zero value, as in Go")
    func nullIsTheZeroValue() throws {
        let decoder = BridgeJSON.decoder
        #expect(try decoder.decode([String].self, from: Data(#"["ro",null]"#.utf8)) == ["ro", ""])
        #expect(try decoder.decode([String: String].self, from: Data(#"{"traceparent":null}"#.utf8)) == ["traceparent": ""])
        #expect(try decoder.decode([UInt32].self, from: Data("[null,7]".utf8)) == [0, 7])
        #expect(try decoder.decode([String?].self, from: Data(#"["a",null]"#.utf8)) == ["a", nil])
        // An embedded query that is just `null` is an empty query, not an error.
        #expect(try GetPropertiesRequest(base: RequestBase(containerId: "c"), query: "null").decodedQuery() == PropertyQuery())
        let query = try BridgeJSON.decode(PropertyQuery.self, fromEmbedded: #"{"PropertyTypes":["ProcessList",null]}"#)
        #expect(query.propertyTypes == ["ProcessList", ""])
    }

    @Test("a map's keys are each looked up once: a large map decodes whole")
    func largeMapDecodes() throws {
        let count = 50_000
        let text = "{" + (0..<count).map { #""k\#($0)":"\#($0)""# }.joined(separator: ",") + #","k7":"last"}"#
        let map = try BridgeJSON.decoder.decode([String: String].self, from: Data(text.utf8))
        #expect(map.count == count)
        #expect(map["k7"] == "last" && map["k49999"] == "49999")
    }
}

