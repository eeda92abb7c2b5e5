import CTestSupport
@testable import EventLoop
import Glibc
import Shims
import Synchronization
import Testing

@Suite("Reactor", .timeLimit(.minutes(5)))
struct ReactorTests {
    @Test("after a burst of queued work the loop runs all of it and gives the queues back when idle",
          .timeLimit(.minutes(1)))
    func queueShrinksAfterBurst() async throws {
        try await withLoop("queue-shrink") { loop in
            let ran = Mutex(0)
            let before = loop.queueShrinkCount
            // Queued from the loop thread itself, so all 2,000 land in one batch.
            await loop.run {
                for _ in 0..<2000 { loop.execute { ran.withLock { $0 += 1 } } }
            }
            await loop.run {}  // queued after the burst: runs after all of it
            #expect(ran.withLock { $0 } == 2000)
            // The shrink happens when the loop next finds nothing to do; each round trip gives
            // it that chance (bounded, no sleeping).
            await turn(loop, until: { loop.queueShrinkCount != before }, rounds: 10_000)
            #expect(loop.queueShrinkCount == before + 1)
            // Still serving after the shrink.
            await loop.run { ran.withLock { $0 += 1 } }
            #expect(ran.withLock { $0 } == 2001)
        }
    }

    @Test("a cancelled read wait resumes promptly and the fd stays usable")
    func cancelRead() async throws {
        try await withLoop("cancel-read") { loop in
            let (a, b) = try AsyncFD.socketPair(loop: loop)
            let task = Task { try await a.read(upTo: 16) }
            await turn(loop, until: { a.registration.state.withLock { $0.readWaiter != nil } })
            try #require(a.registration.state.withLock { $0.readWaiter != nil }, "the read never parked")
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            // still usable
            try await b.writeAll(Array("ok".utf8))
            #expect(try await a.read(upTo: 16) == Array("ok".utf8))
        }
    }

    @Test("stream reads: after a short read the next waits for data; EOF and hang-up still arrive",
          .timeLimit(.minutes(1)))
    func streamReads() async throws {
        try await withLoop("stream-reads") { loop in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
            defer { buffer.deallocate() }
            let (a, b) = try AsyncFD.socketPair(loop: loop)
            try await b.writeAll(Array("abc".utf8))
            #expect(try await a.readStream(into: buffer) == 3)  // short: the queue is empty now
            try await b.writeAll(Array("de".utf8))
            #expect(try await a.readStream(into: buffer) == 2)  // the new data's edge wakes it
            #expect(Array(buffer[..<2]) == Array("de".utf8))

            // Data then EOF, both seen by the loop before the first read: the EOF comes with no
            // further edge, and must still be read.
            try await b.writeAll(Array("xyz".utf8))
            try b.shutdownWrite()
            await loop.run {}  // the loop has handled the edges by the time this runs
            #expect(try await a.readStream(into: buffer) == 3)
            #expect(try await a.readStream(into: buffer) == 0)

            // The peer closing after a short read.
            let (c, d) = try AsyncFD.socketPair(loop: loop)
            try await d.writeAll(Array("q".utf8))
            #expect(try await c.readStream(into: buffer) == 1)
            d.close()
            #expect(try await c.readStream(into: buffer) == 0)
            a.close(); b.close(); c.close()
        }
    }

    @Test("stream reads where a short read does not mean empty (one message per read, as hv_sock's one packet) read on",
          .timeLimit(.minutes(1)))
    func streamReadsPerMessage() async throws {
        try await withLoop("stream-reads-packets") { loop in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
            defer { buffer.deallocate() }
            var fds: [Int32] = [-1, -1]
            #expect(shim_socketpair(Int32(SOCK_SEQPACKET.rawValue), &fds) == 0)
            let a = try AsyncFD(OwnedFD(adopting: fds[0]), loop: loop)
            let b = try AsyncFD(OwnedFD(adopting: fds[1]), loop: loop)
            try await b.writeAll(Array("abc".utf8))
            try await b.writeAll(Array("de".utf8))
            await loop.run {}  // both messages' edges are handled: no further edge will come
            #expect(try await a.readStream(into: buffer) == 3)  // short, with a message queued
            #expect(try await a.readStream(into: buffer) == 2)  // read, not waited for
            #expect(Array(buffer[..<2]) == Array("de".utf8))
            a.close(); b.close()
        }
    }

