@testable import EventLoop
import Glibc
import Testing

/// Write readiness is asked of epoll only once something waits for it: a request/response
/// socket must not wake its loop each time the peer reads what it wrote.
@Suite("Write interest", .timeLimit(.minutes(5)))
struct WriteInterestTests {
    @Test("a socket written without blocking takes no readiness event when its peer reads; a full one still resumes when drained",
          .timeLimit(.minutes(1)))
    func writeInterestOnDemand() async throws {
        try await withLoop("write-interest") { loop in
            let (a, b) = try AsyncFD.socketPair(loop: loop)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 8)
            defer { buffer.deallocate() }

            // Request/response traffic: every write goes straight in.
            for round in 0..<20 {
                try await a.writeAll(Array("request \(round)".utf8))
                _ = try await b.read(into: buffer)
            }
            // A closure queued now runs after the loop's next turn, in which it usually has
            // handled the edges the reads caused (with the old registration this saw 13 of 20).
            await loop.run {}
            let idle = a.registration.state.withLock { ($0.writeEpoch, $0.watchingWrites) }
            #expect(idle == (0, false))

            // Fill the socket; a write that must wait resumes once the peer drains it.
            let chunk = [UInt8](repeating: 7, count: 64 << 10)
            var queued = 0
            while let n = try chunk.withUnsafeBytes({ try a.tryWrite($0) }) { queued += n }
            let tail = [UInt8](repeating: 9, count: 100_000)
            let writer = Task { try await a.writeAll(tail) }
            // The writer is parked on write readiness before anything drains (bounded, no sleeping).
            await turn(loop, until: { a.registration.state.withLock { $0.writeWaiter != nil } })
            let parked = a.registration.state.withLock { ($0.writeWaiter != nil, $0.watchingWrites) }
            #expect(parked == (true, true))
            var drained = 0
            while drained < queued { drained += try await b.read(into: buffer) }
            try await writer.value
            while drained < queued + tail.count { drained += try await b.read(into: buffer) }
            #expect(drained == queued + tail.count)
            a.close(); b.close()
        }
    }

    @Test("a relay whose destination keeps up never asks for its write readiness", .timeLimit(.minutes(1)),
          arguments: [RelayMechanism.copy, .automatic])
    func relayWatchesDestinationOnlyWhenFull(mechanism: RelayMechanism) async throws {
        try await withLoop("write-interest-relay") { loop in
            // Socket to socket, as a tty's output (copy) or a bridge-like stream (splice through
            // the relay's private pipe): a wait there is always on the source.
            let (writer, source) = try AsyncFD.socketPair(loop: loop)
            let (destination, reader) = try AsyncFD.socketPair(loop: loop)
            var options = Relay.Options()
            options.mechanism = mechanism
            let relay = Relay(from: source, to: destination, options: options)
            relay.start()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { buffer.deallocate() }
            for line in 0..<50 {
                let text = Array("line \(line)\n".utf8)
                try await writer.writeAll(text)
                var got = 0
                while got < text.count { got += try await reader.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[got...])) }
                #expect(Array(buffer[..<got]) == text)
            }
            writer.close()
            #expect(await relay.wait().error == nil)
            let state = destination.registration.state.withLock { ($0.writeEpoch, $0.watchingWrites) }
            #expect(state == (0, false))
            destination.close(); reader.close()
        }
    }

    @Test("a write-only registration of a shared descriptor is not woken by its input", .timeLimit(.minutes(1)))
    func writeOnlyRegistration() async throws {
        try await withLoop("write-only") { loop in
            // As a pty master's input descriptor: the same socket is read through `a`.
            let (a, b) = try AsyncFD.socketPair(loop: loop)
            let writer = try AsyncFD(OwnedFD(adopting: dup(a.rawValue)), loop: loop, writeOnly: true)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { buffer.deallocate() }
            for round in 0..<5 {
                // `a` waits for the output, so the loop handles its edge; `writer`'s edge, if it
                // had read interest, comes in the same epoll_wait batch, handled before the
                // closure queued after the read (loop.run) runs.
                let reading = Task { try await a.read(upTo: 64) }
                await turn(loop, until: { a.registration.state.withLock { $0.readWaiter != nil } })
                let text = Array("output \(round)".utf8)
                try await b.writeAll(text)
                #expect(try await reading.value == text)
                await loop.run {}
                try await writer.writeAll(Array("input \(round)".utf8))
                _ = try await b.read(into: buffer)
            }
            let edges = writer.registration.state.withLock { $0.readEpoch }
            #expect(edges == 0)
            writer.close(); a.close(); b.close()
        }
    }

    @Test("a write wait armed when the socket is already writable again resumes at once", .timeLimit(.minutes(1)))
    func armingSeesCurrentReadiness() async throws {
        try await withLoop("write-interest-arm") { loop in
            let (a, b) = try AsyncFD.socketPair(loop: loop)
            let chunk = [UInt8](repeating: 1, count: 64 << 10)
            var queued = 0
            while let n = try chunk.withUnsafeBytes({ try a.tryWrite($0) }) { queued += n }
            let (epoch, watching) = a.registration.state.withLock { ($0.writeEpoch, $0.watchingWrites) }
            #expect(!watching)  // so the wait below is the one that arms it
            // Drained between the EAGAIN and the wait: no edge was ever asked for, yet the wait
            // must not hang (epoll re-checks the descriptor when write interest is added).
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 8)
            defer { buffer.deallocate() }
            var drained = 0
            while drained < queued { drained += try await b.read(into: buffer) }
            try await a.registration.waitWritable(after: epoch)
            a.close(); b.close()
        }
    }
}
