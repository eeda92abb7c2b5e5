import Glibc
import Shims

/// A non-blocking descriptor registered with an `EventLoop`, with async reads, writes and
/// readiness waits. It owns the descriptor: `close()` (or the last reference going away) closes
/// it exactly once, after any syscall in progress on it has returned.
///
/// One task may wait to read and one to write at the same time. A cancelled wait throws
/// `CancellationError` and leaves the descriptor open and usable; a wait interrupted by
/// `close()` throws `EventLoopError.closed`.
public final class AsyncFD: Sendable {
    let registration: Registration
    /// Sockets are written with send(MSG_NOSIGNAL); anything else with write(2).
    let isSocket: Bool
    /// A short read proves the queue empty (pipes, AF_UNIX stream sockets): `readStream` may
    /// then skip the read that would only say EAGAIN. False for vsock (see `shim_fd_traits`).
    let shortReadDrains: Bool

    /// The loop this descriptor is registered with.
    public var loop: EventLoop { registration.loop }

    /// Registers `fd` (made non-blocking) with `loop`. `writeOnly`: the descriptor is only ever
    /// written through this registration (a second descriptor of a pty master, for input), so
    /// epoll is not asked for its read readiness: the output on the other descriptor of the same
    /// terminal would otherwise wake this one, for nothing, each time.
    public init(_ fd: consuming OwnedFD, loop: EventLoop = .shared, writeOnly: Bool = false) throws(SyscallError) {
        try fd.setNonBlocking()
        let raw = fd.release()
        let traits = shim_fd_traits(raw)
        isSocket = traits & Int32(SHIM_FD_SOCKET) != 0
        shortReadDrains = traits & Int32(SHIM_FD_SHORT_READ_DRAINS) != 0
        let registration = Registration(fd: raw, loop: loop, readInterest: !writeOnly)
        do {
            try loop.register(registration)
        } catch {
            _ = Glibc.close(raw)
            throw error
        }
        self.registration = registration
    }

    deinit { registration.close() }

    /// The raw descriptor, for calls this type does not wrap. Valid until `close()`.
    public var rawValue: Int32 { registration.fd }

    /// Whether `close()` was called.
    public var isClosed: Bool { registration.isClosed }

    /// Closes the descriptor (idempotent). Waiting tasks get `EventLoopError.closed`.
    public func close() { registration.close() }

    // MARK: Readiness

    /// Waits for the next read readiness edge from now on (or EOF/error). Not for waiting after
    /// a syscall said EAGAIN: an edge between that syscall and this call would be missed; use
    /// `readAttempt` for that.
    public func waitReadable() async throws {
        let epochs = try registration.beginOp()
        registration.endOp()
        try await registration.waitReadable(after: epochs.read)
    }

    /// Waits for the next write readiness edge from now on (or an error); see `waitReadable`.
    public func waitWritable() async throws {
        let epochs = try registration.beginOp()
        registration.endOp()
        try await registration.waitWritable(after: epochs.write)
    }

    /// Runs `attempt` on the descriptor, as one operation, until it returns a value; nil means
    /// it would block, and then the next attempt waits for read readiness after the epoch noted
    /// before this one, so an edge that came in between is not missed. For reads this type does
    /// not wrap (recvmsg with SCM_RIGHTS).
    public func readAttempt<T>(_ attempt: (Int32) throws(SyscallError) -> T?) async throws -> T {
        while true {
            let (result, epoch, _) = try registration.withOp(attempt)
            if let result { return result }
            try await registration.waitReadable(after: epoch)
        }
    }

    // MARK: Reads and writes

