import EventLoop
import Glibc
import Synchronization
import Testing

/// `Relay.Options.redial`: output that outlives its destination's peer (a host reconnect).
@Suite("Relay re-dial")
struct RelayRedialTests {
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
            output.close()  // the host's end goes away; the next send fails (EPIPE)
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

    @Test("no replacement (the re-dial stopped): the relay ends with the write's error", .timeLimit(.minutes(1)))
    func notReplaced() async throws {
        try await withLoop("relay-redial-stop") { loop in
            var options = Relay.Options()
            options.redial = { nil }
            let (input, relay, output) = try pipeToSocketRelay(loop, options: options)
            relay.start()
            output.close()
            try await input.writeAll(Self.pattern(100, seed: 3))
            let outcome = await relay.wait()
            #expect((outcome.error as? SyscallError).map { [EPIPE, ECONNRESET].contains($0.errno) } == true, "\(outcome)")
            input.close()
        }
    }
}
