import Glibc
import Shims

/// The unique owner of a raw file descriptor. Being `~Copyable`, it cannot be duplicated by
/// accident: the descriptor is closed exactly once, in `deinit`, unless ownership is handed on
/// with `release()` (to an `AsyncFD`, a child process, or a relay).
public struct OwnedFD: ~Copyable {
    /// The raw descriptor; valid for as long as this owner lives.
    public let rawValue: Int32

    /// Takes ownership of `fd`, which must be open and owned by no one else.
    public init(adopting fd: Int32) {
        precondition(fd >= 0, "OwnedFD(adopting: \(fd))")
        self.rawValue = fd
    }

    /// Gives up ownership without closing; the caller now owns the descriptor.
    public consuming func release() -> Int32 {
        let fd = rawValue
        discard self
        return fd
    }

    /// Closes the descriptor now (ownership ends here).
    public consuming func close() {}

    deinit {
        // close(2) must not be retried on EINTR on Linux: the descriptor is already released.
        _ = Glibc.close(rawValue)
    }

    /// Sets or clears O_NONBLOCK.
    public func setNonBlocking(_ on: Bool = true) throws(SyscallError) {
        let fd = rawValue
        let flags = try sys("fcntl(F_GETFL)") { shim_fcntl_getfl(fd) }
        let wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted != flags { _ = try sys("fcntl(F_SETFL)") { shim_fcntl_setfl(fd, wanted) } }
    }

    /// Whether the descriptor refers to a pipe (or FIFO): such an end can be spliced directly.
    public var isPipe: Bool {
        var st = stat()
        return fstat(rawValue, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO
    }

    /// Duplicates the descriptor (close-on-exec) into a new owner.
    public func duplicate() throws(SyscallError) -> OwnedFD {
        let fd = rawValue
        return OwnedFD(adopting: try sys("fcntl(F_DUPFD_CLOEXEC)") { fcntl(fd, F_DUPFD_CLOEXEC, 0) })
    }
}

/// Two fresh descriptors made together (a pipe's ends, a socket pair), each uniquely owned.
@frozen
public struct FDPair: ~Copyable {
    /// The pipe's read end, or the first socket.
    public var first: OwnedFD
    /// The pipe's write end, or the second socket.
    public var second: OwnedFD
}

/// Factories for the descriptor pairs the agent and its tests need, all close-on-exec.
public enum Pipes {
    /// A pipe: `first` is the read end, `second` the write end.
    public static func make(nonBlocking: Bool = true) throws(SyscallError) -> FDPair {
        var fds: (Int32, Int32) = (-1, -1)
        let flags = O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0)
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(SyscallError) -> Int32 in
            let p = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            return try sys("pipe2") { shim_pipe2(p, flags) }
        }
        return FDPair(first: OwnedFD(adopting: fds.0), second: OwnedFD(adopting: fds.1))
    }

    /// A connected AF_UNIX stream socket pair, non-blocking.
    public static func socketPair() throws(SyscallError) -> FDPair {
        var fds: (Int32, Int32) = (-1, -1)
        _ = try withUnsafeMutableBytes(of: &fds) { (raw) throws(SyscallError) -> Int32 in
            let p = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            return try sys("socketpair") { shim_socketpair(Int32(SOCK_STREAM.rawValue), p) }
        }
        return FDPair(first: OwnedFD(adopting: fds.0), second: OwnedFD(adopting: fds.1))
    }
}
