import Glibc
import Shims
import Synchronization

/// Errors of the event loop's own making (as opposed to a failed system call).
public enum EventLoopError: Error, Equatable, Sendable {
    /// The descriptor was closed (by its owner) while or before the operation ran.
    case closed
    /// A second task tried to wait for the same direction of the same descriptor; one reader
    /// and one writer at a time is the contract.
    case concurrentWait(fd: Int32, direction: String)
}

/// Something that wants readiness callbacks on the loop thread instead of waking tasks (a relay).
protocol ReadinessDriver: AnyObject {
    /// Loop thread: the descriptor of `registration` became readable and/or writable.
    func ready(_ registration: Registration, readable: Bool, writable: Bool)
}

/// The loop's record of one descriptor: edge-triggered readiness as two epoch counters, the one
/// task (per direction) waiting for it, and the close-exactly-once protocol.
///
/// Epochs make edge triggering race-free: an operation notes the epoch, tries the syscall, and on
/// EAGAIN waits only if the epoch has not moved since; an edge that arrived in between is seen.
final class Registration: @unchecked Sendable {
    // @unchecked: `state` is a Mutex; `driver` is only read and written on the loop thread.

    struct Waiter {
        /// Which wait this is: a cancelled wait removes only its own waiter, never one that
        /// another task installed after this one was resumed.
        var id: UInt64
        var epoch: UInt64
        var continuation: UnsafeContinuation<Void, any Error>
    }

    struct State {
        var readEpoch: UInt64 = 0
        var writeEpoch: UInt64 = 0
        var readWaiter: Waiter?
        var writeWaiter: Waiter?
        /// The read epoch at which a stream read came back short: the receive queue was empty
        /// then, so until the epoch moves another read would only say EAGAIN.
        var drainedAtReadEpoch: UInt64?
        /// The peer hung up or the socket is in error: a read returns 0 or the error without any
        /// further edge, so a short read no longer means the next read would block.
        var hangupSeen = false
        /// epoll reports write readiness (asked for the first time a task or relay had to wait
        /// for it; see `EventLoop.register`). Until then the write epoch moves only on errors and
        /// hang-ups (EPOLLERR/EPOLLHUP, which epoll always reports).
        var watchingWrites = false
        /// Syscalls in progress on `fd`; the real close waits for them to end.
        var activeOps = 0
        var closeRequested = false
        var closed = false
    }

    let fd: Int32
    let loop: EventLoop
    let state = Mutex(State())
    /// Numbers the waits (see `Waiter.id`).
    private let waitIDs = Atomic<UInt64>(0)
    /// Loop thread only: when set, readiness goes to the driver (and waiters still wake).
    var driver: ReadinessDriver? {
        didSet { hasDriver.store(driver != nil, ordering: .relaxed) }
    }
    /// Whether `driver` is set, readable on any thread: `close` pokes a driver only if there
    /// may be one (most descriptors never have one; the poke is a loop job).
    private let hasDriver = Atomic<Bool>(false)

    /// Whether epoll reports read readiness (false for a descriptor only ever written).
    let readInterest: Bool

    init(fd: Int32, loop: EventLoop, readInterest: Bool = true) {
        self.fd = fd
        self.loop = loop
        self.readInterest = readInterest
    }

    /// Loop thread: epoll reported `events`.
    @inline(__always)
    func handle(events: UInt32) {
        let readMask = UInt32(SHIM_EPOLLIN | SHIM_EPOLLRDHUP | SHIM_EPOLLHUP | SHIM_EPOLLERR)
        let writeMask = UInt32(SHIM_EPOLLOUT | SHIM_EPOLLHUP | SHIM_EPOLLERR)
        let hangupMask = UInt32(SHIM_EPOLLRDHUP | SHIM_EPOLLHUP | SHIM_EPOLLERR)
        let readable = events & readMask != 0
        let writable = events & writeMask != 0
        let (r, w) = state.withLock { s -> (Waiter?, Waiter?) in
            var r: Waiter?, w: Waiter?
            if readable { s.readEpoch &+= 1; r = s.readWaiter; s.readWaiter = nil }
            if events & hangupMask != 0 { s.hangupSeen = true }
            if writable { s.writeEpoch &+= 1; w = s.writeWaiter; s.writeWaiter = nil }
            return (r, w)
        }
        r?.continuation.resume()
        w?.continuation.resume()
        driver?.ready(self, readable: readable, writable: writable)
    }

    // MARK: Operations

    /// Starts a syscall on `fd`; returns the epochs to compare against after EAGAIN.
    @inline(__always)
    func beginOp() throws(EventLoopError) -> (read: UInt64, write: UInt64) {
        let result = state.withLock { s -> (UInt64, UInt64)? in
            if s.closeRequested { return nil }
            s.activeOps += 1
            return (s.readEpoch, s.writeEpoch)
        }
        guard let result else { throw .closed }
        return result
    }

