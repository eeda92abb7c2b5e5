import Bridge
import FoundationEssentials
import Testing

/// The hot messages are read and written by the direct parser/writer; their `Codable` forms
/// are the reference. Both must agree on every fixture and reject the same bad input.
@Suite("Direct coding agrees with Codable", .timeLimit(.minutes(5)))
struct DirectCodingTests {
    static let cases: [(prefix: String, check: @Sendable (Data) throws -> Void)] = [
        ("execute-process.", { try agree(ExecuteProcessRequest.self, ExecuteProcessResponse.self, $0) }),
        ("wait-for-process.", { try agree(WaitForProcessRequest.self, WaitForProcessResponse.self, $0) }),
        ("signal-process.", { try agree(SignalProcessRequest.self, EmptyResponse.self, $0) }),
        ("resize-console.", { try agree(ResizeConsoleRequest.self, EmptyResponse.self, $0) }),
        ("error.", { try agree(EmptyResponse.self, EmptyResponse.self, $0) }),
        ("negotiate-protocol.", { try agree(NegotiateProtocolRequest.self, NegotiateProtocolResponse.self, $0) }),
        ("start-container.", { try agree(StartContainerRequest.self, EmptyResponse.self, $0) }),
        ("delete-container-state.", { try agree(DeleteContainerStateRequest.self, EmptyResponse.self, $0) }),
        ("dump-stacks.", { try agree(DumpStacksRequest.self, DumpStacksResponse.self, $0) }),
        ("shutdown-graceful.request", { try agree(ShutdownGracefulRequest.self, EmptyResponse.self, $0) }),
        ("shutdown-forced.request", { try agree(ShutdownForcedRequest.self, EmptyResponse.self, $0) }),
    ]

    static var fixtureNames: [String] {
        Fixtures.names.filter { name in cases.contains { name.hasPrefix($0.prefix) } }
    }

    @Test("decode and encode match the Codable path", arguments: fixtureNames)
    func fixtures(name: String) throws {
        let data = try Fixtures.data(name)
        let check = try #require(Self.cases.first { name.hasPrefix($0.prefix) }).check
        try check(data)
    }

    @Test("ProcessParameters written directly equals its Codable encoding")
    func processParameters() throws {
        for name in Fixtures.names where name.hasPrefix("execute-process") && name.contains(".request") {
            let request = try BridgeJSON.decoder.decode(ExecuteProcessRequest.self, from: Fixtures.data(name))
            let parameters = try request.parameters()
            #expect(parameters.jsonValue == (try jsonValue(BridgeJSON.encode(parameters))), "\(name)")
            #expect(try jsonValue(BridgeJSON.embed(parameters)) == jsonValue(request.settings.processParameters), "\(name)")
        }
    }

    @Test("both paths reject wrong types and out-of-range integers", arguments: [
        #"{"ContainerId":1}"#, #"{"ProcessId":-1}"#, #"{"ProcessId":4294967296}"#, #"{"ProcessId":"7"}"#,
        #"{"ProcessId":1.5}"#, #"{"TimeoutInMs":true}"#, #"{"Settings":[]}"#, #"[]"#, #"{"otsc":{"a":1}}"#,
    ])
    func rejects(_ body: String) throws {
        var referenceRejections = 0
        for decode in [decodeWait, decodeExec] {
            let direct = Result { try decode(body, true) }
            let codable = Result { try decode(body, false) }
            // The same verdict as the Codable reference, for each message type.
            switch codable {
            case .failure:
                referenceRejections += 1
                #expect(throws: (any Error).self, "\(body)") { try direct.get() }
            case .success:
                #expect(throws: Never.self, "\(body)") { try direct.get() }
            }
        }
        #expect(referenceRejections > 0, "no message type rejects \(body): the case tests nothing")
    }

    @Test("the wire path of each hot message is the direct one (Go's case-insensitive keys tell)")
    func witnesses() throws {
        func body(_ text: String) -> [UInt8] { Array(text.utf8) }
        let wait = try body(#"{"processid":7,"timeoutinms":5}"#).withUnsafeBytes { try WaitForProcessRequest.fromMessageBody($0) }
        #expect(wait.processId == 7 && wait.timeoutInMs == 5)
        let exec = try body(#"{"result":0,"processid":9}"#).withUnsafeBytes { try ExecuteProcessResponse.fromMessageBody($0) }
        #expect(exec.processId == 9)
        let written = String(decoding: try WaitForProcessResponse(exitCode: 3).messageBody(), as: UTF8.self)
        #expect(written == #"{"Result":0,"ExitCode":3}"#)
    }

    @Test("integer fields keep their full range")
    func ranges() throws {
        let wait = try decode(WaitForProcessRequest.self, #"{"ProcessId":4294967295,"TimeoutInMs":0}"#)
        #expect(wait.processId == .max && wait.timeoutInMs == 0)
        let resize = try decode(ResizeConsoleRequest.self, #"{"ProcessId":1,"Height":65535,"Width":0}"#)
        #expect(resize.height == .max)
        #expect(throws: (any Error).self) { try decode(ResizeConsoleRequest.self, #"{"Height":65536}"#) }
        let signal = try decode(SignalProcessRequest.self, #"{"ProcessId":3,"Options":{"Signal":-15}}"#)
        #expect(signal.options?.signal == -15)
        #expect(try decode(SignalProcessRequest.self, "null").processId == 0)
    }
}

private func decode<T: BridgeMessageCoding>(_ type: T.Type, _ body: String) throws -> T {
    let bytes = Array(body.utf8)
    return try bytes.withUnsafeBytes { try T.fromMessageBody($0) }
}

private let decodeWait: @Sendable (String, Bool) throws -> Void = { body, direct in
    if direct { _ = try decode(WaitForProcessRequest.self, body) } else { _ = try BridgeJSON.decoder.decode(WaitForProcessRequest.self, from: Data(body.utf8)) }
}

private let decodeExec: @Sendable (String, Bool) throws -> Void = { body, direct in
    if direct { _ = try decode(ExecuteProcessRequest.self, body) } else { _ = try BridgeJSON.decoder.decode(ExecuteProcessRequest.self, from: Data(body.utf8)) }
}

/// Decodes `data` as the request or response type (by trying the request first, as the file
/// name says which one it is only loosely) both ways and compares values and encodings.
private func agree<Request: BridgeMessageCoding & Equatable, Response: BridgeMessageCoding & Equatable>(_ request: Request.Type, _ response: Response.Type, _ data: Data) throws {
    let text = String(decoding: data, as: UTF8.self)
    if text.contains("\"Result\"") {
        try agreeOne(Response.self, data)
    } else {
        try agreeOne(Request.self, data)
    }
}

private func agreeOne<T: BridgeMessageCoding & Equatable>(_ type: T.Type, _ data: Data) throws {
    let reference = try BridgeJSON.decoder.decode(T.self, from: data)
    let direct = try data.withUnsafeBytes { try T.fromMessageBody($0) }
    #expect(direct == reference, "\(T.self)")
    let written = try direct.messageBody()
    #expect(try jsonValue(written) == jsonValue(BridgeJSON.encode(reference)), "\(T.self): \(String(decoding: written, as: UTF8.self))")
}
