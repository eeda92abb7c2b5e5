import Glibc
import Shims
import Synchronization

/// The one place that reaps child processes in a daemon that is PID 1's helper or a child
/// subreaper (the agent): SIGCHLD arrives through a handler and a self-pipe on the loop, every exited child is
/// reaped with `waitid(P_ALL)`, and its status goes to whoever waits for that pid. Exits of pids
/// nobody waits for yet (a container's init re-parented to us after `runc create` exits, or a
/// process that exits before its owner registered) are kept, up to `unclaimedLimit`, so a later
/// `wait(pid:)` still gets the status.
///
/// Only one Reaper may exist per process, and nothing else may wait for children meanwhile
/// (`ChildProcess.wait()` is for programs without a Reaper).
public final class Reaper: Sendable {
    private struct State {
        var waiters: [pid_t: [UnsafeContinuation<ExitStatus, Never>]] = [:]
        var unclaimed: [pid_t: ExitStatus] = [:]
        var unclaimedOrder: [pid_t] = []
        var reaped: UInt64 = 0
    }

    public static let unclaimedLimit = 4096
    private let state = Mutex(State())
    private let signals: SignalSource
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    /// Starts reaping on `loop`. `subreaper`: become the child subreaper, so that orphaned
    /// descendants (container processes) are re-parented to this process and reaped here.
    /// SIGCHLD is taken with a handler (no signal mask needs to be set anywhere); a burst of
    /// exits that coalesces into one SIGCHLD is fully reaped because every wake-up reaps until
    /// no exited child is left.
    public init(loop: EventLoop = .shared, subreaper: Bool = true) async throws {
        if subreaper { _ = try sys("prctl(PR_SET_CHILD_SUBREAPER)") { shim_set_child_subreaper() } }
        signals = try await SignalSource(signals: [SIGCHLD], mechanism: .handler, loop: loop)
        let signals = self.signals
        task.withLock { slot in
            slot = Task(executorPreference: loop) { [weak self] in
                while true {
                    self?.reapAll()
                    guard (try? await signals.drain()) != nil else { return }
                }
            }
        }
    }

    /// Stops reaping.
    public func stop() {
        signals.close()
        task.withLock { $0?.cancel() }
    }

    /// Waits for `pid` to exit (returns at once if it already did and was not yet claimed).
    public func wait(pid: pid_t) async -> ExitStatus {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<ExitStatus, Never>) in
            let done = state.withLock { s -> ExitStatus? in
                if let status = s.unclaimed.removeValue(forKey: pid) {
                    s.unclaimedOrder.removeAll { $0 == pid }
                    // A kept exit is of an earlier process with this pid when the pid is our
                    // child again now (reused after a wrap, while orphans' exits were kept):
                    // wait for the new one.
                    if shim_is_child(pid) == 0 { return status }
                }
                s.waiters[pid, default: []].append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// SIGKILLs `pid`, a child whose set-up failed after it was started and that nobody will
    /// wait for (its exit then stays unclaimed), unless the Reaper already has its exit: the
    /// pid may belong to another process by then. Returns whether it sent the signal.
    /// Safe against a reaping in between only on the loop thread, which is where reaping runs.
    @discardableResult
    public func killUnclaimed(_ pid: pid_t) -> Bool {
        guard state.withLock({ $0.unclaimed[pid] == nil }) else { return false }
        return Glibc.kill(pid, SIGKILL) == 0
    }

    /// Children reaped so far (diagnostics).
    public var reapedCount: UInt64 { state.withLock { $0.reaped } }

    private func reapAll() {
        while true {
            var pid: pid_t = 0, code: Int32 = 0, value: Int32 = 0
            let rc = shim_reap_any(&pid, &code, &value)
            if rc <= 0 { return }
            let status: ExitStatus = code == CLD_EXITED ? .exited(value) : .signaled(value)
            let waiters = state.withLock { s -> [UnsafeContinuation<ExitStatus, Never>] in
                s.reaped += 1
                if let waiting = s.waiters.removeValue(forKey: pid) {
                    // Dictionaries keep their capacity; do not keep a burst's.
                    if s.waiters.isEmpty && s.waiters.capacity > 64 { s.waiters = [:] }
                    return waiting
                }
                if s.unclaimed.updateValue(status, forKey: pid) != nil {
                    s.unclaimedOrder.removeAll { $0 == pid }  // an older exit of a reused pid
                }
                s.unclaimedOrder.append(pid)
                if s.unclaimedOrder.count > Self.unclaimedLimit {
                    let oldest = s.unclaimedOrder.removeFirst()
                    s.unclaimed.removeValue(forKey: oldest)
                }
                return []
            }
            for waiter in waiters { waiter.resume(returning: status) }
        }
    }
}
