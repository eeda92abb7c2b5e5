import Glibc
import Shims

/// Which system calls a relay uses to move bytes.
public enum RelayMechanism: Sendable {
    /// Start with splice and switch per stream: to copy when transfers stay small (a chatty
    /// writer: many small pipe buffers make splice slower than one coalescing read), back to
    /// splice when copy reads come back full (bulk data).
    case automatic
    /// Always splice (falls back to copy only where the kernel cannot splice, e.g. a tty).
    case splice
    /// Always read/write through the loop's scratch buffer.
    case copy
}

/// The syscall state machine of one relay. A struct confined to the loop thread; `Relay` owns
/// it and decides when to run it. It owns the private pipe and the overflow buffer it allocates.
struct RelayEngine {
    enum Step {
        /// Nothing more can move now; `backpressured` says it is the destination that is full.
        case waiting(backpressured: Bool)
        /// The turn's byte budget is used up; there may be more to move.
        case budgetUsed
        /// The source reached EOF and everything read was delivered.
        case sourceEOF
    }

    enum Mode { case splice, copy }

    let source: Int32
    private(set) var destination: Int32
    let sourceIsPipe: Bool
    private(set) var destinationIsPipe: Bool
    private(set) var destinationIsSocket: Bool
    let sourceIsTTY: Bool
    let policy: RelayMechanism
    private(set) var mode: Mode
    private(set) var delivered: UInt64 = 0
    /// How many times automatic mode changed mechanism (diagnostics).
    private(set) var switches = 0

    /// Private pipe used to splice between two non-pipes, and the bytes sitting in it.
    private var middle: (read: Int32, write: Int32)?
    private var inMiddle = 0
    /// Bytes read but not yet written (copy mode, destination full).
    private var overflow: UnsafeMutableRawBufferPointer?
    private var overflowStart = 0
    private var overflowEnd = 0
    private var sourceEOF = false
    /// Adaptation: consecutive transfers that looked chatty (splice) or bulk (copy).
    private var streak = 0
    /// The last bytes delivered, for a relay whose destination may be replaced (copy mode only).
    private let replay: ReplayState?
    /// Gets a copy of every byte read (copy mode only); dropped once an append fails.
    private var tee: TeeFile?

    static let spliceChunk = 1 << 20
    static let middlePipeSize: Int32 = 256 << 10
    /// Splice transfers below this many bytes, `chattyStreak` times in a row, mean a writer of
    /// small chunks: each is its own pipe buffer, which splice moves one by one (RelayBench's
    /// chatty workload measures the difference), so copy mode is used.
    static let chattyBelow = 4 << 10
    static let chattyStreak = 32
    /// A source pipe found full (`defaultPipeSize` or more moved at once) `fullPipeStreak`
    /// splices in a row is grown once to `grownPipeSize`: its writer then blocks a quarter as
    /// often, and each splice moves four times as much (fewer wake-ups on both sides). Only bulk
    /// streams pay for it (a 64-slot ring in the kernel, at most 256 KiB held for a slow host,
    /// instead of 16 slots and 64 KiB); chatty and idle ones keep the default.
    static let defaultPipeSize = 64 << 10
    static let grownPipeSize: Int32 = 256 << 10
    static let fullPipeStreak = 4
    /// Consecutive splices that found the source pipe full; nil once grown (or tried).
    private var fullPipeSplices: Int? = 0

    /// Copy reads of at least this many bytes, `bulkStreak` times in a row, mean bulk data again.
    static let bulkAbove = 32 << 10
    static let bulkStreak = 8

    /// `replayBytes`: keep that many of the last bytes delivered, to send again to a replacement
    /// destination (`replaceDestination`); the relay then copies, never splices.
    init(source: Int32, destination: Int32, mechanism: RelayMechanism, replayBytes: Int? = nil, tee: TeeFile? = nil) {
        self.source = source
        self.destination = destination
        sourceIsPipe = Self.isPipe(source)
        destinationIsPipe = Self.isPipe(destination)
        destinationIsSocket = Self.isSocket(destination)
        sourceIsTTY = isatty(source) == 1
        let cannotSplice = sourceIsTTY || isatty(destination) == 1
        policy = cannotSplice || replayBytes != nil || tee != nil ? .copy : mechanism
        self.tee = tee
        mode = policy == .copy ? .copy : .splice
        replay = replayBytes.map { ReplayState(capacity: $0) }
    }

