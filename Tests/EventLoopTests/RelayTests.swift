import CTestSupport
import EventLoop
import Glibc
import Shims
import Testing

@Suite("Relay", .timeLimit(.minutes(5)))
struct RelayTests {
    @Test("the scratch buffer copy relays used is given back once the loop has not used it for 200 ms, not before")
    func scratchGivenBackWhenIdle() async throws {
        try await withLoop("relay-scratch") { loop in
            var options = Relay.Options()
            options.mechanism = .copy
            let (input, relay, output) = try pipeToSocketRelay(loop, options: options)
            let size = 1 << 20
            let start = ContinuousClock.now
            relay.start()
            async let produced: Void = producePattern(input, seed: 7, count: size)
            #expect(try await consumePattern(output, seed: 7) == size)
            try await produced
            _ = await relay.wait()
            // Used just now: still held, unless 180 ms had passed since before the relay's first
            // turn (its first check can come 200 ms after that), when nothing can be said. The
            // count is read before the clock, so a pause between the two cannot fail it.
            let discards = loop.scratchDiscardCount
            if ContinuousClock.now - start < .milliseconds(180) { #expect(discards == 0) }
            // The loop's own check gives it back 200-400 ms after its last use; nothing else wakes it.
            let deadline = ContinuousClock.now.advanced(by: .seconds(10))
            while loop.scratchDiscardCount == 0 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            // Once (more if a loaded machine stalled the transfer itself for 200 ms).
            #expect(loop.scratchDiscardCount >= 1)
            output.close()
        }
    }

    @Test("1 GiB from a pipe to a Unix stream socket arrives byte for byte", arguments: [RelayMechanism.automatic, .copy])
    func oneGiB(mechanism: RelayMechanism) async throws {
        try await withLoop("relay-1g") { loop in
            var options = Relay.Options()
            options.mechanism = mechanism
            let (input, relay, output) = try pipeToSocketRelay(loop, options: options)
            relay.start()
            let size = 1 << 30
            async let produced: Void = producePattern(input, seed: 42, count: size, chunk: 256 << 10)
            let got = try await consumePattern(output, seed: 42, bufferSize: 1 << 20)
            try await produced
            #expect(got == size)
            let outcome = await relay.wait()
            #expect(outcome.error == nil)
            #expect(outcome.bytes == UInt64(size))
        }
    }

    @Test("a relay whose destination never reads does not hold up 100 others")
    func stalledDestination() async throws {
        try await withLoop("relay-stall") { loop in
            let stalled = try pipeToSocketRelay(loop)
            stalled.relay.start()
            // Fill the stalled stream until its writer blocks.
            let filler = Task { try await producePattern(stalled.input, seed: 9, count: 64 << 20) }
            let others = (0..<100).map { _ in try! pipeToSocketRelay(loop) }
            for o in others { o.relay.start() }
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for (i, o) in others.enumerated() {
                    group.addTask { try await producePattern(o.input, seed: UInt64(i), count: 1 << 20); return 0 }
                    group.addTask { try await consumePattern(o.output, seed: UInt64(i)) }
                }
                var total = 0
                for try await n in group { total += n }
                return total
            }
            #expect(total == 100 << 20)
            #expect(try await eventually { stalled.relay.isBackpressured })
            #expect(!stalled.relay.isFinished)
            // Now let the stalled one through, byte-exact.
            let got = try await consumePattern(stalled.output, seed: 9)
            try await filler.value
            #expect(got == 64 << 20)
        }
    }

    @Test("a relay waiting on a descriptor that someone else closes ends, instead of waiting for an event that cannot come")
    func thirdPartyClose() async throws {
        try await withLoop("relay-closed-under") { loop in
            let (input, relay, output) = try pipeToSocketRelay(loop)
            relay.start()
            // One chunk through: the relay has had its turn and now waits for the source.
            try await input.writeAll(Array("one".utf8))
            #expect(try await output.read(upTo: 8) == Array("one".utf8))
            relay.source.close()
            // A bound only to turn a hang into a failure: after 20 s the relay is cancelled
            // (which ends its wait) and the test fails.
            let ended = await withTaskGroup(of: Bool.self) { group in
                group.addTask { _ = await relay.wait(); return true }
                group.addTask {
                    guard (try? await loop.sleep(for: .seconds(20))) != nil else { return true }
                    relay.cancel()
                    return false
                }
                let first = await group.next()!
                group.cancelAll()
                return first
            }
            #expect(ended, "the relay did not end after its source was closed")
            input.close()
            output.close()
        }
    }

