import EventLoop
import Glibc
import Synchronization
import Testing

/// `Relay.Options.redial`: output that outlives its destination's peer (a host reconnect).
@Suite("Relay re-dial", .timeLimit(.minutes(5)))
struct RelayRedialTests {
    /// The host's end goes away. Shut down before it is closed: a child another test is
    /// spawning right now (vfork, before its exec closes what it inherited) may hold a copy of
    /// the descriptor, and the socket only goes when the last copy does; a send meanwhile would
    /// succeed into the dying socket instead of failing.
    static func hangUp(_ end: AsyncFD) {
        try? end.shutdownRead()
        end.close()
    }

    private static func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
    }

    @Test("a destination whose reader went away is replaced: the new one gets the kept tail, then the rest, in order",
          .timeLimit(.minutes(1)))
    func replaced() async throws {
        try await withLoop("relay-redial") { loop in
            let (replacement, replacementReader) = try AsyncFD.socketPair(loop: loop)
            let calls = Atomic<Int>(0)
            var options = Relay.Options()
            options.replayBytes = 1000
            options.redial = {
                calls.add(1, ordering: .relaxed)
                return replacement
            }
            let (input, relay, output) = try pipeToSocketRelay(loop, options: options)
            relay.start()
            let first = Self.pattern(3000, seed: 1), rest = Self.pattern(200_000, seed: 7)
            try await input.writeAll(first)
            var got: [UInt8] = []
            while got.count < first.count { got += try await output.read(upTo: 4096) }
            #expect(got == first)
            Self.hangUp(output)  // the host's end goes away; the next send fails (EPIPE)
            async let written: Void = { try await input.writeAll(rest); input.close() }()
            let replayed = try await replacementReader.readToEnd()
            try await written
            #expect(replayed.count == 1000 + rest.count)
            #expect(replayed == Array(first.suffix(1000)) + rest)
            let outcome = await relay.wait()
            #expect(outcome.error == nil)
            #expect(calls.load(ordering: .relaxed) == 1)
            #expect(relay.destination === replacement)
        }
    }

    @Test("a second replacement gets the tail of what was delivered, the first replay not repeated in it",
          .timeLimit(.minutes(1)))
    func replacedTwice() async throws {
        try await withLoop("relay-redial-twice") { loop in
            let second = try AsyncFD.socketPair(loop: loop), third = try AsyncFD.socketPair(loop: loop)
            let replacements = Mutex([second.0, third.0])
            var options = Relay.Options()
            options.replayBytes = 1000
            options.redial = { replacements.withLock { $0.isEmpty ? nil : $0.removeFirst() } }
            let (input, relay, output) = try pipeToSocketRelay(loop, options: options)
            relay.start()
            let first = Self.pattern(300, seed: 1), middle = Self.pattern(200, seed: 2), last = Self.pattern(100, seed: 3)
            func read(_ connection: AsyncFD, _ count: Int) async throws -> [UInt8] {
                var got: [UInt8] = []
                while got.count < count {
                    let chunk = try await connection.read(upTo: count - got.count)
                    if chunk.isEmpty { break }
                    got += chunk
                }
                return got
            }
            try await input.writeAll(first)
            #expect(try await read(output, 300) == first)
            Self.hangUp(output)
            try await input.writeAll(middle)
            #expect(try await read(second.1, 500) == first + middle)
            Self.hangUp(second.1)
            try await input.writeAll(last)
            input.close()
            #expect(try await third.1.readToEnd() == first + middle + last)
            #expect(await relay.wait().error == nil)
        }
    }

    @Test("no replacement (the re-dial stopped): the relay ends with the write's error", .timeLimit(.minutes(1)))
    func notReplaced() async throws {
        try await withLoop("relay-redial-stop") { loop in
            var options = Relay.Options()
            options.redial = { nil }
            let (input, relay, output) = try pipeToSocketRelay(loop, options: options)
            relay.start()
            Self.hangUp(output)
            try await input.writeAll(Self.pattern(100, seed: 3))
            let outcome = await relay.wait()
            #expect((outcome.error as? SyscallError).map { [EPIPE, ECONNRESET].contains($0.errno) } == true, "\(outcome)")
            input.close()
        }
    }
}
