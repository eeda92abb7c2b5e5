import Glibc
import Shims

/// Delivers POSIX signals to async code through the loop, in one of two ways:
///
/// - `.signalfd`: a signalfd. A signal reaches it only while blocked in every thread, so this
///   suits programs that control all their threads: block the signals first thing in `main`
///   (`SignalSource.blockInThisThread`); the source also blocks them on its loop thread.
/// - `.handler`: a signal handler writes the signal number into a pipe the loop watches (the
///   self-pipe trick). It works whatever the threads' masks are, which is what a daemon on the
///   Swift runtime needs (the runtime's worker threads may leave any signal unblocked).
///   One source per signal per process.
public final class SignalSource: Sendable {
    /// How signals reach the loop.
    public enum Mechanism: Sendable { case signalfd, handler }

    private let descriptor: AsyncFD
    private let mechanism: Mechanism
    public let signals: [Int32]

    /// Blocks `signals` in the calling thread (call before starting threads).
    public static func blockInThisThread(_ signals: [Int32]) {
        _ = signals.withUnsafeBufferPointer { shim_block_signals($0.baseAddress, Int32($0.count)) }
    }

    /// Starts receiving `signals` on `loop`.
    public init(signals: [Int32], mechanism: Mechanism = .signalfd, loop: EventLoop = .shared) async throws {
        self.signals = signals
        self.mechanism = mechanism
        switch mechanism {
        case .signalfd:
            let fd = try signals.withUnsafeBufferPointer { (buffer) throws(SyscallError) -> Int32 in
                try sys("signalfd") { shim_signalfd_for(buffer.baseAddress, Int32(buffer.count)) }
            }
            descriptor = try AsyncFD(OwnedFD(adopting: fd), loop: loop)
            let set = signals
            await loop.run { Self.blockInThisThread(set) }
        case .handler:
            let pipe = try Pipes.make()
            let writeEnd = pipe.second.release()  // kept open for the handler for the process's life
            descriptor = try AsyncFD(pipe.first, loop: loop)
            for signal in signals {
                _ = try sys("sigaction(\(signal))") { shim_signal_forward(signal, writeEnd) }
            }
            // Let the loop thread take them: a signal aimed at it (SIGCHLD goes to the thread
            // that forked the child) then runs the handler in place, interrupting epoll_wait,
            // rather than waking another thread. The loop thread inherits the mask of the
            // thread that started it, which on the Swift runtime blocks nearly everything.
            let set = signals
            await loop.run { _ = set.withUnsafeBufferPointer { shim_unblock_signals($0.baseAddress, Int32($0.count)) } }
        }
    }

    /// Waits for the next signal; returns its number.
    public func next() async throws -> Int32 {
        if mechanism == .handler {
            let byte = try await descriptor.read(upTo: 1)
            guard let signal = byte.first else { throw EventLoopError.closed }
            return Int32(signal)
        }
        let size = shim_signalfd_siginfo_size()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        // Read on the loop thread: signals sent to that thread are pending only there.
        let n = try await withTaskExecutorPreference(descriptor.loop) {
            try await descriptor.read(into: buffer)
        }
        guard n == size else { throw SyscallError("read(signalfd)", errno: EIO) }
        return Int32(bitPattern: shim_siginfo_signo(buffer.baseAddress!))
    }

    /// Waits until at least one signal has arrived and takes every one pending, without their
    /// numbers; returns how many. For a consumer that only needs "it happened" (the Reaper: one
    /// `waitid` loop handles any number of SIGCHLDs), this saves the read per signal and, as a
    /// short read shows the source drained, the read that would only say EAGAIN.
    public func drain() async throws -> Int {
        let size = mechanism == .handler ? 1 : shim_signalfd_siginfo_size()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size * 32, alignment: 8)
        defer { buffer.deallocate() }
        let n: Int
        if mechanism == .handler {
            n = try await descriptor.readStream(into: buffer)
        } else {
            // On the loop thread: signals sent to that thread are pending only there.
            n = try await withTaskExecutorPreference(descriptor.loop) { try await descriptor.readStream(into: buffer) }
        }
        guard n > 0 else { throw EventLoopError.closed }
        return n / size
    }

    /// Stops listening (the signals stay blocked).
    public func close() { descriptor.close() }
}

extension EventLoop {
    /// Runs `body` on the loop thread and waits for it.
    public func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withUnsafeContinuation { continuation in
            execute { continuation.resume(returning: body()) }
        }
    }
}
