import CTestSupport
import EventLoop
import Glibc
import Shims
import Testing

/// The descriptor-hungry tests, serialised so that together they stay under RLIMIT_NOFILE.
@Suite("Scale", .serialized, .timeLimit(.minutes(5)))
struct ScaleTests {
    @Test("10,000 socket pairs registered at once each echo a message; every fd is closed after")
    func tenThousandEchoes() async throws {
        // 10,000 pairs need 20,000 descriptors; where the hard limit is lower and cannot be
        // raised (no CAP_SYS_RESOURCE), use as many pairs as fit and say so.
        // The other suites run in this process at the same time (the end-to-end ones hold up to
        // ~1,500 descriptors at once), so leave them 3,000.
        _ = shim_raise_nofile(20_000 + 3_000)
        let count = min(10_000, (Int(shim_nofile_limit()) - 3_000) / 2)
        if count < 10_000 { print("scale: RLIMIT_NOFILE \(shim_nofile_limit()) allows \(count) socket pairs") }
        #expect(count >= 8_500)
        try await withLoop("echo") { loop in
            var pairs: [(AsyncFD, AsyncFD)] = []
            pairs.reserveCapacity(count)
            for _ in 0..<count { pairs.append(try AsyncFD.socketPair(loop: loop)) }
            let allInodes = inodes(pairs.flatMap { [$0.0, $0.1] })
            #expect(openCount(allInodes) == 2 * count)

            let echoed = try await withThrowingTaskGroup(of: Int.self) { group in
                for (index, (a, b)) in pairs.enumerated() {
                    group.addTask {
                        let message = Array("message \(index) through the reactor".utf8)
                        try await a.writeAll(message)
                        // b echoes what it reads
                        var received: [UInt8] = []
                        while received.count < message.count { received += try await b.read(upTo: 256) }
                        try await b.writeAll(received)
                        var back: [UInt8] = []
                        while back.count < message.count {
                            let chunk = try await a.read(upTo: 256)
                            if chunk.isEmpty { break }
                            back += chunk
                        }
                        return back == message ? message.count : -1
                    }
                }
                var total = 0
                for try await n in group { total += n }
                return total
            }
            let expected = (0..<count).reduce(0) { $0 + "message \($1) through the reactor".utf8.count }
            #expect(echoed == expected)
            for (a, b) in pairs { a.close(); b.close() }
            pairs.removeAll()
            #expect(openCount(allInodes) == 0)
        }
    }

    @Test("1,000 concurrent relays of 1 MiB each all arrive intact; descriptors closed after")
    func thousandRelays() async throws {
        #expect(shim_raise_nofile(8_192) == 0)
        try await withLoop("relay-1000") { loop in
            let count = 1000, size = 1 << 20
            var streams: [(input: AsyncFD, relay: Relay, output: AsyncFD)] = []
            for _ in 0..<count { streams.append(try pipeToSocketRelay(loop)) }
            let watched = inodes(streams.flatMap { [$0.input, $0.relay.source, $0.relay.destination, $0.output] })
            for s in streams { s.relay.start() }
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for (i, s) in streams.enumerated() {
                    group.addTask { try await producePattern(s.input, seed: UInt64(i), count: size); return 0 }
                    group.addTask { try await consumePattern(s.output, seed: UInt64(i)) }
                }
                var total = 0
                for try await n in group { total += n }
                return total
            }
            #expect(total == count * size)
            for s in streams {
                let outcome = await s.relay.wait()
                #expect(outcome.error == nil && outcome.bytes == UInt64(size))
                s.output.close()
                s.relay.destination.close()
            }
            streams.removeAll()
            #expect(openCount(watched) == 0)
        }
    }

}
