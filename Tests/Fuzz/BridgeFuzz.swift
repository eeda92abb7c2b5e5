// libFuzzer target for the bridge's untrusted-input path: frame parser → request router
// (negotiation rules, body and embedded-document decoding, validation) → bounded error and
// response encoding, plus the host-side decoders and the direct JSON parser.
//
// Built by scripts/fuzz.sh together with the I/O-free Bridge sources into one module (no
// `import Bridge`). Traps (findings) on: crashes, sanitizer errors, an outgoing body above the
// host's 64 KiB limit, or a JSON value that does not survive serialize → parse.
import FoundationEssentials

private let limit = FrameHeader.hostMaxMessageSize - FrameHeader.byteCount

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

private func exerciseBody(type: MessageIdentifier, body: UnsafeRawBufferPointer) {
    for negotiated in [false, true] {
        switch RequestRouter.route(type: type, body: body, negotiated: negotiated) {
        case .reject(let error, let activityId):
            let out = OutgoingBodies.failure(error, activityId: activityId)
            check(out.count <= limit, "error body of \(out.count) bytes")
        case .dispatch(let routed):
            let activityId = routed.base.activityId
            let ok = OutgoingBodies.response(EmptyResponse(base: ResponseBase(activityId: activityId)))
            check(ok.count <= limit, "success body of \(ok.count) bytes")
            if case .negotiateProtocol(let request) = routed { _ = try? RequestRouter.negotiate(request) }
            if case .create(_, let settings) = routed {
                let again = try? ContainerSettings(json: JSONValueParser.parse(settings.jsonValue.serialized()))
                check(again == settings, "ContainerSettings round trip")
            }
        }
    }
    // Host side: every response shape and the notification.
    _ = try? BridgeJSON.decode(EmptyResponse.self, from: body)
    _ = try? BridgeJSON.decode(NegotiateProtocolResponse.self, from: body)
    _ = try? BridgeJSON.decode(GetPropertiesResponse.self, from: body).document()
    if let n = try? BridgeJSON.decode(ContainerNotification.self, from: body) { _ = try? HostChecks.validate(n) }
    if let base = try? ResponseBase(json: JSONValueParser.parse(body)) {
        _ = try? HostChecks.validate(base)
        let shrunk = OutgoingBodies.response(EmptyResponse(base: base))
        check(shrunk.count <= limit, "shrunk response of \(shrunk.count) bytes")
    }
    // Direct parser: serialize → parse is the identity.
    if let value = try? JSONValueParser.parse(body) {
        let text = value.serialized()
        let again = try? JSONValueParser.parse(text)
        check(again == value, "JSONValue round trip: \(text.prefix(200))")
    }
    _ = CommandLineSplitter.split(String(decoding: body, as: UTF8.self))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    // Raw bodies, as if each input were one frame's body of every known type.
    let first = size > 0 ? input[0] : 0
    let types: [MessageIdentifier] = [.create, .start, .executeProcess, .waitForProcess, .signalProcess, .resizeConsole,
                                      .getProperties, .modifySettings, .negotiateProtocol, .dumpStacks, .updateContainer]
    exerciseBody(type: types[Int(first) % types.count], body: UnsafeRawBufferPointer(rebasing: input.dropFirst(size > 0 ? 1 : 0)))

    // The same bytes as a stream of frames, fed in two chunks.
    let reader = FrameReader(maxMessageSize: 1 << 20, initialCapacity: 64)
    let split = size > 1 ? Int(input[1]) % size : 0
    for chunk in [input[..<split], input[split...]] {
        reader.append(UnsafeRawBufferPointer(rebasing: chunk))
        do {
            while let frame = try reader.nextFrame() {
                check(frame.body.count == Int(frame.header.size) - 16, "body length")
                exerciseBody(type: frame.header.type, body: frame.body)
            }
        } catch {
            return 0  // framing error: the connection would close
        }
    }
    return 0
}