    /// Reads at most `buffer.count` bytes; returns 0 at end of file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        while true {
            let (result, epoch, _) = try registration.withOp { (fd) throws(SyscallError) in
                try sysNonBlocking("read(\(fd))") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
            }
            if case .done(let n) = result { return n }
            try await registration.waitReadable(after: epoch)
        }
    }

    /// `read(into:)` for a stream: where a read that returns less than asked means the receive
    /// queue is empty (a pipe, an AF_UNIX stream socket: `shortReadDrains`), the next call
    /// waits for the next readiness edge instead of first trying a read that would only say
    /// EAGAIN (one syscall per message saved on the bridge). Elsewhere it reads until EAGAIN
    /// like `read(into:)`: a Hyper-V socket returns one VMBus packet per read with more queued,
    /// and the host signals again only once its ring has been emptied, so waiting after a short
    /// read would stall the bridge for good. Once the peer has hung up (an edge with
    /// RDHUP/HUP/ERR) every read is tried, since EOF or the error comes with no further edge.
    public func readStream(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        while true {
            let epoch: UInt64
            switch try registration.beginStreamRead() {
            case .waitFirst(let drained):
                try await registration.waitReadable(after: drained)
                continue
            case .read(let start):
                epoch = start
            }
            let fd = registration.fd
            let result: NonBlocking<Int>
            do {
                result = try sysNonBlocking("read(\(fd))") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
            } catch {
                registration.endOp()
                throw error
            }
            if case .done(let n) = result {
                registration.endOp(drainedAtReadEpoch: shortReadDrains && n > 0 && n < buffer.count ? epoch : nil)
                return n
            }
            registration.endOp()
            try await registration.waitReadable(after: epoch)
        }
    }

    /// Reads at most `maxBytes` into a new array; empty at end of file. For control paths and
    /// tests; the data path reads into caller buffers.
    public func read(upTo maxBytes: Int) async throws -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxBytes, alignment: 1)
        defer { buffer.deallocate() }
        let n = try await read(into: buffer)
        return Array(buffer[..<n])
    }

    /// Reads until end of file, keeping the first `limit` bytes and counting the rest: for a
    /// child's output pipe, which must be read to its end (a child blocked writing to a full
    /// pipe never exits) whatever the child writes.
    public func drainToEnd(keepingAtMost limit: Int) async throws -> (bytes: [UInt8], discarded: Int) {
        var kept: [UInt8] = [], discarded = 0
        while true {
            let chunk = try await read(upTo: 64 << 10)
            if chunk.isEmpty { return (kept, discarded) }
            let room = max(0, limit - kept.count)
            kept += chunk.prefix(room)
            discarded += max(0, chunk.count - room)
        }
    }

    /// Reads until end of file (at most `limit` bytes, then throws E2BIG).
    public func readToEnd(limit: Int = 64 << 20) async throws -> [UInt8] {
        var result: [UInt8] = []
        while true {
            let chunk = try await read(upTo: 64 << 10)
            if chunk.isEmpty { return result }
            result += chunk
            if result.count > limit { throw SyscallError("read(\(rawValue)): more than \(limit) bytes", errno: E2BIG) }
        }
    }

    /// Writes at most `buffer.count` bytes, waiting while the descriptor is full; returns the
    /// number written (at least 1 unless `buffer` is empty).
    public func write(_ buffer: UnsafeRawBufferPointer) async throws -> Int {
        if buffer.isEmpty { return 0 }
        while true {
            let (result, _, epoch) = try registration.withOp { (fd) throws(SyscallError) in
                try writeOnce(fd, buffer)
            }
            if case .done(let n) = result { return n }
            try await registration.waitWritable(after: epoch)
        }
    }

    @inline(__always)
    private func writeOnce(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SyscallError) -> NonBlocking<Int> {
        if isSocket {
            return try sysNonBlocking("send(\(fd))") { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
        }
        return try sysNonBlocking("write(\(fd))") { Glibc.write(fd, buffer.baseAddress, buffer.count) }
    }

    /// Writes all of `buffer`.
    public func writeAll(_ buffer: UnsafeRawBufferPointer) async throws {
        var offset = 0
        while offset < buffer.count {
            offset += try await write(UnsafeRawBufferPointer(rebasing: buffer[offset...]))
        }
    }

    /// Writes all of `bytes`.
    public func writeAll(_ bytes: [UInt8]) async throws {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        try await writeAll(UnsafeRawBufferPointer(copy))
    }

    /// Tries one read without waiting: the byte count (0 at end of file), or nil when there is
    /// nothing to read.
    public func tryRead(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        let (result, _, _) = try registration.withOp { (fd) throws(SyscallError) in
            try sysNonBlocking("read(\(fd))") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        }
        if case .done(let n) = result { return n }
        return nil
    }

    /// Tries one write without waiting: the byte count, or nil when the descriptor is full.
    public func tryWrite(_ buffer: UnsafeRawBufferPointer) throws -> Int? {
        let (result, _, _) = try registration.withOp { (fd) throws(SyscallError) in try writeOnce(fd, buffer) }
        if case .done(let n) = result { return n }
        return nil
    }

    /// Runs `body` on the descriptor as one operation: a concurrent `close()` waits for it, so
    /// the number cannot meanwhile be closed and reused for another file. Throws once closed.
    public func withDescriptor<T>(_ body: (Int32) throws(SyscallError) -> T) throws -> T {
        try registration.withOp(body).0
    }

    /// Clears O_NONBLOCK before the descriptor is handed to a child process as its stdio (the
    /// flag belongs to the shared file description, and most programs expect blocking I/O).
    /// After this the descriptor must not be used for async operations; close it once handed on.
    public func prepareForHandOff() throws {
        _ = try registration.withOp { fd throws(SyscallError) in
            let flags = try sys("fcntl(F_GETFL)") { shim_fcntl_getfl(fd) }
            return try sys("fcntl(F_SETFL)") { shim_fcntl_setfl(fd, flags & ~O_NONBLOCK) }
        }
    }

    // MARK: Sockets

    /// Half-closes the sending side: the peer reads EOF.
    public func shutdownWrite() throws {
        _ = try registration.withOp { (fd) throws(SyscallError) in
            try sys("shutdown(\(fd), SHUT_WR)") { Glibc.shutdown(fd, Int32(SHUT_WR)) }
        }
    }

    /// Half-closes the receiving side: a pending read returns EOF.
    public func shutdownRead() throws {
        _ = try registration.withOp { (fd) throws(SyscallError) in
            try sys("shutdown(\(fd), SHUT_RD)") { Glibc.shutdown(fd, Int32(SHUT_RD)) }
        }
    }

    /// Accepts one connection (for a listening socket).
    public func accept() async throws -> AsyncFD {
        while true {
            let (result, epoch, _) = try registration.withOp { (fd) throws(SyscallError) in
                try sysNonBlocking("accept(\(fd))") { shim_accept(fd) }
            }
            if case .done(let fd) = result { return try AsyncFD(OwnedFD(adopting: fd), loop: loop) }
            try await registration.waitReadable(after: epoch)
        }
    }

    /// Finishes a non-blocking `connect` that returned EINPROGRESS: waits until the socket is
    /// connected (getpeername succeeds) or reports an error (SO_ERROR).
    func finishConnect(_ what: String) async throws {
        while true {
            let (connected, _, epoch) = try registration.withOp { fd throws(SyscallError) -> Bool in
                let error = shim_so_error(fd)
                if error != 0 { throw SyscallError(what, errno: error) }
                var address = sockaddr_storage()
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let rc = withUnsafeMutablePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
                }
                if rc == 0 { return true }
                if Glibc.errno != ENOTCONN { throw SyscallError(what, errno: Glibc.errno) }
                return false
            }
            if connected { return }
            try await registration.waitWritable(after: epoch)
        }
    }

    /// A connected AF_UNIX stream socket pair, both registered with `loop`.
    public static func socketPair(loop: EventLoop = .shared) throws -> (AsyncFD, AsyncFD) {
        let pair = try Pipes.socketPair()
        let first = try AsyncFD(pair.first, loop: loop)
        return (first, try AsyncFD(pair.second, loop: loop))
    }
}
