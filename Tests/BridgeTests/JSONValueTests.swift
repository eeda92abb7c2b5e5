import Bridge
import FoundationEssentials
import Testing

/// The direct JSON parser/serializer carries forwarded documents (the OCI spec, OciProcess)
/// losslessly; these cases pin what the fuzzer found and the edges around it.
@Suite("JSONValue parse → serialize → parse", .timeLimit(.minutes(5)))
struct JSONValueTests {
    /// Documents that must survive a round trip unchanged, as JSON values.
    static let roundTrips: [String] = [
        // Fuzzer finding (scripts/fuzz.sh, crash-7f654e68…): a response body whose mutation
        // repeated the key "Properties". A value with duplicate keys did not equal itself.
        #"{"Result":0,"ActivityId":"00000000-0000-0000-0000-000000000000","Properties":"{\"ProcessList\":[{\"ProcessId\"0000","Properties":"{\"ProcessL:187},{\"ProcessId\":213},{\"ProcessId\":214},{\"ProcessId\":241}]}"}"#,
        // The same defect, minimal.
        #"{"a":1,"a":2}"#,
        #"{"a":1,"b":[],"a":{"a":null,"a":true}}"#,
        // Numbers: exact integers at both ends, doubles, negative zero, exponents.
        #"[0,-0,1,-1,9223372036854775807,-9223372036854775808,18446744073709551615]"#,
        #"[-9223372036854775809,18446744073709551616,1e300,-1.5e-300,5e-324,0.1,1E+2,1.0]"#,
        #"[9007199254740993,9007199254740992.0,123456789012345678901234567890]"#,
        // Strings: escapes, control characters, surrogate pairs, lone surrogates, slashes.
        #"["\"\\\/\b\f\n\r\t","\u0000\u001f\u007f","\ud83d\ude00","\ud800","\udc00x","a/b","é€😀"]"#,
        // Nesting and empties.
        #"{"":{"":[[],{},[{}]]}}"#,
    ]

    @Test("round trip is the identity", arguments: roundTrips)
    func roundTrip(_ document: String) throws {
        let value = try JSONValueParser.parse(document)
        #expect(value == value)
        let again = try JSONValueParser.parse(value.serialized())
        #expect(again == value, "\(value.serialized())")
        #expect(again.serialized() == value.serialized())
    }

