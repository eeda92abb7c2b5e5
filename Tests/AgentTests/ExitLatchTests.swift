@testable import Agent
import Bridge
import EventLoop
import Synchronization
import Testing

@Suite("Exit latch", .timeLimit(.minutes(5)))
struct ExitLatchTests {
    private func outcome(_ latch: ExitLatch, timeoutMs: UInt32?) async -> Result<UInt32, any Error> {
        do { return .success(try await latch.wait(timeoutMs: timeoutMs, loop: .shared)) } catch { return .failure(error) }
    }

    @Test("a wait cancelled before it registers ends with CancellationError, not at the exit", .timeLimit(.minutes(1)))
    func cancelledBeforeRegistering() async {
        let latch = ExitLatch()
        let result = await withTaskGroup(of: Result<UInt32, any Error>.self) { group in
            group.cancelAll()  // a task added now starts cancelled: its cancel handler runs first
            group.addTask { await outcome(latch, timeoutMs: nil) }
            return await group.next()!
        }
        guard case .failure(let error) = result else { Issue.record("got \(result)"); return }
        #expect(error is CancellationError)
        latch.publish(0)  // nothing left waiting
    }

    @Test("a zero timeout ends the wait with the timeout HRESULT", .timeLimit(.minutes(1)))
    func zeroTimeout() async {
        let latch = ExitLatch()
        for _ in 0..<50 {  // the timer may fire before or after the wait registers
            guard case .failure(let error) = await outcome(latch, timeoutMs: 0) else { Issue.record("no timeout"); return }
            #expect((error as? BridgeError)?.hresult == .timeout)
        }
    }

    @Test("every waiter gets the code, whether it registered before or after the publish", .timeLimit(.minutes(1)))
    func publish() async throws {
        let latch = ExitLatch()
        async let early = outcome(latch, timeoutMs: nil)
        async let timed = outcome(latch, timeoutMs: 60_000)
        while latch.waitingCount < 2 { await Task.yield() }  // both registered before the publish
        latch.publish(7)
        latch.publish(9)  // only the first code counts
        #expect(try await early.get() == 7)
        #expect(try await timed.get() == 7)
        #expect(try await outcome(latch, timeoutMs: 0).get() == 7)
        #expect(latch.deliveredCount == 3)
    }

    @Test("answered() returns once every waiter that got the code has acknowledged, and not before one has", .timeLimit(.minutes(1)))
    func answered() async throws {
        let latch = ExitLatch()
        let done = Mutex(false)
        let watcher = Task {
            #expect(await latch.answered())
            done.withLock { $0 = true }
        }
        latch.publish(3)
        #expect(try await outcome(latch, timeoutMs: nil).get() == 3)
        #expect(try await outcome(latch, timeoutMs: nil).get() == 3)
        latch.acknowledge()
        #expect(!latch.isAnswered)  // the second answer has not gone out
        latch.acknowledge()
        latch.acknowledge()  // more acknowledgements than codes received change nothing
        await watcher.value
        #expect(done.withLock { $0 })
        #expect(await latch.answered())  // later calls return at once
        latch.abandonAnswer()  // a delete: later callers (a notification not yet sent) get false
        #expect(await latch.answered() == false)
    }

    @Test("a wait lost to a disconnect (cancelled) lets answered() return at the exit without a new answer", .timeLimit(.minutes(1)))
    func cancelledWaitReleases() async {
        let latch = ExitLatch()
        let waiting = Task { await outcome(latch, timeoutMs: nil) }
        while latch.waitingCount < 1 { await Task.yield() }  // lost while waiting, not before
        waiting.cancel()
        guard case .failure(let error) = await waiting.value else { Issue.record("the wait was not cancelled"); return }
        #expect(error is CancellationError)
        latch.publish(137)
        #expect(await latch.answered())
    }

    @Test("a withdrawn answer (no connection) does not count: answered() returns once a later wait's answer goes out", .timeLimit(.minutes(1)))
    func withdrawn() async throws {
        let latch = ExitLatch()
        let done = Mutex(false)
        let watcher = Task {
            #expect(await latch.answered())
            done.withLock { $0 = true }
        }
        latch.publish(137)
        #expect(try await outcome(latch, timeoutMs: nil).get() == 137)
        latch.withdraw()  // the carried wait's answer found no connection
        latch.withdraw()  // more withdrawals than codes received change nothing
        #expect(latch.deliveredCount == 0)
        #expect(!latch.isAnswered)
        #expect(try await outcome(latch, timeoutMs: 50).get() == 137)  // the host's probe
        #expect(!latch.isAnswered)  // not until its answer went out
        latch.acknowledge()
        await watcher.value
        #expect(done.withLock { $0 })
    }

    @Test("an abandoned answer ends answered() with false, also for later calls", .timeLimit(.minutes(1)))
    func abandoned() async {
        let latch = ExitLatch()
        let watcher = Task { await latch.answered() }
        latch.publish(1)
        latch.abandonAnswer()
        #expect(await watcher.value == false)
        #expect(await latch.answered() == false)
    }
}