    /// Ends a syscall; performs a close that was requested meanwhile. `drainedAtReadEpoch`: a
    /// stream read started at that epoch came back short, so the receive queue was empty then.
    @inline(__always)
    func endOp(drainedAtReadEpoch drained: UInt64? = nil) {
        let finish = state.withLock { s -> Bool in
            if let drained { s.drainedAtReadEpoch = drained }
            s.activeOps -= 1
            if s.activeOps == 0 && s.closeRequested && !s.closed { s.closed = true; return true }
            return false
        }
        if finish { finalizeClose() }
    }

    /// Runs `body(fd)` as one operation (closing waits for it).
    @inline(__always)
    func withOp<T>(_ body: (Int32) throws(SyscallError) -> T) throws -> (T, read: UInt64, write: UInt64) {
        let epochs = try beginOp()
        defer { endOp() }
        return (try body(fd), epochs.read, epochs.write)
    }

    /// What a stream read should do next, decided in the lock `beginOp` takes anyway.
    enum StreamRead {
        /// Read (an operation has begun: end it with `endOp`); the read epoch it started at.
        case read(epoch: UInt64)
        /// The last stream read drained the queue and no readiness edge came since: wait past
        /// this epoch first (no operation has begun).
        case waitFirst(epoch: UInt64)
    }

    /// `beginOp` for a stream read (see `AsyncFD.readStream`).
    @inline(__always)
    func beginStreamRead() throws(EventLoopError) -> StreamRead {
        let result = state.withLock { s -> StreamRead? in
            if s.closeRequested { return nil }
            if !s.hangupSeen && s.drainedAtReadEpoch == s.readEpoch { return .waitFirst(epoch: s.readEpoch) }
            s.activeOps += 1
            return .read(epoch: s.readEpoch)
        }
        guard let result else { throw .closed }
        return result
    }

    /// Suspends until the read epoch moves past `epoch`. Cancellation resumes with
    /// `CancellationError` and leaves the descriptor open and usable.
    func waitReadable(after epoch: UInt64) async throws {
        try await wait(after: epoch, read: true)
    }

    func waitWritable(after epoch: UInt64) async throws {
        try await wait(after: epoch, read: false)
    }

    private func wait(after epoch: UInt64, read: Bool) async throws {
        let id = waitIDs.wrappingAdd(1, ordering: .relaxed).newValue
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                let outcome = state.withLock { s -> Result<Bool, any Error> in
                    if s.closeRequested { return .failure(EventLoopError.closed) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if read {
                        if s.readEpoch != epoch { return .success(true) }
                        if s.readWaiter != nil { return .failure(EventLoopError.concurrentWait(fd: fd, direction: "read")) }
                        s.readWaiter = Waiter(id: id, epoch: epoch, continuation: continuation)
                    } else {
                        if s.writeEpoch != epoch { return .success(true) }
                        if s.writeWaiter != nil { return .failure(EventLoopError.concurrentWait(fd: fd, direction: "write")) }
                        do { try watchWritability(&s) } catch { return .failure(error) }
                        s.writeWaiter = Waiter(id: id, epoch: epoch, continuation: continuation)
                    }
                    return .success(false)
                }
                switch outcome {
                case .success(true): continuation.resume()
                case .success(false): break
                case .failure(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> Waiter? in
                if read {
                    guard let waiter = s.readWaiter, waiter.id == id else { return nil }
                    s.readWaiter = nil
                    return waiter
                }
                guard let waiter = s.writeWaiter, waiter.id == id else { return nil }
                s.writeWaiter = nil
                return waiter
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Asks epoll for write readiness from now on (idempotent): for a relay, whose writes wait
    /// on readiness callbacks rather than `waitWritable`.
    func watchWritability() throws {
        try state.withLock { s throws in
            if s.closeRequested { throw EventLoopError.closed }
            try watchWritability(&s)
        }
    }

    /// In the lock, close not requested (so `fd` is open): the epoll change, once.
    private func watchWritability(_ s: inout State) throws(SyscallError) {
        if s.watchingWrites { return }
        try loop.watchWritability(self)
        s.watchingWrites = true
    }

    // MARK: Close

    /// Requests the close: waiters are resumed with `.closed`; the descriptor is closed now, or
    /// when the last syscall in progress on it ends. Idempotent.
    func close() {
        let (closeNow, waiters) = state.withLock { s -> (Bool, [Waiter]) in
            if s.closeRequested { return (false, []) }
            s.closeRequested = true
            let waiters = [s.readWaiter, s.writeWaiter].compactMap { $0 }
            s.readWaiter = nil
            s.writeWaiter = nil
            if s.activeOps == 0 { s.closed = true; return (true, waiters) }
            return (false, waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: EventLoopError.closed) }
        if closeNow { finalizeClose() }
        // A driver (a relay) waiting on this descriptor gets no more events from epoll: give it
        // a turn, in which its next operation finds the descriptor closed and it ends.
        if hasDriver.load(ordering: .relaxed) { loop.execute { [self] in driver?.ready(self, readable: true, writable: true) } }
    }

    var isClosed: Bool { state.withLock { $0.closeRequested } }

    private func finalizeClose() {
        loop.deregister(self)
        _ = Glibc.close(fd)
    }
}
