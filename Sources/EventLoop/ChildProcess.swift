import Glibc
import Shims

/// How a process ended, as waitid reports it.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// The shell convention the host expects: the exit code, or 128 + signal number.
    public var code: UInt32 {
        switch self {
        case .exited(let code): UInt32(truncatingIfNeeded: code)
        case .signaled(let signal): 128 + UInt32(truncatingIfNeeded: signal)
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exited with \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

/// A child process seen through a pidfd: its exit is awaited on the loop (the pidfd becomes
/// readable) and reaped with `waitid(P_PIDFD)`, so no thread blocks in wait and signals go to
/// exactly this process even after its pid is reused. Under a `Reaper`, call only `signal`.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let pidfd: AsyncFD

    /// Opens a pidfd for `pid`, which must be a child of this process (so that it can be reaped).
    public init(pid: pid_t, loop: EventLoop = .shared) throws {
        self.pid = pid
        let fd = try sys("pidfd_open(\(pid))") { shim_pidfd_open(pid) }
        pidfd = try AsyncFD(OwnedFD(adopting: fd), loop: loop)
    }

    /// Waits for the process to exit and reaps it. Call once.
    public func wait() async throws -> ExitStatus {
        while true {
            let (status, epoch, _) = try pidfd.registration.withOp { fd throws(SyscallError) -> ExitStatus? in
                var code: Int32 = 0, value: Int32 = 0
                let rc = try sys("waitid(P_PIDFD, \(pid))") { shim_pidfd_reap(fd, &code, &value) }
                if rc == 1 { return nil }
                return code == CLD_EXITED ? .exited(value) : .signaled(value)
            }
            if let status {
                pidfd.close()
                return status
            }
            try await pidfd.registration.waitReadable(after: epoch)
        }
    }

    /// Sends `signal` to the process (ESRCH once it has been reaped).
    public func signal(_ signal: Int32) throws {
        _ = try pidfd.registration.withOp { fd throws(SyscallError) in
            try sys("pidfd_send_signal(\(pid), \(signal))") { shim_pidfd_send_signal(fd, signal) }
        }
    }
}
