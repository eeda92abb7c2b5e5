import Glibc
import Shims

/// Delivers POSIX signals to async code through a signalfd on the loop, instead of handlers
/// that run in arbitrary threads. A signal reaches the signalfd only while it is blocked, so a
/// program blocks the signals it wants here at start-up, before it starts any thread (the mask
/// is inherited): `SignalSource.blockInThisThread([SIGTERM, SIGINT])` first thing in `main`.
/// The source also blocks them on its loop thread, where it reads, so signals directed at that
/// thread are seen too.
public final class SignalSource: Sendable {
    private let descriptor: AsyncFD
    public let signals: [Int32]

    /// Blocks `signals` in the calling thread (call before starting threads).
    public static func blockInThisThread(_ signals: [Int32]) {
        _ = signals.withUnsafeBufferPointer { shim_block_signals($0.baseAddress, Int32($0.count)) }
    }

    /// Opens a signalfd for `signals` on `loop` and blocks them on the loop thread.
    public init(signals: [Int32], loop: EventLoop = .shared) async throws {
        self.signals = signals
        let fd = try signals.withUnsafeBufferPointer { (buffer) throws(SyscallError) -> Int32 in
            try sys("signalfd") { shim_signalfd_for(buffer.baseAddress, Int32(buffer.count)) }
        }
        descriptor = try AsyncFD(OwnedFD(adopting: fd), loop: loop)
        let set = signals
        await loop.run { Self.blockInThisThread(set) }
    }

    /// Waits for the next signal; returns its number.
    public func next() async throws -> Int32 {
        let size = shim_signalfd_siginfo_size()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        // Read on the loop thread: signals sent to that thread are pending only there.
        let n = try await withTaskExecutorPreference(descriptor.loop) {
            try await descriptor.read(into: buffer)
        }
        guard n == size else { throw SyscallError("read(signalfd)", errno: EIO) }
        return Int32(bitPattern: shim_siginfo_signo(buffer.baseAddress!.assumingMemoryBound(to: signalfd_siginfo.self)))
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
