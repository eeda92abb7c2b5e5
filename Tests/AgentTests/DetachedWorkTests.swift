@testable import Agent
import EventLoop
import Synchronization
import Testing

/// Work a request starts runs to its end; the request stops waiting once cancelled.
@Suite("Detached work", .timeLimit(.minutes(5)))
struct DetachedWorkTests {
    /// A one-shot signal between tasks (no sleeps).
    final class Signal: Sendable {
        private let stream: AsyncStream<Void>
        private let sink: AsyncStream<Void>.Continuation
        init() { (stream, sink) = AsyncStream.makeStream() }
        func fire() { sink.yield() }
        func wait() async { for await _ in stream { return } }
    }

    @Test("the work's value, when nobody cancels")
    func value() async throws {
        #expect(try await DetachedWork.run(on: .shared) { 41 + 1 } == 42)
        let task = Task<Int, any Error> { 7 }
        #expect(try await DetachedWork.outcome(of: task, on: .shared) == 7)
        await #expect(throws: CancellationError.self) {
            try await DetachedWork.outcome(of: Task<Int, any Error> { throw CancellationError() }, on: .shared)
        }
    }

    @Test("cancelled while the work runs: the caller returns at once, the work goes on to its end")
    func cancelledWhileRunning() async throws {
        let entered = Signal(), release = Signal(), finished = Signal()
        let caller = Task {
            try await DetachedWork.run(on: .shared) { () async -> Int in
                entered.fire()
                await release.wait()
                finished.fire()
                return 1
            }
        }
        await entered.wait()
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
        release.fire()
        await finished.wait()  // the work was not stopped with its caller
    }

    @Test("cancelled before it starts: the caller is told at once, the work still runs")
    func cancelledFirst() async throws {
        let finished = Signal()
        let caller = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await DetachedWork.run(on: .shared) { () async -> Int in
                finished.fire()
                return 1
            }
        }
        await #expect(throws: CancellationError.self) { try await caller.value }
        await finished.wait()
    }
}
