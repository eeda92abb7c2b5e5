import EventLoop
import Synchronization

/// Writes whole frames to a connection from many tasks at once, never interleaving them, and
/// batching frames that become ready while a write is in progress into the next single write.
///
/// There is no writer task: the first task to enqueue into an idle writer becomes the drainer and
/// writes until the queue is empty; tasks that enqueue meanwhile just append their complete frame
/// (header and body contiguous) and return. This keeps latency at one syscall when idle and
/// amortises syscalls under load (64 responses ready → one write).
public final class FrameWriter: Sendable {
    struct State: ~Copyable {
        /// Frames waiting for the next write.
        var pending = ByteBuffer(capacity: FrameWriter.defaultCapacity)
        /// The drainer's buffer, parked here between drains so its capacity is reused.
        var spare: ByteBuffer? = ByteBuffer(capacity: FrameWriter.defaultCapacity)
        var draining = false
        var failure: (any Error)?
        /// Frames appended so far; a frame's number is this count just after its append.
        var appended: UInt64 = 0
        /// Senders waiting until their frame is written (`sendAwaitingWrite` behind a drainer),
        /// in frame order. Empty on the request path.
        var awaitingWrite: [(frame: UInt64, sender: Sender)] = []

        /// Takes the waiters whose frame is among the first `through` frames.
        mutating func takeWritten(through: UInt64) -> [Sender] {
            guard let first = awaitingWrite.first, first.frame <= through else { return [] }
            let count = awaitingWrite.firstIndex { $0.frame > through } ?? awaitingWrite.count
            defer { awaitingWrite.removeFirst(count) }
            return awaitingWrite.prefix(count).map(\.sender)
        }
    }

    /// A `sendAwaitingWrite` caller: resumed with nil once its frame is written, or with its
    /// frame's number when it is to drain itself.
    typealias Sender = UnsafeContinuation<UInt64?, any Error>

    private let connection: AsyncFD
    private let state = Mutex(State())
    /// The buffers' size between bursts.
    static let defaultCapacity = 64 << 10

    public init(connection: AsyncFD) {
        self.connection = connection
    }

    /// Senders of `sendAwaitingWrite` waiting behind a drainer (tests).
    var awaitingWriteCount: Int { state.withLock { $0.awaitingWrite.count } }
    /// Frames appended so far, and bytes not yet taken by a drainer (tests).
    var queueState: (appended: UInt64, pendingBytes: Int) { state.withLock { ($0.appended, $0.pending.count) } }

    /// Appends frames built by `build`, which runs under the writer's lock (so whatever it
    /// decides, e.g. a sequence id, is in wire order). Returns true when the caller must now
    /// call `drain()`: it became the task that writes. Throws the error that broke the writer.
    public func append(_ build: (inout ByteBuffer) throws -> Void) throws -> Bool {
        try state.withLock { s throws -> Bool in
            if let failure = s.failure { throw failure }
            try build(&s.pending)
            s.appended &+= 1
            if s.draining { return false }
            s.draining = true
            return true
        }
    }

    /// Sends one frame: header for `type`/`id` plus `body`, contiguous. Returns once the frame
    /// is written or handed to the task that is writing.
    public func send(type: MessageIdentifier, id: UInt64, body: UnsafeRawBufferPointer) async throws {
        if try append({ $0.appendFrame(type: type, id: id, body: body) }) { try await drain() }
    }

    /// Sends one frame like `send`, but returns only once the frame itself is written to the
    /// connection, and throws if the writer breaks before that. `send` returns as soon as its
    /// frame is handed to a task already writing, so a frame queued behind a write that then
    /// fails is lost without its sender knowing; a sender that must resend on another
    /// connection (a container exit notification) uses this. It never throws for a frame that
    /// was written, so a resend is never a duplicate of what the peer may have read.
    /// `build` appends the frame, under the writer's lock as with `append`.
    public func sendAwaitingWrite(_ build: (inout ByteBuffer) -> Void) async throws {
        // nil: a drainer already running wrote the frame; a number: this task is the drainer
        // and the frame is that one.
        let mine = try await withUnsafeThrowingContinuation { (sender: Sender) in
            state.withLock { s in
                if let failure = s.failure { return sender.resume(throwing: failure) }
                build(&s.pending)
                s.appended &+= 1
                if s.draining {
                    s.awaitingWrite.append((s.appended, sender))  // resumed by the drainer
                } else {
                    s.draining = true
                    sender.resume(returning: s.appended)
                }
            }
        }
        guard let mine else { return }
        let outcome = await drainFrames()
        if outcome.written < mine { throw outcome.error ?? EventLoopError.closed }
    }

    /// Sends raw bytes (tests that need malformed frames).
    public func send(raw: UnsafeRawBufferPointer) async throws {
        if try append({ $0.append(raw) }) { try await drain() }
    }

    /// Marks the writer broken: later enqueues throw `error`.
    public func fail(_ error: any Error) {
        state.withLock { if $0.failure == nil { $0.failure = error } }
    }

    /// Writes until the queue is empty. Only the task `append` elected may call it. Throws the
    /// error of a failed write (the frames queued behind it are lost: the caller tears the
    /// connection down), or the writer's failure if it broke before the caller's frame (always
    /// in the first batch) was written.
    public func drain() async throws {
        let outcome = await drainFrames()
        if let error = outcome.error, outcome.writeFailed || outcome.written == 0 { throw error }
    }