    /// Goes on to `fd` after the destination failed: the kept tail goes first, then what was
    /// read and not yet delivered, then the rest of the stream. `delivered` counts them all.
    mutating func replaceDestination(_ fd: Int32) {
        destination = fd
        destinationIsPipe = Self.isPipe(fd)
        destinationIsSocket = Self.isSocket(fd)
        // A tail still being sent to the previous replacement is the ring's own content: skip it.
        overflowStart = min(overflowStart + (replay?.inOverflow ?? 0), overflowEnd)
        let tail = replay?.tail.contents() ?? []
        var pending = tail
        if overflowEnd > overflowStart { pending += overflow![overflowStart..<overflowEnd] }
        overflowStart = 0
        overflowEnd = 0
        if !pending.isEmpty { pending.withUnsafeBytes { stash($0) } }
        replay?.inOverflow = tail.count
    }

    /// The last `.waiting` may be on a full destination: it said so, or it came from a direct
    /// splice, whose EAGAIN cannot tell a full destination from an empty source.
    var waitMayBeOnDestination: Bool { mode == .splice && (sourceIsPipe || destinationIsPipe) }

    var modeName: String { Self.mechanismName(mechanismCode) }

    /// The mechanism as a number other threads can be given (`Relay` publishes it atomically):
    /// 0 splice, 1 splice through the middle pipe, 2 copy.
    var mechanismCode: UInt8 { mode == .splice ? (middle == nil ? 0 : 1) : 2 }

    static func mechanismName(_ code: UInt8) -> String { ["splice", "splice+pipe", "copy"][Int(min(code, 2))] }

    static func isPipe(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO
    }

    static func isSocket(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK
    }

    mutating func releaseResources() {
        if let middle { Glibc.close(middle.read); Glibc.close(middle.write) }
        middle = nil
        inMiddle = 0
        overflow?.deallocate()
        overflow = nil
        replay?.tail.release()
        tee = nil  // this relay's hold on the file ends with it (its owner closes it)
    }

    /// Moves bytes until something would block, the source ends, or `budget` bytes moved.
    mutating func run(budget: Int, scratch: inout ScratchBuffer) throws -> Step {
        var used = 0
        while true {
            // 1. Deliver what is already in hand.
            if overflowEnd > overflowStart {
                let chunk = UnsafeRawBufferPointer(rebasing: overflow![overflowStart..<overflowEnd])
                guard case .done(let n) = try writeDestination(chunk) else { return .waiting(backpressured: true) }
                if let replay {
                    let replayed = min(n, replay.inOverflow)
                    replay.inOverflow -= replayed
                    replay.tail.record(UnsafeRawBufferPointer(rebasing: chunk[replayed..<n]))
                }
                overflowStart += n
                delivered += UInt64(n)
                used += n
                if overflowStart == overflowEnd { overflowStart = 0; overflowEnd = 0 }
                continue
            }
            if inMiddle > 0 {
                let middle = middle!
                let result = try Self.splice(middle.read, destination, inMiddle)
                if case .unsupported = result {
                    try moveMiddleToOverflow()
                    mode = .copy
                    continue
                }
                guard case .moved(let n) = result else { return .waiting(backpressured: true) }
                inMiddle -= n
                delivered += UInt64(n)
                used += n
                continue
            }
            if sourceEOF { return .sourceEOF }
            if used >= budget { return .budgetUsed }

            // 2. Take more from the source.
            switch mode {
            case .splice:
                if let step = try spliceFromSource(used: &used) { return step }
            case .copy:
                if let step = try copyFromSource(scratch: &scratch, used: &used) { return step }
            }
        }
    }

