import EventLoop
import Synchronization

/// Work a request starts that must run to its end even when the request is cancelled (a host
/// disconnect cancels every request in flight), while the request itself stops waiting at once.
///
/// Why: a create or an exec stopped half-way would leave a runc container, or a running
/// process, that the agent no longer tracks; so it goes on in a task of its own. But the bridge
/// connection that carried the request ends only once all of its handlers have returned, and
/// the agent re-dials the host, stops on SIGTERM or powers the VM off only after that: a
/// handler that waited for a slow `runc create` (an OCI hook that hangs) would hold all of them.
/// Go's guest, whose handlers are goroutines, re-dials at once too.
enum DetachedWork {
    /// Runs `body` on `loop` to its end; returns its outcome, or throws CancellationError as
    /// soon as the calling task is cancelled (`body` goes on). No task more than the work's own.
    static func run<T: Sendable>(on loop: EventLoop, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = Outcome<T>()
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                outcome.install(continuation)
                Task(executorPreference: loop) {
                    do { outcome.resume(with: .success(try await body())) } catch { outcome.resume(with: .failure(error)) }
                }
            }
        } onCancel: {
            outcome.resume(with: .failure(CancellationError()))
        }
    }

    /// `task`'s outcome, or CancellationError as soon as the calling task is cancelled (`task`
    /// goes on). One task more, to wait for `task`.
    static func outcome<T: Sendable>(of task: Task<T, any Error>, on loop: EventLoop) async throws -> T {
        let outcome = Outcome<T>()
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                outcome.install(continuation)
                Task(executorPreference: loop) { outcome.resume(with: await task.result) }
            }
        } onCancel: {
            outcome.resume(with: .failure(CancellationError()))
        }
    }

    /// Resumes one continuation once, with the first of the work's result and a cancellation,
    /// whichever comes first, and whether it comes before or after the continuation is there.
    private final class Outcome<T: Sendable>: Sendable {
        private enum State {
            case empty
            case waiting(UnsafeContinuation<T, any Error>)
            case early(Result<T, any Error>)
            case resumed
        }
        private let state = Mutex<State>(.empty)

        func install(_ continuation: UnsafeContinuation<T, any Error>) {
            let early = state.withLock { s -> Result<T, any Error>? in
                if case .early(let result) = s { s = .resumed; return result }
                s = .waiting(continuation)
                return nil
            }
            if let early { continuation.resume(with: early) }
        }

        func resume(with result: Result<T, any Error>) {
            let continuation = state.withLock { s -> UnsafeContinuation<T, any Error>? in
                switch s {
                case .empty: s = .early(result); return nil
                case .waiting(let continuation): s = .resumed; return continuation
                case .early, .resumed: return nil
                }
            }
            continuation?.resume(with: result)
        }
    }
}
