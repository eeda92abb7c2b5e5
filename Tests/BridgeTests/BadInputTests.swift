import Bridge
import EventLoop
import FoundationEssentials
import Logging
import Testing

/// What the guest must do with one malformed input.
enum Expected: Sendable {
    /// An error response with this HRESULT, response type and (optionally) text.
    case error(HResult, responseType: UInt32, text: String? = nil, activityId: String? = activity)
    /// A success response of this type.
    case success(responseType: UInt32)
    /// The connection is closed (framing impossible); `serve()` reports it.
    case closed(FramingKind)
    /// The connection is closed by EOF after a partial message (no response).
    case eof
}

enum FramingKind: Sendable { case tooSmall, tooLarge }

struct BadInput: Sendable, CustomStringConvertible {
    var name: String
    var negotiated = true
    var bytes: [UInt8]
    var expected: Expected
    /// Close our sending side after the bytes (truncation cases).
    var halfClose = false
    var description: String { name }
}

private let uvm = uvmContainerID
private func base(_ cid: String = "c1", extra: String = "") -> String {
    #"{"ContainerId":"\#(cid)","ActivityId":"\#(activity)"\#(extra)}"#
}
private func createBody(_ config: String) -> String {
    let escaped = config.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")
    return base("c1", extra: #","ContainerConfig":"\#(escaped)""#)
}
private func execBody(_ cid: String, _ parameters: String) -> String {
    let escaped = parameters.replacingAll("\"", with: "\\\"")
    return base(cid, extra: #","Settings":{"ProcessParameters":"\#(escaped)","VsockStdioRelaySettings":{}}"#)
}
private let goodSpec = #"{"ociVersion":"1.1.0","process":{"args":["/pause"]},"root":{"path":"/r"},"linux":{}}"#

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

let badInputs: [BadInput] = [
    // Before negotiation.
    BadInput(name: "Start before negotiation", negotiated: false, bytes: frame(0x1010_0201, base()),
             expected: .error(.notImplemented, responseType: 0x2010_0201, text: "HRESULT 0x80004001: bridge: function not supported, header type: ComputeSystemStartV1")),
    BadInput(name: "Create with invalid JSON before negotiation is E_NOTIMPL, not invalid JSON", negotiated: false, bytes: frame(0x1010_0101, "{nope"),
             expected: .error(.notImplemented, responseType: 0x2010_0101, activityId: "")),
    BadInput(name: "unknown type before negotiation", negotiated: false, bytes: frame(0x1010_0E01, base()),
             expected: .error(.notImplemented, responseType: 0x2010_0E01, text: "header type: 269487617")),
    BadInput(name: "negotiation with invalid JSON", negotiated: false, bytes: frame(0x1010_0B01, "{\"MinimumVersion\":"),
             expected: .error(.invalidJSON, responseType: 0x2010_0B01, activityId: "")),
    BadInput(name: "negotiation range above 4", negotiated: false, bytes: frame(0x1010_0B01, base("", extra: #","MinimumVersion":5,"MaximumVersion":6"#)),
             expected: .error(.unsupportedProtocolVersion, responseType: 0x2010_0B01, text: "HRESULT: 0xc037010c")),
    BadInput(name: "negotiation range below 4", negotiated: false, bytes: frame(0x1010_0B01, base("", extra: #","MinimumVersion":1,"MaximumVersion":3"#)),
             expected: .error(.unsupportedProtocolVersion, responseType: 0x2010_0B01)),
    BadInput(name: "negotiation with string versions", negotiated: false, bytes: frame(0x1010_0B01, base("", extra: #","MinimumVersion":"4","MaximumVersion":"4""#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0B01)),
    BadInput(name: "negotiation with missing versions (zero)", negotiated: false, bytes: frame(0x1010_0B01, base("")),
             expected: .error(.unsupportedProtocolVersion, responseType: 0x2010_0B01)),
    // After negotiation: identifiers.
    BadInput(name: "negotiation twice", bytes: frame(0x1010_0B01, negotiateBody),
             expected: .error(.notImplemented, responseType: 0x2010_0B01, text: "ComputeSystemNegotiateProtocolV1")),
    BadInput(name: "UpdateContainer (unimplemented)", bytes: frame(0x1010_0E01, base()),
             expected: .error(.notImplemented, responseType: 0x2010_0E01, text: "HRESULT 0x80004001: bridge: function not supported, header type: 269487617")),
    BadInput(name: "LifecycleNotification (unimplemented)", bytes: frame(0x1010_0F01, base()),
             expected: .error(.notImplemented, responseType: 0x2010_0F01)),
    BadInput(name: "ModifyServiceSettings (Windows only)", bytes: frame(0x1020_0101, base()),
             expected: .error(.notImplemented, responseType: 0x2020_0101)),
    BadInput(name: "response type sent to the guest", bytes: frame(0x2010_0101, #"{"Result":0}"#),
             expected: .error(.notImplemented, responseType: 0x2010_0101, text: "ComputeSystemResponseCreateV1", activityId: "")),
    BadInput(name: "notification sent to the guest", bytes: frame(0x3010_0101, base()),
             expected: .error(.notImplemented, responseType: 0x2010_0101, text: "ComputeSystemNotificationV1")),
    BadInput(name: "type nibble 0", bytes: frame(0x0010_0201, base()),
             expected: .error(.notImplemented, responseType: 0x2010_0201)),
    BadInput(name: "type nibble 0xF", bytes: frame(0xF010_0201, base()),
             expected: .error(.notImplemented, responseType: 0x2010_0201)),
    // Bodies.
    BadInput(name: "syntax error", bytes: frame(0x1010_0201, "{"),
             expected: .error(.invalidJSON, responseType: 0x2010_0201, activityId: "")),
    BadInput(name: "empty body", bytes: frame(0x1010_0201, "", newline: false),
             expected: .error(.invalidJSON, responseType: 0x2010_0201, activityId: "")),
    BadInput(name: "array instead of object", bytes: frame(0x1010_0201, "[]"),
             expected: .error(.invalidJSON, responseType: 0x2010_0201, activityId: "")),
    BadInput(name: "null body is all zero values (as in Go)", bytes: frame(0x1010_0201, "null"),
             expected: .success(responseType: 0x2010_0201)),
    BadInput(name: "a body that is a string (of invalid UTF-8)", bytes: FrameHeader(type: .start, size: 20, id: 1).bytes + [0x22, 0xFF, 0xFE, 0x22],
             expected: .error(.invalidJSON, responseType: 0x2010_0201, activityId: "")),
    BadInput(name: "invalid UTF-8 inside a string is taken, as U+FFFD (as Go)",
             bytes: FrameHeader(type: .start, size: 16 + 72, id: 1).bytes
                 + Array(#"{"ContainerId":"c"#.utf8) + [0xFF] + Array(#"","ActivityId":"00000000-0000-0000-0000-000000000000"}"#.utf8),
             expected: .success(responseType: 0x2010_0201)),
    BadInput(name: "DumpStacks with a body that is not JSON gets the stacks (Go never decodes it)", bytes: frame(0x1010_0C01, "{"),
             expected: .success(responseType: 0x2010_0C01)),
    BadInput(name: "ModifySettings with null Settings for a type that has them", bytes: frame(0x1010_0A01, base(extra: #","Request":{"ResourceType":"ContainerConstraints","Settings":null}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0A01, text: "Request.Settings")),
    BadInput(name: "unknown keys are ignored", bytes: frame(0x1010_0201, base(extra: #","Future":{"x":[1,2]},"otsc":{"traceparent":"00-1-2-01"}"#)),
             expected: .success(responseType: 0x2010_0201)),
    BadInput(name: "CRLF and spaces around the body", bytes: frame(0x1010_0201, "  \r\n" + base() + " \r\n"),
             expected: .success(responseType: 0x2010_0201)),
    BadInput(name: "wrong type: ProcessId string", bytes: frame(0x1010_0601, base(extra: #","ProcessId":"abc","TimeoutInMs":1"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0601)),
    BadInput(name: "negative uint32", bytes: frame(0x1010_0601, base(extra: #","ProcessId":-1"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0601)),
    BadInput(name: "uint16 overflow", bytes: frame(0x1010_0801, base(extra: #","ProcessId":1,"Height":70000,"Width":1"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0801)),
    BadInput(name: "wrong type: ContainerId number keeps ActivityId", bytes: frame(0x1010_0201, #"{"ContainerId":5,"ActivityId":"\#(activity)"}"#),
             expected: .error(.invalidJSON, responseType: 0x2010_0201)),
    BadInput(name: "missing fields are zero: WaitForProcess {}", bytes: frame(0x1010_0601, "{}"),
             expected: .success(responseType: 0x2010_0601)),
    BadInput(name: "HRESULT from the handler", bytes: frame(0x1010_0201, base("fail")),
             expected: .error(.systemNotFound, responseType: 0x2010_0201, text: "container fail does not exist")),
    // Requests that crash the Go guest.
    BadInput(name: "ExecuteProcess in the UVM with an empty command line", bytes: frame(0x1010_0501, execBody(uvm, "{}")),
             expected: .error(.invalidArgument, responseType: 0x2010_0501, text: "empty command line")),
    BadInput(name: "ExecuteProcess with a command line of only an operator", bytes: frame(0x1010_0501, execBody(uvm, #"{"CommandLine":"; ls"}"#)),
             expected: .error(.invalidArgument, responseType: 0x2010_0501)),
    BadInput(name: "ExecuteProcess with an unterminated quote", bytes: frame(0x1010_0501, execBody("c1", #"{"CommandLine":"'sh","CreateInUtilityVM":true}"#)),
             expected: .error(.fail, responseType: 0x2010_0501, text: "invalid command line string")),
    BadInput(name: "ExecuteProcess with a bare parenthesis", bytes: frame(0x1010_0501, execBody(uvm, #"{"CommandLine":"echo (x)"}"#)),
             expected: .error(.fail, responseType: 0x2010_0501, text: "failed to parse command line string")),
    BadInput(name: "ExecuteProcess with a blank command line", bytes: frame(0x1010_0501, execBody(uvm, #"{"CommandLine":"  "}"#)),
             expected: .error(.invalidArgument, responseType: 0x2010_0501, text: "empty command line")),
    BadInput(name: "ExecuteProcess with non-JSON ProcessParameters", bytes: frame(0x1010_0501, execBody(uvm, "not json")),
             expected: .error(.invalidJSON, responseType: 0x2010_0501, text: "ProcessParameters")),
    BadInput(name: "ExecuteProcess with an object for ProcessParameters", bytes: frame(0x1010_0501, base(uvm, extra: #","Settings":{"ProcessParameters":{}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0501)),
    BadInput(name: "ExecuteProcess with a null OciProcess starts the init (Go's nil pointer)", bytes: frame(0x1010_0501, execBody("c1", #"{"OciProcess":null}"#)),
             expected: .success(responseType: 0x2010_0501)),
    BadInput(name: "ExecuteProcess with a string for OciProcess", bytes: frame(0x1010_0501, execBody("c1", #"{"OciProcess":"ls"}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0501, text: "OciProcess")),
    BadInput(name: "ExecuteProcess with a string for OciProcess.args", bytes: frame(0x1010_0501, execBody("c1", #"{"OciProcess":{"args":"ls"}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0501, text: "args")),
    BadInput(name: "ExecuteProcess with a number among OciProcess.args", bytes: frame(0x1010_0501, execBody("c1", #"{"OciProcess":{"args":[1]}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0501, text: "args")),
    BadInput(name: "ExecuteProcess with a string for OciProcess.terminal", bytes: frame(0x1010_0501, execBody("c1", #"{"OciProcess":{"args":["sh"],"terminal":"yes"}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0501, text: "Process.terminal of type bool")),
    BadInput(name: "ExecuteProcess with a uid beyond uint32", bytes: frame(0x1010_0501, execBody("c1", #"{"OciProcess":{"args":["sh"],"User":{"UID":4294967296}}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0501, text: "Process.user.uid of type uint32")),
    BadInput(name: "ExecuteProcess with a fractional rlimit", bytes: frame(0x1010_0501, execBody("c1", #"{"OciProcess":{"args":["sh"],"rlimits":[{"type":"RLIMIT_NOFILE","hard":1.5}]}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0501, text: "rlimits[0].hard")),
    BadInput(name: "ExecuteProcess with nulls and unknown keys in OciProcess", bytes: frame(0x1010_0501, execBody("c1", #"{"OciProcess":{"args":["sh"],"terminal":null,"env":null,"bogus":[1]}}"#)),
             expected: .success(responseType: 0x2010_0501)),
    BadInput(name: "external ExecuteProcess with a string for OciProcess", bytes: frame(0x1010_0501, execBody(uvm, #"{"CommandLine":"ls","OciProcess":"ls"}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0501, text: "OciProcess")),
    BadInput(name: "ExecuteProcess with empty OciProcess.args", bytes: frame(0x1010_0501, execBody("c1", #"{"OciProcess":{"args":[]}}"#)),
             expected: .error(.invalidArgument, responseType: 0x2010_0501)),
    BadInput(name: "ExecuteProcess with CommandLine splits fine", bytes: frame(0x1010_0501, execBody(uvm, #"{"CommandLine":"sh -c 'echo hi'"}"#)),
             expected: .success(responseType: 0x2010_0501)),
    BadInput(name: "Create with ContainerConfig not JSON", bytes: frame(0x1010_0101, createBody("{")),
             expected: .error(.invalidJSON, responseType: 0x2010_0101, text: "ContainerConfig")),
    BadInput(name: "Create without OciSpecification", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1}}"#)),
             expected: .error(.invalidArgument, responseType: 0x2010_0101)),
    BadInput(name: "Create without process", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":{"root":{},"linux":{}}}"#)),
             expected: .error(.invalidArgument, responseType: 0x2010_0101, text: "process")),
    BadInput(name: "Create with root null", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":{"process":{},"root":null,"linux":{}}}"#)),
             expected: .error(.invalidArgument, responseType: 0x2010_0101, text: "root")),
    BadInput(name: "Create with a string for OciSpecification", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":"spec"}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0101, text: "OciSpecification")),
    BadInput(name: "Create with an array for process", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":{"process":[],"root":{},"linux":{}}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0101, text: "process")),
    BadInput(name: "Create with process null and an array for root", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":{"process":null,"root":[],"linux":{}}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0101, text: "root")),
    BadInput(name: "Create without linux", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":{"process":{},"root":{}}}"#)),
             expected: .error(.invalidArgument, responseType: 0x2010_0101, text: "linux")),
    BadInput(name: "Create with schema 2.0", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2},"OciSpecification":\#(goodSpec)}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0101, text: "invalid schema version")),
    BadInput(name: "Create with a number among the annotations", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":{"process":{},"root":{},"linux":{},"annotations":{"x":1}}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0101, text: "Spec.annotations[x] of type string")),
    BadInput(name: "Create with a string for a namespace list", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":{"process":{},"root":{},"linux":{"namespaces":"pid"}}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0101, text: "Spec.linux.namespaces of type array")),
    BadInput(name: "Create with a string for the memory limit", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":{"process":{},"root":{},"linux":{"resources":{"memory":{"limit":"1G"}}}}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0101, text: "memory.limit")),
    BadInput(name: "Create with a string for process.terminal", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":{"process":{"terminal":"yes"},"root":{},"linux":{}}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0101, text: "Spec.process.terminal of type bool")),
    BadInput(name: "Create valid", bytes: frame(0x1010_0101, createBody(#"{"SchemaVersion":{"Major":2,"Minor":1},"OciSpecification":\#(goodSpec)}"#)),
             expected: .success(responseType: 0x2010_0101)),
    BadInput(name: "GetProperties with a non-JSON Query", bytes: frame(0x1010_0901, base(extra: #","Query":"{PropertyTypes""#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0901, text: "Query")),
    BadInput(name: "ModifySettings with an unknown ResourceType", bytes: frame(0x1010_0A01, base(uvm, extra: #","Request":{"ResourceType":"Bogus","Settings":{}}"#)),
             expected: .error(.fail, responseType: 0x2010_0A01, text: "invalid ResourceType 'Bogus'")),
    BadInput(name: "ModifySettings without Request", bytes: frame(0x1010_0A01, base(uvm)),
             expected: .error(.invalidJSON, responseType: 0x2010_0A01, text: "Request")),
    BadInput(name: "ModifySettings with a null Request", bytes: frame(0x1010_0A01, base(uvm, extra: #","Request":null"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0A01, text: "Request")),
    BadInput(name: "ModifySettings with an empty Request", bytes: frame(0x1010_0A01, base(uvm, extra: #","Request":{}"#)),
             expected: .error(.fail, responseType: 0x2010_0A01, text: "invalid ResourceType ''")),
    BadInput(name: "ModifySettings with settings of the wrong shape", bytes: frame(0x1010_0A01, base(uvm, extra: #","Request":{"ResourceType":"MappedVirtualDisk","Settings":{"Lun":"x"}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0A01)),
    BadInput(name: "ContainerConstraints whose Linux resources Go cannot decode (string shares)",
             bytes: frame(0x1010_0A01, base(extra: #","Request":{"RequestType":"Update","ResourceType":"ContainerConstraints","Settings":{"Windows":{},"Linux":{"cpu":{"shares":"lots"}}}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0A01, text: "cpu.shares")),
    BadInput(name: "ContainerConstraints with a negative unsigned field, key in another case",
             bytes: frame(0x1010_0A01, base(extra: #","Request":{"ResourceType":"ContainerConstraints","Settings":{"Linux":{"CPU":{"period":-1}}}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0A01)),
    BadInput(name: "ContainerConstraints with a non-string unified value",
             bytes: frame(0x1010_0A01, base(extra: #","Request":{"ResourceType":"ContainerConstraints","Settings":{"Linux":{"unified":{"memory.max":5}}}}"#)),
             expected: .error(.invalidJSON, responseType: 0x2010_0A01)),
    BadInput(name: "deeply nested JSON", bytes: frame(0x1010_0201, base(extra: #","ocsc":"# + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000))),
             expected: .error(.invalidJSON, responseType: 0x2010_0201, activityId: nil)),
    BadInput(name: "a body of more values than a document may hold",
             bytes: frame(0x1010_0201, base(extra: #","ocsc":["# + String(repeating: "0,", count: JSONValueParser.maxValues) + "0]")),
             expected: .error(.invalidJSON, responseType: 0x2010_0201, text: "values", activityId: nil)),
    BadInput(name: "a body just under that many values is served",
             bytes: frame(0x1010_0201, base(extra: #","ocsc":["# + String(repeating: "0,", count: JSONValueParser.maxValues - 10) + "0]")),
             expected: .success(responseType: 0x2010_0201)),
    BadInput(name: "60 KB ActivityId in a failing request still fits 64 KiB", bytes: frame(0x1010_0601, #"{"ActivityId":""# + String(repeating: "a", count: 60_000) + #"","ProcessId":57005}"#),
             expected: .error(.notFound, responseType: 0x2010_0601, activityId: nil)),
    BadInput(name: "error text over 64 KiB is cut", bytes: frame(0x1010_0201, base("huge")),
             expected: .error(.fail, responseType: 0x2010_0201, text: TextBudget.marker)),
    // Framing.
    BadInput(name: "size smaller than the header", bytes: rawHeader(0x1010_0201, size: 8), expected: .closed(.tooSmall)),
    BadInput(name: "size zero", bytes: rawHeader(0x1010_0201, size: 0), expected: .closed(.tooSmall)),
    BadInput(name: "size 0xFFFFFFFF", bytes: rawHeader(0x1010_0201, size: .max), expected: .closed(.tooLarge)),
    BadInput(name: "size just above the limit", bytes: rawHeader(0x1010_0201, size: UInt32(16 << 20) + 1), expected: .closed(.tooLarge)),
    BadInput(name: "truncated header then EOF", bytes: Array(rawHeader(0x1010_0201, size: 100).prefix(7)), expected: .eof, halfClose: true),
    BadInput(name: "truncated body then EOF", bytes: Array(frame(0x1010_0201, base()).dropLast(5)), expected: .eof, halfClose: true),
]

@Suite("Malformed input", .timeLimit(.minutes(5)))
struct BadInputTests {
    @Test("the table has at least 30 cases")
    func enough() { #expect(badInputs.count >= 30) }

    @Test("each malformed input gets its expected outcome and the server survives", arguments: badInputs)
    func badInput(_ input: BadInput) async throws {
        let (hostEnd, guestEnd) = try AsyncFD.socketPair()
        var logger = Logger(label: "test.bad-input")
        logger.logLevel = .critical
        let server = BridgeServer(connection: guestEnd, handler: FakeHandler(), logger: logger)
        let serving = Task { await server.serve() }
        let host = RawHost(fd: hostEnd)
        if input.negotiated {
            try await host.send(frame(0x1010_0B01, id: 0, negotiateBody))
            let reply = try #require(try await host.next())
            #expect(reply.header.type.rawValue == 0x2010_0B01)
        }
        try await host.send(input.bytes)
        if input.halfClose { try hostEnd.shutdownWrite() }
        let reply = try await host.next()

        switch input.expected {
        case .closed(let kind):
            #expect(reply == nil, "connection must be closed")
            let ending = await serving.value
            switch (kind, ending) {
            case (.tooSmall, .framingError(.sizeTooSmall)), (.tooLarge, .framingError(.sizeTooLarge)): break
            default: Issue.record("unexpected ending \(ending)")
            }
            hostEnd.close()
            return
        case .eof:
            #expect(reply == nil)
            #expect(await serving.value == .closed)
            hostEnd.close()
            return
        case .error(let hresult, let type, let text, let activityId):
            let reply = try #require(reply)
            #expect(reply.header.type.rawValue == type)
            #expect(reply.header.id == 1)
            #expect(reply.header.size <= 65536)
            let body = try BridgeJSON.decoder.decode(EmptyResponse.self, from: Data(reply.body))
            #expect(body.base.result == hresult)
            #expect(body.base.errorRecords.count == 1)
            #expect(body.base.errorRecords.first?.result == hresult)
            if let text { #expect(body.base.errorMessage.contains(text), "\(body.base.errorMessage.prefix(300))") }
            if let activityId {
                #expect(body.base.activityId == activityId)
                #expect(!String(decoding: reply.body, as: UTF8.self).contains(#""ActivityId":"""#))
            }
        case .success(let type):
            let reply = try #require(reply)
            #expect(reply.header.type.rawValue == type)
            let body = try BridgeJSON.decoder.decode(EmptyResponse.self, from: Data(reply.body))
            #expect(body.base.result == .ok, "\(body.base.errorMessage)")
        }

        // Still serving: a valid request gets its answer.
        if input.negotiated {
            try await host.send(frame(0x1010_0201, id: 99, base()))
            let alive = try #require(try await host.next())
            #expect(alive.header.id == 99)
            #expect(try BridgeJSON.decoder.decode(EmptyResponse.self, from: Data(alive.body)).base.result == .ok)
        } else {
            try await host.send(frame(0x1010_0B01, id: 99, negotiateBody))
            let alive = try #require(try await host.next())
            #expect(alive.header.id == 99)
            #expect(try BridgeJSON.decoder.decode(NegotiateProtocolResponse.self, from: Data(alive.body)).version == 4)
        }
        hostEnd.close()
        _ = await serving.value
    }
}