    private mutating func spliceFromSource(used: inout Int) throws -> Step? {
        let src = source
        let direct = sourceIsPipe || destinationIsPipe
        let target: Int32
        if direct {
            target = destination
        } else {
            if middle == nil { try makeMiddlePipe() }
            target = middle!.write
        }
        let length = direct ? Self.spliceChunk : Int(Self.middlePipeSize)
        let result = try Self.splice(src, target, length)
        switch result {
        case .unsupported:
            mode = .copy  // this pair of descriptors cannot be spliced
        case .wouldBlock:
            // Direct splice cannot tell an empty source from a full destination; finding out
            // would cost a syscall per wait, so `Relay.isBackpressured` asks only when read.
            return .waiting(backpressured: false)
        case .moved(0):
            sourceEOF = true
        case .moved(let n):
            if direct { delivered += UInt64(n); used += n } else { inMiddle = n }
            adapt(transferred: n, full: n >= Self.chattyBelow)
            if sourceIsPipe { noteSourcePipeFill(n) }
        }
        return nil
    }

    /// Grows a source pipe that keeps arriving full (see `grownPipeSize`); once per relay. A
    /// failure (a pipe-size limit) leaves the pipe as it was.
    private mutating func noteSourcePipeFill(_ moved: Int) {
        guard let streak = fullPipeSplices else { return }
        let now = moved >= Self.defaultPipeSize ? streak + 1 : 0
        if now < Self.fullPipeStreak { fullPipeSplices = now; return }
        fullPipeSplices = nil
        // Never shrinks a pipe its writer made larger itself.
        if shim_fcntl_getpipe_sz(source) < Self.grownPipeSize { _ = shim_fcntl_setpipe_sz(source, Self.grownPipeSize) }
    }

    /// The source pipe's capacity now (diagnostics and tests); nil when the source is no pipe.
    var sourcePipeSize: Int? { sourceIsPipe ? Int(shim_fcntl_getpipe_sz(source)) : nil }

    private mutating func copyFromSource(scratch: inout ScratchBuffer, used: inout Int) throws -> Step? {
        let src = source, buffer = scratch.bytes
        let readResult = try Self.read(src, into: buffer, eioIsEOF: sourceIsTTY)
        guard case .done(var n) = readResult else { return .waiting(backpressured: false) }
        if n == 0 { sourceEOF = true; return nil }
        if sourceIsTTY { n = coalesceTTYReads(into: buffer, after: n) }
        scratch.noteUse(upTo: n)
        adapt(transferred: n, full: n >= Self.bulkAbove)
        let data = UnsafeRawBufferPointer(rebasing: buffer[..<n])
        if let tee, !tee.append(data) { self.tee = nil }
        var written = 0
        do {
            if case .done(let w) = try writeDestination(data) { written = w }
        } catch {
            stash(data)  // read, not delivered: kept for a replacement destination
            throw error
        }
        replay?.tail.record(UnsafeRawBufferPointer(rebasing: data[..<written]))
        delivered += UInt64(written)
        used += written
        if written < n { stash(UnsafeRawBufferPointer(rebasing: data[written...])) }
        return nil
    }

    /// A pty hands over at most its 4 KiB line-discipline buffer per read, however large the
    /// buffer passed. Sending each piece on its own costs a socket send (and a wake-up of the
    /// host's reader) per 4 KiB, about a quarter of the relay's CPU; so keep reading into the
    /// scratch buffer while the pty has more, and send once. A read that finds the buffer empty
    /// returns at once (the kernel first waits for a queued refill, then says EAGAIN), so an
    /// interactive session pays no delay, only the read that ends the batch, as before.
    private mutating func coalesceTTYReads(into scratch: UnsafeMutableRawBufferPointer, after first: Int) -> Int {
        var filled = first
        while scratch.count - filled >= Self.ttyChunk {
            let rest = UnsafeMutableRawBufferPointer(rebasing: scratch[filled...])
            // An error here must not lose what is already read: deliver that, and let the next
            // read (which meets the error again) report it.
            guard case .done(let n)? = try? Self.read(source, into: rest, eioIsEOF: true) else { break }
            if n == 0 { sourceEOF = true; break }  // delivered below, then reported as EOF
            filled += n
        }
        return filled
    }