    @Test("duplicate keys pair up in their relative order, member order aside")
    func duplicateKeys() throws {
        let a = try JSONValueParser.parse(#"{"k":1,"x":0,"k":2}"#)
        #expect(a == (try JSONValueParser.parse(#"{"x":0,"k":1,"k":2}"#)))
        #expect(a != (try JSONValueParser.parse(#"{"x":0,"k":2,"k":1}"#)))
        #expect(a != (try JSONValueParser.parse(#"{"k":1,"x":0,"x":0}"#)))
        #expect(a != (try JSONValueParser.parse(#"{"k":1,"x":0}"#)))
        // Serialization keeps both members, in order: nothing the host sent is dropped.
        #expect(a.serialized() == #"{"k":1,"x":0,"k":2}"#)
    }

    @Test("member lookup reads what Go's decoder (runc) would: the last member matching exactly or ignoring case")
    func goMemberLookup() throws {
        let spec = try JSONValueParser.parse(#"{"linux":{"a":1},"Process":{"b":2},"linux":{"a":3},"PROCESS":{"b":4},"Linux":{"a":5}}"#)
        #expect(spec["linux"] == (try JSONValueParser.parse(#"{"a":5}"#)))
        #expect(spec["Process"] == (try JSONValueParser.parse(#"{"b":4}"#)))
        #expect(spec["process"] == (try JSONValueParser.parse(#"{"b":4}"#)))
        let fields = try JSONFields(try JSONValueParser.parse(#"{"ProcessId":1,"processid":2}"#))
        #expect(fields.value("ProcessId") == .int(2))
        #expect(spec["root"] == nil)
        // Only letters fold: '[' (0x5b) and '{' (0x7b) differ by the case bit, yet are not a pair.
        let odd = try JSONValueParser.parse(#"{"a[":1,"Ünïcode":2}"#)
        #expect(odd["A{"] == nil)
        #expect(odd["A["] == .int(1))
        #expect(odd["a"] == nil)
        #expect(odd["üNÏCODE"] == .int(2))  // beyond ASCII: compared lowercased
        #expect(try JSONFields(odd).value("A[") == .int(1))
        #expect(try JSONFields(odd).value("a[x") == nil)
    }

    @Test("keys fold as Go folds them: long s, Kelvin sign, dotted and dotless I")
    func keysFoldAsGoFoldsThem() {
        #expect(JSONValue.keysMatchIgnoringCase("Requeſt", "Request"))
        #expect(JSONValue.keysMatchIgnoringCase("\u{212A}ind", "kind"))
        #expect(JSONValue.keysMatchIgnoringCase("İd", "id"))
        #expect(JSONValue.keysMatchIgnoringCase("ıd", "ID"))
        #expect(JSONValue.keysMatchIgnoringCase("straße", "STRASSE") == false)  // one character for one, as Go
        #expect(JSONValue.keysMatchIgnoringCase("Größe", "GRÖSSE") == false)
        #expect(JSONValue.keysMatchIgnoringCase("größe", "GRÖßE"))
        let spec = JSONValue.object([("Request", .string("A")), ("Requeſt", .string("B"))])
        #expect(spec["request"] == .string("B"))  // Go decodes both into Request; the last wins
    }

    @Test("control characters are written as Go writes them, in the bytes TextBudget counts")
    func controlEscapes() {
        let text = "a\u{08}b\u{0C}c\u{01}\n\"\\"
        let written = JSONValue.string(text).serialized()
        #expect(written == #""a\bb\fc\u0001\n\"\\""#)
        #expect(TextBudget.encodedCount(text) == written.utf8.count - 2)
    }

    @Test("integer and double compare exactly, so equality stays transitive")
    func exactNumbers() {
        let big = Int64(1) << 53
        #expect(JSONValue.int(big) == .double(Double(big)))
        #expect(JSONValue.int(big + 1) != .double(Double(big)))
        #expect(JSONValue.int(3) != .double(3.5))
        #expect(JSONValue.uint(UInt64.max) != .int(-1))
        var seen = Set<JSONValue>()
        seen.insert(.int(2))
        #expect(seen.contains(.double(2)))
    }

    @Test("malformed documents are rejected with an offset", arguments: [
        "", "{", "[1,]", #"{"a"}"#, #"{"a":1,}"#, "01", "-", "1.", "1e", "nul", #""\x""#, #""\u12""#,
        "\"a\u{01}\"", "[1] 2", "1e400", #"{"a":1"#, String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
    ])
    func rejects(_ document: String) {
        #expect(throws: JSONValueParser.Error.self) { try JSONValueParser.parse(document) }
    }

    @Test("invalid UTF-8 inside a string becomes U+FFFD, one per byte Go's utf8.DecodeRune refuses (Go does not reject it)",
          arguments: [
              ([0xC3, 0x28], "\u{FFFD}("),                          // a lead byte without its continuation
              ([0x61, 0xFF, 0xFE, 0x62], "a\u{FFFD}\u{FFFD}b"),      // bytes that never begin a sequence
              ([0xE2, 0x82], "\u{FFFD}\u{FFFD}"),                    // truncated: one per byte, as Go (not one per maximal part)
              ([0xC0, 0xAF], "\u{FFFD}\u{FFFD}"),                    // an overlong '/'
              ([0xED, 0xA0, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),       // a surrogate
              ([0xF4, 0x90, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"),  // beyond U+10FFFF
              ([0xE2, 0x82, 0xAC, 0x5C, 0x6E, 0xFF], "\u{20AC}\n\u{FFFD}"),  // valid, an escape, then invalid (the escape path)
          ] as [([UInt8], String)])
    func invalidUTF8(_ inner: [UInt8], _ expected: String) throws {
        let bytes: [UInt8] = [0x22] + inner + [0x22]
        #expect(try bytes.withUnsafeBytes { try JSONValueParser.parse($0) } == .string(expected))
    }
}