    @Test("EOF on the source reaches the destination's reader as EOF, after all data")
    func halfClose() async throws {
        try await withLoop("relay-eof") { loop in
            let (input, relay, output) = try pipeToSocketRelay(loop)
            relay.start()
            try await input.writeAll(Array("last words".utf8))
            input.close()
            #expect(try await output.readToEnd() == Array("last words".utf8))
            #expect(await relay.wait().error == nil)
            // The relay's end is half-closed, not closed: the peer can still write back to it.
            try await output.writeAll(Array("ack".utf8))
            #expect(try await relay.destination.read(upTo: 8) == Array("ack".utf8))
        }
    }

    @Test("socket to pipe (stdin direction): EOF from the host closes the pipe")
    func socketToPipe() async throws {
        try await withLoop("relay-stdin") { loop in
            let (hostEnd, agentEnd) = try AsyncFD.socketPair(loop: loop)
            let (pipeRead, pipeWrite) = try asyncPipe(loop)
            let relay = Relay(from: agentEnd, to: pipeWrite)
            relay.start()
            async let produced: Void = { try await producePattern(hostEnd, seed: 5, count: 4 << 20) }()
            let got = try await consumePattern(pipeRead, seed: 5)
            try await produced
            #expect(got == 4 << 20)
            #expect(await relay.wait().bytes == UInt64(4 << 20))
        }
    }

    @Test("socket to socket goes through a private pipe and stays byte-exact")
    func socketToSocket() async throws {
        try await withLoop("relay-s2s") { loop in
            let (a1, a2) = try AsyncFD.socketPair(loop: loop)
            let (b1, b2) = try AsyncFD.socketPair(loop: loop)
            let relay = Relay(from: a2, to: b1)
            relay.start()
            async let produced: Void = producePattern(a1, seed: 11, count: 32 << 20)
            let got = try await consumePattern(b2, seed: 11)
            try await produced
            #expect(got == 32 << 20)
        }
    }

    @Test("a chatty stream (small writes) is switched to copy mode and stays byte-exact")
    func chattyAdapts() async throws {
        try await withLoop("relay-chatty") { loop in
            let (input, relay, output) = try pipeToSocketRelay(loop)
            relay.start()
            async let produced: Void = producePattern(input, seed: 8, count: 2 << 20, chunk: 512)
            let got = try await consumePattern(output, seed: 8, bufferSize: 512)
            try await produced
            #expect(got == 2 << 20)
        }
    }

    @Test("the destination's reader going away ends the relay with an error, not a hang")
    func destinationGone() async throws {
        try await withLoop("relay-epipe") { loop in
            let (input, relay, output) = try pipeToSocketRelay(loop)
            relay.start()
            output.close()
            let writer = Task { try? await producePattern(input, seed: 1, count: 16 << 20) }
            let outcome = await relay.wait()
            #expect(outcome.error != nil)
            writer.cancel()
            await writer.value
        }
    }

    @Test("a pty master is relayed with read/write and its EIO at hang-up is EOF")
    func ptySource() async throws {
        try await withLoop("relay-pty") { loop in
            var master: Int32 = -1, slave: Int32 = -1
            var name = [CChar](repeating: 0, count: 64)
            try #require(shim_open_pty(&master, &slave, &name, name.count) == 0)
            let (relayEnd, testEnd) = try AsyncFD.socketPair(loop: loop)
            let relay = Relay(from: try AsyncFD(OwnedFD(adopting: master), loop: loop), to: relayEnd)
            relay.start()
            let text = "hello from the tty\n"
            _ = text.withCString { Glibc.write(slave, $0, strlen($0)) }
            Glibc.close(slave)
            let got = try await testEnd.readToEnd()
            #expect(String(decoding: got, as: UTF8.self) == "hello from the tty\r\n")  // ONLCR
            #expect(await relay.wait().error == nil)
            #expect(relay.mechanismDescription == "copy")
        }
    }
}