    /// What a drain did: frames are numbered from 1 in append order (`State.appended`).
    struct DrainOutcome {
        /// Every frame up to this number is written.
        var written: UInt64 = 0
        /// Why the drain stopped early, if it did.
        var error: (any Error)?
        /// The error is this drain's own failed write (not a failure set from outside).
        var writeFailed = false
    }

    private func drainFrames() async -> DrainOutcome {
        // Let the tasks already queued on this executor run first: requests that arrived in the
        // same read answer in the same loop turn, and their frames then leave in this one write
        // (64 requests in flight: one write, not 64). Costs a queue hop, not a syscall.
        await Task.yield()
        var batch = state.withLock { $0.spare.take() } ?? ByteBuffer(capacity: Self.defaultCapacity)
        var outcome = DrainOutcome()
        while true {
            // One locked step: senders of written frames, and on failure every sender still
            // waiting (none can join once the writer has failed), decided with `draining`.
            let (through, done, stranded, failure, ended) = state.withLock { s -> (UInt64, [Sender], [Sender], (any Error)?, Bool) in
                let done = outcome.written > 0 ? s.takeWritten(through: outcome.written) : []
                if let failure = s.failure {
                    s.draining = false
                    defer { s.awaitingWrite.removeAll() }
                    return (0, done, s.awaitingWrite.map(\.sender), failure, true)
                }
                if s.pending.count == 0 {
                    s.draining = false
                    return (0, done, [], nil, true)
                }
                swap(&s.pending, &batch)
                return (s.appended, done, [], nil, false)
            }
            for sender in done { sender.resume(returning: nil) }
            if let failure {
                for sender in stranded { sender.resume(throwing: failure) }
                if outcome.error == nil { outcome.error = failure }
            }
            if ended { break }
            do {
                try await connection.writeAll(batch.readableBytes)
                outcome.written = through
            } catch {
                fail(error)
                outcome.error = error
                outcome.writeFailed = true
            }
            batch.clear()
        }
        // A burst (many responses at once) grows or fills the buffers; do not keep its
        // high-water mark.
        batch.releaseIfEmpty(keeping: Self.defaultCapacity)
        var parked: ByteBuffer? = consume batch
        state.withLock { s in
            s.pending.releaseIfEmpty(keeping: Self.defaultCapacity)
            swap(&s.spare, &parked)
        }
        return outcome
    }
}

/// A growable byte buffer with a stable address while it is not being appended to, so a write
/// can await on it. Frames are assembled in it contiguously. Its memory is a `PageBuffer`, so the
/// pages a burst of frames filled go back to the kernel once they are written.
public struct ByteBuffer: ~Copyable, @unchecked Sendable {
    // @unchecked: the storage is uniquely owned (the type is non-copyable) and only moved between
    // tasks under FrameWriter's mutex, never shared.
    private var pages: PageBuffer
    public private(set) var count = 0
    /// What stays resident between bursts.
    public static let keptBytes = 16 << 10

    public init(capacity: Int) {
        pages = PageBuffer(capacity: max(capacity, 16))
    }

    private var storage: UnsafeMutableRawBufferPointer { pages.bytes }

    public var readableBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage[..<count])
    }

    /// Bytes of the buffer resident in memory (tests and diagnostics).
    public var residentBytes: Int { pages.residentBytes }

    public mutating func clear() {
        pages.noteWritten(upTo: count)
        count = 0
    }

    /// When empty: shrinks storage larger than `capacity` back to it, and gives back the pages
    /// beyond `keptBytes` that were filled since the last release (one madvise, only after a
    /// fill beyond them).
    public mutating func releaseIfEmpty(keeping capacity: Int) {
        guard count == 0 else { return }
        if pages.capacity > PageBuffer.roundUp(max(capacity, 16)) { pages.resize(to: capacity) }
        pages.discard(keeping: Self.keptBytes)
    }

    /// Makes room for `extra` more bytes.
    public mutating func reserve(_ extra: Int) {
        let needed = count + extra
        if needed <= storage.count { return }
        var capacity = storage.count
        while capacity < needed { capacity *= 2 }
        pages.resize(to: capacity)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserve(bytes.count)
        (storage.baseAddress! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count += bytes.count
    }

    /// Appends a frame: the header for `type`/`id` and `body`, contiguous. `newline` adds the
    /// trailing `\n` hcsshim's host puts after every body it sends (counted in the size).
    public mutating func appendFrame(type: MessageIdentifier, id: UInt64, body: UnsafeRawBufferPointer, newline: Bool = false) {
        let bodyCount = body.count + (newline ? 1 : 0)
        reserve(FrameHeader.byteCount + bodyCount)
        let header = FrameHeader(type: type, size: UInt32(FrameHeader.byteCount + bodyCount), id: id)
        header.store(into: UnsafeMutableRawBufferPointer(rebasing: storage[count..<(count + FrameHeader.byteCount)]))
        count += FrameHeader.byteCount
        append(body)
        if newline {
            storage[count] = 0x0A
            count += 1
        }
    }
}
