import Bridge
import EventLoop
import Synchronization

/// Holds a process's exit code once known and wakes every waiter, each with its own optional
/// timeout (WaitForProcess's `TimeoutInMs`) and cancellation. A timed-out or cancelled waiter is
/// removed; the others keep waiting. A waiter that received the code acknowledges it once its
/// answer went out (`acknowledge`); `answered()` is how the container's exit notification
/// waits for the host to have been told the init's exit code first (guest-behaviour §7.6).
final class ExitLatch: Sendable {
    /// Where one wait stands until it is answered (answered waits have no slot).
    private enum Slot {
        /// Begun, not yet registered its continuation.
        case begun
        case waiting(UnsafeContinuation<UInt32, any Error>)
        /// Failed (timeout, cancellation) before it registered: the registration takes the
        /// failure instead of waiting for an exit that may never come.
        case failedEarly(any Error)
    }

    private struct State {
        var code: UInt32?
        var slots: [Int: Slot] = [:]
        var nextID = 0
        /// Waiters that received the code (the exit notification needs at least one).
        var delivered = 0
        /// Of those, how many have acknowledged that their answer went out.
        var acknowledged = 0
        /// Waiting in `answered()`.
        var answerWaiters: [UnsafeContinuation<Bool, Never>] = []
        /// Waits ended by cancellation (the host went away with the request in flight).
        var cancelled = 0
        /// Every waiter that received the code has answered, and either one did or a wait was
        /// cancelled (its connection ended in a server that does not carry waits across
        /// connections, or the agent is stopping): nobody is left to ask, so the notification
        /// must not wait for an answer. A wait whose answer found no connection withdraws
        /// instead (`withdraw`): the host that comes back asks again (hcsshim probes).
        var isAnswered: Bool { acknowledged == delivered && (acknowledged > 0 || cancelled > 0) }
        /// Nobody will ask any more (the container was deleted): `answered()` returns false.
        var abandoned = false
    }

    private let state = Mutex(State())

    var code: UInt32? { state.withLock { $0.code } }
    var deliveredCount: Int { state.withLock { $0.delivered } }
    /// Whether `answered()` would return true now (diagnostics, tests).
    var isAnswered: Bool { state.withLock { $0.isAnswered } }
    /// Waits registered and waiting for the exit (diagnostics, tests).
    var waitingCount: Int {
        state.withLock { s in s.slots.values.filter { if case .waiting = $0 { true } else { false } }.count }
    }

    /// Publishes the exit code (once) and wakes all waiters. Waits not yet registered find the
    /// code when they do.
    func publish(_ code: UInt32) {
        let waiters = state.withLock { s -> [UnsafeContinuation<UInt32, any Error>] in
            guard s.code == nil else { return [] }
            s.code = code
            var waiters: [UnsafeContinuation<UInt32, any Error>] = []
            for (id, slot) in s.slots {
                if case .waiting(let continuation) = slot { waiters.append(continuation); s.slots[id] = nil }
            }
            s.delivered += waiters.count
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: code) }
    }

    /// Waits for the exit code; `timeoutMs` nil waits forever. Throws the VMCOMPUTE timeout
    /// HRESULT when the time runs out first, CancellationError when the task is cancelled, even
    /// when either happens before the wait has registered (a request cancelled at a host
    /// disconnect must not wait for the process's exit, which holds up the reconnection).
    func wait(timeoutMs: UInt32?, loop: EventLoop) async throws -> UInt32 {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            s.slots[s.nextID] = .begun
            return s.nextID
        }
        let timer: Task<Void, Never>? = timeoutMs.map { ms in
            Task(executorPreference: loop) { [self] in
                guard (try? await loop.sleep(for: .milliseconds(Int64(ms)))) != nil else { return }
                fail(id, BridgeError(.timeout, "timed out waiting for the process to exit after \(ms) ms"))
            }
        }
        defer { timer?.cancel() }
        do {
            return try await waitRegistered(id)
        } catch is CancellationError {
            noteCancelled()
            throw CancellationError()
        }
    }

    private func waitRegistered(_ id: Int) async throws -> UInt32 {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<UInt32, any Error>) in
                let ready = state.withLock { s -> Result<UInt32, any Error>? in
                    if let code = s.code { s.slots[id] = nil; s.delivered += 1; return .success(code) }
                    if case .failedEarly(let error)? = s.slots[id] { s.slots[id] = nil; return .failure(error) }
                    s.slots[id] = .waiting(continuation)
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            fail(id, CancellationError())
        }
    }

    /// A wait ended by cancellation: counted, and `answered()` callers released if that makes
    /// the exit answered (see `State.isAnswered`).
    private func noteCancelled() {
        let waiters = state.withLock { s -> [UnsafeContinuation<Bool, Never>] in
            s.cancelled += 1
            guard s.isAnswered, !s.abandoned else { return [] }
            defer { s.answerWaiters = [] }
            return s.answerWaiters
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// A waiter that received the code has answered its caller (the WaitForProcess response
    /// is written, or could not be because the host left). Once per received code.
    func acknowledge() {
        let waiters = state.withLock { s -> [UnsafeContinuation<Bool, Never>] in
            guard s.acknowledged < s.delivered else { return [] }
            s.acknowledged += 1
            guard s.isAnswered else { return [] }
            defer { s.answerWaiters = [] }
            return s.answerWaiters
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// A waiter that received the code could not pass it on (no negotiated connection): as if
    /// it had never received it, so the exit counts as answered once another waiter's answer
    /// goes out (the host that comes back asks again). Once per received code, instead of
    /// `acknowledge`.
    func withdraw() {
        let waiters = state.withLock { s -> [UnsafeContinuation<Bool, Never>] in
            guard s.acknowledged < s.delivered else { return [] }
            s.delivered -= 1
            guard s.isAnswered, !s.abandoned else { return [] }
            defer { s.answerWaiters = [] }
            return s.answerWaiters
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// The process's container was deleted: `answered()` returns false from now on (an
    /// answer that went out before has already released its callers).
    func abandonAnswer() {
        let waiters = state.withLock { s -> [UnsafeContinuation<Bool, Never>] in
            s.abandoned = true
            defer { s.answerWaiters = [] }
            return s.answerWaiters
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }

    /// Returns true once the exit code has been answered to at least one waiter and every
    /// waiter that received it has acknowledged (Go's guest: the init's waiters have all
    /// finished); false if the answer was abandoned first.
    func answered() async -> Bool {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Bool, Never>) in
            let now = state.withLock { s -> Bool? in
                if s.abandoned { return false }
                if s.isAnswered { return true }
                s.answerWaiters.append(continuation)
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// Ends wait `id` with `error`: now if it is waiting, at its registration if it has not
    /// registered yet, not at all if it has already been answered or the code is known. The
    /// first failure wins.
    private func fail(_ id: Int, _ error: any Error) {
        let waiter = state.withLock { s -> UnsafeContinuation<UInt32, any Error>? in
            switch s.slots[id] {
            case .waiting(let continuation)?:
                s.slots[id] = nil
                return continuation
            case .begun? where s.code == nil:
                s.slots[id] = .failedEarly(error)
                return nil
            default:
                return nil
            }
        }
        waiter?.resume(throwing: error)
    }
}
