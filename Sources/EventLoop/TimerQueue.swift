import HeapModule
import Synchronization

/// The loop's timers: a min-heap of deadlines with lazy cancellation. Loop thread only.
struct TimerQueue {
    struct Entry: Comparable {
        var deadline: Int64
        var id: UInt64
        static func < (a: Entry, b: Entry) -> Bool { (a.deadline, a.id) < (b.deadline, b.id) }
    }

    private var heap = Heap<Entry>()
    private var actions: [UInt64: () -> Void] = [:]
    private var nextID: UInt64 = 1

    var isEmpty: Bool { actions.isEmpty }

    mutating func schedule(at deadline: Int64, _ action: @escaping () -> Void) -> UInt64 {
        let id = nextID
        nextID += 1
        heap.insert(Entry(deadline: deadline, id: id))
        actions[id] = action
        return id
    }

    /// Cancels a timer; returns its action if it had not fired yet. Its heap entry stays until
    /// it reaches the top, unless cancelled entries come to outnumber live ones: then the heap is
    /// rebuilt from the live ones, so timers cancelled long before their deadline (a wait with
    /// a timeout of days that ended early) cannot pile up.
    mutating func cancel(_ id: UInt64) -> (() -> Void)? {
        let action = actions.removeValue(forKey: id)
        if heap.count > 64 && heap.count > 2 * actions.count {
            heap = Heap(heap.unordered.filter { actions[$0.id] != nil })
        }
        return action
    }

    /// Entries in the heap, cancelled ones included (tests).
    var heapCount: Int { heap.count }

    /// Milliseconds epoll may sleep: -1 without timers, rounded up so we never wake early.
    mutating func millisecondsUntilNext(now: Int64) -> Int32 {
        while let top = heap.min, actions[top.id] == nil { _ = heap.removeMin() }
        guard let top = heap.min else { return -1 }
        let delta = top.deadline - now
        if delta <= 0 { return 0 }
        return Int32(clamping: (delta + 999_999) / 1_000_000)
    }

    mutating func fireDue(now: Int64) {
        while let top = heap.min, top.deadline <= now {
            _ = heap.removeMin()
            if let action = actions.removeValue(forKey: top.id) { action() }
        }
    }
}

extension EventLoop {
    /// Suspends the calling task for `duration`, measured on the monotonic clock by the loop.
    /// Cancellation resumes it at once with `CancellationError`.
    public func sleep(for duration: Duration) async throws {
        let (seconds, attoseconds) = duration.components
        let nanos = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        try await sleep(untilNanoseconds: monotonicNanoseconds() + nanos)
    }

    /// Suspends until the monotonic clock (CLOCK_MONOTONIC, nanoseconds) reaches `deadline`.
    public func sleep(untilNanoseconds deadline: Int64) async throws {
        let state = TimerWait()
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                guard state.install(continuation) else { return }
                execute { [self] in
                    let id = timers.schedule(at: deadline) { _ = state.finish(nil) }
                    if !state.setTimer(id) { _ = timers.cancel(id) }
                }
            }
        } onCancel: {
            if let id = state.finish(CancellationError()) {
                execute { [self] in _ = timers.cancel(id) }
            }
        }
    }

    /// The current CLOCK_MONOTONIC time in nanoseconds (the clock the loop's timers use).
    public static var now: Int64 { monotonicNanoseconds() }
}

/// One sleeping task: resumed exactly once, by the timer or by cancellation, whichever is first.
final class TimerWait: Sendable {
    private struct State {
        var continuation: UnsafeContinuation<Void, any Error>?
        var done = false
        var timerID: UInt64?
    }
    private let state = Mutex(State())

    /// Stores the continuation; false (and resumed) when cancelled already.
    func install(_ continuation: UnsafeContinuation<Void, any Error>) -> Bool {
        let cancelled = state.withLock { s -> Bool in
            if s.done || Task.isCancelled { s.done = true; return true }
            s.continuation = continuation
            return false
        }
        if cancelled { continuation.resume(throwing: CancellationError()) }
        return !cancelled
    }

    /// Records the timer; false when the wait already ended (the caller cancels the timer).
    func setTimer(_ id: UInt64) -> Bool {
        state.withLock { s in
            if s.done { return false }
            s.timerID = id
            return true
        }
    }

    /// Resumes the task unless already done; returns the timer to cancel, if one is pending.
    @discardableResult
    func finish(_ error: (any Error)?) -> UInt64? {
        let (continuation, timer) = state.withLock { s -> (UnsafeContinuation<Void, any Error>?, UInt64?) in
            if s.done { return (nil, nil) }
            s.done = true
            defer { s.continuation = nil }
            return (s.continuation, s.timerID)
        }
        guard let continuation else { return nil }
        if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        return error == nil ? nil : timer
    }
}