    /// The n_tty line discipline's read buffer: the most one read of a pty returns.
    static let ttyChunk = 4 << 10

    /// Adapts the mechanism to the stream (automatic policy only).
    private mutating func adapt(transferred: Int, full: Bool) {
        guard policy == .automatic else { return }
        switch mode {
        case .splice:
            streak = full ? 0 : streak + 1  // `full`: at least `chattyBelow` bytes moved
            if streak >= Self.chattyStreak && inMiddle == 0 { mode = .copy; streak = 0; switches += 1 }
        case .copy:
            streak = full ? streak + 1 : 0
            if streak >= Self.bulkStreak && overflowEnd == overflowStart { mode = .splice; streak = 0; switches += 1 }
        }
    }

    private func writeDestination(_ data: UnsafeRawBufferPointer) throws -> NonBlocking<Int> {
        let dst = destination
        if destinationIsSocket {
            return try sysNonBlocking("send(\(dst))") { Glibc.send(dst, data.baseAddress, data.count, Int32(MSG_NOSIGNAL)) }
        }
        return try sysNonBlocking("write(\(dst))") { Glibc.write(dst, data.baseAddress, data.count) }
    }

    /// Keeps bytes the destination did not take; the relay reads no more until they are gone.
    private mutating func stash(_ data: UnsafeRawBufferPointer) {
        if overflow == nil || overflow!.count < data.count {
            overflow?.deallocate()
            overflow = .allocate(byteCount: max(data.count, 64 << 10), alignment: 16)
        }
        overflow!.copyMemory(from: data)
        overflowStart = 0
        overflowEnd = data.count
    }

    private mutating func moveMiddleToOverflow() throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: inMiddle, alignment: 16)
        defer { buffer.deallocate() }
        var filled = 0
        let fd = middle!.read
        while filled < inMiddle {
            let n = try sys("read(pipe)") { Glibc.read(fd, buffer.baseAddress! + filled, inMiddle - filled) }
            filled += n
        }
        inMiddle = 0
        stash(UnsafeRawBufferPointer(buffer))
    }

    private mutating func makeMiddlePipe() throws {
        let pipe = try Pipes.make(nonBlocking: true)
        _ = shim_fcntl_setpipe_sz(pipe.second.rawValue, Self.middlePipeSize)
        middle = (pipe.first.release(), pipe.second.release())
    }

    enum Transfer {
        case moved(Int)
        case wouldBlock
        /// EINVAL: the kernel cannot splice between these two descriptors.
        case unsupported
    }

    /// One non-blocking splice; EINTR retried, EAGAIN and EINVAL reported as outcomes.
    static func splice(_ from: Int32, _ to: Int32, _ length: Int) throws(SyscallError) -> Transfer {
        while true {
            let n = shim_splice(from, to, length, shim_splice_f_nonblock() | shim_splice_f_move())
            if n >= 0 { return .moved(n) }
            switch Glibc.errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case EINVAL: return .unsupported
            case let code:
                precondition(code != EBADF, "EBADF from splice(\(from) -> \(to))")
                throw SyscallError("splice(\(from) -> \(to))", errno: code)
            }
        }
    }

    /// One non-blocking read; a tty's EIO (its slave side closed) reads as EOF when asked.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, eioIsEOF: Bool) throws(SyscallError) -> NonBlocking<Int> {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return .done(n) }
            switch Glibc.errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case EIO where eioIsEOF: return .done(0)
            case let code:
                precondition(code != EBADF, "EBADF from read(\(fd))")
                throw SyscallError("read(\(fd))", errno: code)
            }
        }
    }

    static func bytesReadable(_ fd: Int32) -> Int32 {
        var count: Int32 = 0
        return shim_ioctl_fionread(fd, &count) == 0 ? count : 0
    }
}