    @Test("tryRead: nil with nothing to read, the bytes when there are, 0 at end of file")
    func tryRead() async throws {
        try await withLoop("try-read") { loop in
            let (a, b) = try AsyncFD.socketPair(loop: loop)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 8)
            defer { buffer.deallocate() }
            #expect(try b.tryRead(into: buffer) == nil)
            try await a.writeAll(Array("abc".utf8))
            #expect(try b.tryRead(into: buffer) == 3)
            #expect(try b.tryRead(into: buffer) == nil)
            a.close()
            #expect(try b.tryRead(into: buffer) == 0)
            b.close()
        }
    }

    @Test("a cancelled write wait (socket full) resumes promptly and the fd stays usable")
    func cancelWrite() async throws {
        try await withLoop("cancel-write") { loop in
            let (a, b) = try AsyncFD.socketPair(loop: loop)
            let chunk = [UInt8](repeating: 7, count: 64 << 10)
            var queued = 0
            while let n = try chunk.withUnsafeBytes({ try a.tryWrite($0) }) { queued += n }
            #expect(queued > 0)
            let task = Task { try await a.waitWritable() }
            await turn(loop, until: { a.registration.state.withLock { $0.writeWaiter != nil } })
            try #require(a.registration.state.withLock { $0.writeWaiter != nil }, "the write wait never parked")
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            // drain the peer, then the writer can write again
            let drain = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 8)
            defer { drain.deallocate() }
            var drained = 0
            while drained < queued { drained += try await b.read(into: drain) }
            try await a.writeAll(Array("more".utf8))
            let n = try await b.read(into: drain)
            #expect(n == 4)
        }
    }

    @Test("a cancelled accept resumes promptly and the listener still accepts")
    func cancelAccept() async throws {
        try await withLoop("cancel-accept") { loop in
            let path = "/tmp/gcs-test-accept-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let listener = try UnixListener(path: path, loop: loop)
            defer { listener.close() }
            let task = Task { try await listener.accept() }
            let registration = listener.socket.registration
            await turn(loop, until: { registration.state.withLock { $0.readWaiter != nil } })
            try #require(registration.state.withLock { $0.readWaiter != nil }, "the accept never parked")
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            async let client = UnixSocket.connect(path: path, loop: loop)
            let server = try await listener.accept()
            let c = try await client
            try await c.writeAll(Array("hi".utf8))
            #expect(try await server.read(upTo: 8) == Array("hi".utf8))
        }
    }

    @Test("close() wakes a waiter with .closed, is idempotent, and never closes a reused fd")
    func closeExactlyOnce() async throws {
        try await withLoop("close") { loop in
            // The closed number is taken at once with F_DUPFD (the lowest free number from it);
            // another test's descriptor could take it first, so the attempt is made again then.
            for attempt in 1...5 {
                let (a, b) = try AsyncFD.socketPair(loop: loop)
                defer { b.close() }
                let waiter = Task { try await a.waitReadable() }
                await turn(loop, until: { a.registration.state.withLock { $0.readWaiter != nil } })
                let oldNumber = a.rawValue
                a.close()
                let holder = fcntl(b.rawValue, F_DUPFD_CLOEXEC, oldNumber)
                await #expect(throws: EventLoopError.closed) { try await waiter.value }
                guard holder == oldNumber else {
                    if holder >= 0 { Glibc.close(holder) }
                    if attempt == 5 { Issue.record("fd \(oldNumber) was taken by others five times: reuse not tested") }
                    continue
                }
                a.close()
                a.close()
                #expect(fcntl(holder, F_GETFD) >= 0, "fd \(holder) was closed by a second close of its old owner")
                Glibc.close(holder)
                await #expect(throws: EventLoopError.closed) { _ = try await a.read(upTo: 4) }
                return
            }
        }
    }

    @Test("timers fire in the order of their deadlines, not of their scheduling")
    func timerOrder() async throws {
        try await withLoop("timer-order") { loop in
            // On the loop's own thread: the wake-ups run in the order the loop fires them.
            let order = try await withThrowingTaskGroup(of: Int.self) { group in
                for (index, ms) in [(0, 60), (1, 20), (2, 40)] {
                    group.addTask(executorPreference: loop) {
                        try await loop.sleep(for: .milliseconds(ms))
                        return index
                    }
                }
                var order: [Int] = []
                for try await index in group { order.append(index) }
                return order
            }
            #expect(order == [1, 2, 0])
        }
    }

    @Test("a sleep lasts at least its duration; a cancelled sleep ends promptly")
    func timers() async throws {
        try await withLoop("timers") { loop in
            let start = EventLoop.now
            try await loop.sleep(for: .milliseconds(30))
            #expect(EventLoop.now - start >= 30_000_000)
            let task = Task { try await loop.sleep(for: .seconds(3600)) }
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
        }
    }

    @Test("actors run on the loop as their executor and task executor")
    func executorConformance() async throws {
        try await withLoop("executor") { loop in
            actor Counter {
                let loop: EventLoop
                var value = 0
                nonisolated var unownedExecutor: UnownedSerialExecutor { loop.serialExecutor.asUnownedSerialExecutor() }
                init(loop: EventLoop) { self.loop = loop }
                func bump() -> Bool { value += 1; return loop.inLoop }
            }
            let counter = Counter(loop: loop)
            #expect(await counter.bump())
            let onLoop = await withTaskExecutorPreference(loop) { loop.inLoop }
            #expect(onLoop)
        }
    }

    @Test("the epoll-only path works when io_uring is unavailable (forced fallback)")
    func epollFallback() async throws {
        try await withLoop("no-uring", useUring: false) { loop in
            #expect(loop.uring == nil)
            let (input, relay, output) = try pipeToSocketRelay(loop)
            relay.start()
            async let produced: Void = producePattern(input, seed: 3, count: 8 << 20)
            let got = try await consumePattern(output, seed: 3)
            try await produced
            #expect(got == 8 << 20)
            #expect(await relay.wait().error == nil)
        }
        try await withLoop("no-uring-splice", useUring: false) { loop in
            let pipe = try Pipes.make(nonBlocking: false)
            await #expect(throws: SyscallError.self) {
                _ = try await loop.uringSplice(from: pipe.first.rawValue, to: pipe.second.rawValue, length: 1)
            }
        }
    }

    @Test("io_uring, when the kernel allows it, completes submissions through the loop")
    func uringSplice() async throws {
        try await withLoop("uring") { loop in
            guard loop.uring != nil else {
                // Disabled on this machine (sysctl, seccomp or kernel): the reason is recorded.
                #expect(Uring.unavailableReason != nil)
                return
            }
            let source = try Pipes.make(nonBlocking: false)
            let (relayEnd, testEnd) = try AsyncFD.socketPair(loop: loop)
            let message = Array("through the ring".utf8)
            #expect(message.withUnsafeBytes { Glibc.write(source.second.rawValue, $0.baseAddress, $0.count) } == message.count)
            let moved = try await loop.uringSplice(from: source.first.rawValue, to: relayEnd.rawValue, length: 4096)
            #expect(moved == message.count)
            #expect(try await testEnd.read(upTo: 64) == message)
        }
    }
}
