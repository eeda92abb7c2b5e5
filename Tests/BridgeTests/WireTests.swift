import Bridge
import EventLoop
import FoundationEssentials
import Testing

@Suite("Framing, bounds and helpers", .timeLimit(.minutes(5)))
struct WireTests {
    @Test("many frames per read, frames split across reads")
    func manyFramesAndSplits() throws {
        var stream: [UInt8] = []
        for id in 0..<200 { stream += frame(0x1010_0201, id: UInt64(id), #"{"ContainerId":"c\#(id)"}"#) }
        let reader = FrameReader(maxMessageSize: 1 << 20, initialCapacity: 256)
        var seen: [UInt64] = []
        var offset = 0
        var chunk = 1
        while offset < stream.count {
            let n = min(chunk, stream.count - offset)
            stream[offset..<(offset + n)].withUnsafeBytes { reader.append($0) }
            offset += n
            chunk = chunk * 3 % 997 + 1
            while let f = try reader.nextFrame() {
                seen.append(f.header.id)
                #expect(String(decoding: f.body, as: UTF8.self).hasPrefix(#"{"ContainerId":"c\#(f.header.id)"}"#))
            }
        }
        #expect(seen == Array(0..<200))
        #expect(reader.bufferedCount == 0)
        #expect(reader.capacity <= 1024)
    }

    @Test("a buffer grown for one large message shrinks back once it is consumed")
    func readerShrinks() throws {
        let reader = FrameReader(maxMessageSize: 1 << 20, initialCapacity: 4096)
        let big = frame(0x1010_0101, id: 1, "{\"ContainerId\":\"" + String(repeating: "x", count: 200_000) + "\"}")
        big.withUnsafeBytes { reader.append($0) }
        #expect(reader.capacity >= big.count)
        #expect(try reader.nextFrame()?.header.id == 1)
        #expect(try reader.nextFrame() == nil)
        #expect(reader.capacity == 4096)
        #expect(reader.mappedBytes == PageBuffer.roundUp(4096))  // the mapping shrank too
    }

    @Test("a burst that filled the buffer gives its pages back once consumed; ordinary reads keep theirs")
    func readerGivesBackBurstPages() throws {
        let reader = FrameReader(maxMessageSize: 1 << 20, initialCapacity: 64 << 10)
        var burst: [UInt8] = []
        for id in 0..<1000 { burst += frame(0x1010_0201, id: UInt64(id), #"{"ContainerId":"c\#(id)"}"#) }
        #expect(burst.count > 32 << 10)
        burst.withUnsafeBytes { reader.append($0) }
        #expect(reader.residentBytes > 32 << 10)
        var seen = 0
        while try reader.nextFrame() != nil { seen += 1 }
        #expect(seen == 1000)
        #expect(reader.residentBytes <= PageBuffer.roundUp(FrameReader.keptBytes))

        // Small messages afterwards: the first pages are reused, nothing more is touched.
        frame(0x1010_0201, id: 1, #"{"ContainerId":"c"}"#).withUnsafeBytes { reader.append($0) }
        #expect(try reader.nextFrame()?.header.id == 1)
        #expect(try reader.nextFrame() == nil)
        #expect(reader.residentBytes <= PageBuffer.roundUp(FrameReader.keptBytes))
        #expect(reader.capacity == 64 << 10)
    }

    @Test("a write buffer a burst filled (or grew) gives its pages back once written")
    func writeBufferGivesBackBurstPages() {
        var buffer = ByteBuffer(capacity: 64 << 10)
        let body = [UInt8](repeating: 0x20, count: 200)
        body.withUnsafeBytes { bytes in
            for id in 0..<1000 { buffer.appendFrame(type: .executeProcess, id: UInt64(id), body: bytes) }
        }
        #expect(buffer.count == 1000 * 216)
        #expect(buffer.residentBytes >= 200_000)
        buffer.releaseIfEmpty(keeping: 64 << 10)  // not empty: nothing may go
        #expect(buffer.residentBytes >= 200_000)
        buffer.clear()
        buffer.releaseIfEmpty(keeping: 64 << 10)
        #expect(buffer.residentBytes <= PageBuffer.roundUp(ByteBuffer.keptBytes))
        // Reused afterwards as usual.
        body.withUnsafeBytes { buffer.appendFrame(type: .executeProcess, id: 1, body: $0) }
        #expect(Array(buffer.readableBytes[16...]) == body)
    }

    @Test("a huge announced size allocates nothing until the bytes arrive")
    func noAllocationFromUntrustedLength() throws {
        let reader = FrameReader(maxMessageSize: 16 << 20, initialCapacity: 64 << 10)
        let header = rawHeader(0x1010_0101, size: UInt32(16 << 20))
        (header + [UInt8](repeating: 0x20, count: 100)).withUnsafeBytes { reader.append($0) }
        #expect(try reader.nextFrame() == nil)
        #expect(reader.capacity == 64 << 10)
        #expect(throws: FramingError.truncated(bufferedBytes: 116)) { try reader.finish() }
    }

    @Test("size limits are fatal")
    func sizeLimits() {
        let small = FrameReader()
        rawHeader(1, size: 15).withUnsafeBytes { small.append($0) }
        #expect(throws: FramingError.sizeTooSmall(size: 15, type: 1, id: 1)) { try small.nextFrame() }
        let large = FrameReader(maxMessageSize: 65536)
        rawHeader(1, size: 65537).withUnsafeBytes { large.append($0) }
        #expect(throws: FramingError.sizeTooLarge(size: 65537, limit: 65536, type: 1, id: 1)) { try large.nextFrame() }
    }

    @Test("response identifiers follow the formula for any type")
    func identifiers() {
        #expect(MessageIdentifier(0x1010_0B01).responseIdentifier.rawValue == 0x2010_0B01)
        #expect(MessageIdentifier(0x3010_0101).responseIdentifier.rawValue == 0x2010_0101)
        #expect(MessageIdentifier(0xF020_0101).responseIdentifier.rawValue == 0x2020_0101)
        #expect(MessageIdentifier(0x1010_0E01).guestName == "269487617")
        #expect(MessageIdentifier.start.guestName == "ComputeSystemStartV1")
    }

    @Test("command lines split like go-shellwords v1.0.13 (nil: rejected as invalid)", arguments: [
        ("sleep 100", ["sleep", "100"]),
        (#"sh -c 'echo "hi there"'"#, ["sh", "-c", #"echo "hi there""#]),
        (#"a\ b "c\"d" ''"#, ["a b", #"c"d"#, ""]),
        ("ls -la; rm -rf /", ["ls", "-la"]),
        ("echo a>b", ["echo", "a"]),
        ("  ", []),
        ("'unterminated", nil),
        ("trailing\\", nil),
        ("x | y", ["x"]),
        ("/bin/echo a\r\nb", ["/bin/echo", "a", "b"]),  // "\r\n" is one Character, two runes
        ("'e'\u{301} x", ["e\u{301}", "x"]),            // a combining mark after a quote
        (#"printf a\tb\nc"#, ["printf", "a\tb\nc"]),    // \t and \n become a tab and a newline
        (#"'a\tb'"#, [#"a\tb"#]),                       // not inside single quotes
        ("ls /tmp 2>/dev/null", ["ls", "/tmp"]),         // a redirection's fd number is dropped
        ("ls a2>/dev/null", ["ls", "a2"]),
        ("echo $(id -u) x", ["echo", "$(id -u)", "x"]),  // kept whole, not run
        ("echo `id -u` x", ["echo", "`id -u`", "x"]),
        ("echo (x)", nil),
        ("echo x)", nil),
        ("echo $(x", nil),
        ("echo `x", nil),
        ("echo '(x)'", ["echo", "(x)"]),
    ] as [(String, [String]?)])
    func splitting(line: String, expected: [String]?) {
        #expect(CommandLineSplitter.split(line) == expected)
    }

    @Test("the host's negotiation checks: the fixture passes; a wrong version, OS or a missing GuestDefinedCapabilities does not")
    func negotiationChecks() throws {
        let fixture = try Fixtures.text("negotiate-protocol.response.json")
        func check(_ text: String) -> Bool {
            var bytes = Array(text.utf8)
            return bytes.withUnsafeMutableBytes { (try? HostChecks.validateNegotiation(UnsafeRawBufferPointer($0))) != nil }
        }
        #expect(check(fixture))
        #expect(check(fixture.replacingAll(#""RuntimeOsType":"Linux""#, with: #""runtimeostype":"linux""#)))  // Go matches keys in any case
        #expect(!check(fixture.replacingAll(#""Version":4"#, with: #""Version":3"#)))
        #expect(!check(fixture.replacingAll(#""RuntimeOsType":"Linux","#, with: "")))
        #expect(!check(fixture.replacingAll(#""RuntimeOsType":"Linux""#, with: #""RuntimeOsType":"Windows""#)))
        #expect(!check(fixture.replacingAll(#","GuestDefinedCapabilities""#, with: #","Other""#)))
        #expect(!check(#"{"Result":0,"Version":4}"#))
    }

    @Test("text budget cuts on scalar boundaries and counts escapes")
    func textBudget() {
        let text = String(repeating: "é\"\n", count: 1000)
        let cut = TextBudget.truncate(text, toEncodedBytes: 100)
        #expect(TextBudget.encodedCount(cut) <= 100)
        #expect(cut.hasSuffix(TextBudget.marker))
        #expect(TextBudget.truncate("short", toEncodedBytes: 100) == "short")
    }

    @Test("every outgoing message stays within 65536 bytes")
    func outgoingBounds() async throws {
        // The client enforces the host's 64 KiB limit: an oversized message would tear it down.
        let pair = try await ClientServerPair.start()
        let properties = try await pair.client.send(GetPropertiesRequest(base: RequestBase(containerId: "huge"), propertyTypes: ["ProcessList"]))
        let list = try properties.document().processList
        #expect(list.count > 1000 && list.count < 100_000)
        #expect(list.first?.processId == 0)
        #expect(try BridgeJSON.encode(properties).count <= 65536 - 16)
        let stacks = try await pair.client.send(DumpStacksRequest(base: RequestBase(containerId: "huge")))
        #expect(stacks.guestStacks.hasSuffix(TextBudget.marker))
        #expect(try BridgeJSON.encode(stacks).count <= 65536 - 16)
        let failed = try await pair.client.send(StartContainerRequest(base: RequestBase(containerId: "huge")), checkResult: false)
        #expect(failed.base.result == .fail)
        #expect(try BridgeJSON.encode(failed).count <= 65536 - 16)
        #expect(pair.client.closeReason == nil)
        await pair.stop()
    }

    @Test("bounded bodies for every response shape", arguments: [1_000, 60_000, 200_000])
    func boundedShapes(size: Int) throws {
        let text = String(repeating: "x\u{1}", count: size)
        let limit = 65536 - 16
        #expect(OutgoingBodies.response(DumpStacksResponse(guestStacks: text)).count <= limit)
        #expect(OutgoingBodies.failure(BridgeError(.fail, text), activityId: activity).count <= limit)
        #expect(OutgoingBodies.failure(BridgeError(.fail, text), activityId: text).count <= limit)
        var record = ResponseBase.failure(BridgeError(.fail, "x"), activityId: activity)
        record.errorRecords[0].stackTrace = text
        #expect(OutgoingBodies.response(EmptyResponse(base: record)).count <= limit)
        let doc = PropertiesDocument(processList: (0..<UInt32(size)).map { ProcessDetails(processId: $0) })
        let embedded = try doc.embedded(fittingEncodedBytes: limit - 100)
        #expect(OutgoingBodies.response(GetPropertiesResponse(properties: embedded)).count <= limit)
    }
}
