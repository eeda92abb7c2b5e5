import Bridge
import EventLoop
import Synchronization

/// Holds a process's exit code once known and wakes every waiter, each with its own optional
/// timeout (WaitForProcess's `TimeoutInMs`) and cancellation. A timed-out or cancelled waiter is
/// removed; the others keep waiting.
final class ExitLatch: Sendable {
    private struct State {
        var code: UInt32?
        var waiters: [Int: UnsafeContinuation<UInt32, any Error>] = [:]
        var nextID = 0
        /// Waiters that received the code (the exit notification needs at least one).
        var delivered = 0
    }

    private let state = Mutex(State())

    var code: UInt32? { state.withLock { $0.code } }
    var deliveredCount: Int { state.withLock { $0.delivered } }

    /// Publishes the exit code (once) and wakes all waiters.
    func publish(_ code: UInt32) {
        let waiters = state.withLock { s -> [UnsafeContinuation<UInt32, any Error>] in
            guard s.code == nil else { return [] }
            s.code = code
            s.delivered += s.waiters.count
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: code) }
    }

    /// Waits for the exit code; `timeoutMs` nil waits forever. Throws the VMCOMPUTE timeout
    /// HRESULT when the time runs out first.
    func wait(timeoutMs: UInt32?, loop: EventLoop) async throws -> UInt32 {
        let id = state.withLock { s -> Int in s.nextID += 1; return s.nextID }
        let timer: Task<Void, Never>? = timeoutMs.map { ms in
            Task(executorPreference: loop) { [self] in
                guard (try? await loop.sleep(for: .milliseconds(Int64(ms)))) != nil else { return }
                fail(id, BridgeError(.timeout, "timed out waiting for the process to exit after \(ms) ms"))
            }
        }
        defer { timer?.cancel() }
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<UInt32, any Error>) in
                let ready = state.withLock { s -> UInt32? in
                    if let code = s.code { s.delivered += 1; return code }
                    s.waiters[id] = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            fail(id, CancellationError())
        }
    }

    private func fail(_ id: Int, _ error: any Error) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.resume(throwing: error)
    }
}
