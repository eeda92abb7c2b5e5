import Glibc
import Shims

/// How the agent reaches the host: it dials a port and gets a byte stream. In a utility VM that
/// is AF_VSOCK to the host (CID 2); in tests and local runs it is a Unix socket per port.
public protocol Transport: Sendable {
    /// Connects to the host's listener on `port`.
    func dial(port: UInt32) async throws -> AsyncFD
    /// One connection attempt, without the retries `dial` may make: for callers that retry on
    /// their own terms (a re-dial loop that must notice its deadline between attempts).
    func dialOnce(port: UInt32) async throws -> AsyncFD
}

extension Transport {
    public func dialOnce(port: UInt32) async throws -> AsyncFD { try await dial(port: port) }
}

/// The production transport: AF_VSOCK to `cid` (the host is CID 2). A connect that times out
/// (a historical hv_sock quirk) is retried up to 10 times, 100 ms apart, as hcsshim's GCS does.
public struct VsockTransport: Transport {
    public static let hostCID: UInt32 = 2
    public let cid: UInt32
    public let loop: EventLoop

    public init(cid: UInt32 = VsockTransport.hostCID, loop: EventLoop = .shared) {
        self.cid = cid
        self.loop = loop
    }

    public func dial(port: UInt32) async throws -> AsyncFD {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await dialOnce(port: port)
            } catch let error as SyscallError where error.errno == ETIMEDOUT && attempt < 10 {
                try await loop.sleep(for: .milliseconds(100))
            }
        }
    }

    public func dialOnce(port: UInt32) async throws -> AsyncFD {
        let what = "connect(vsock \(cid):\(port))"
        let fd = try sys("socket(AF_VSOCK)") { shim_socket(AF_VSOCK, Int32(SOCK_STREAM.rawValue)) }
        let socket = try AsyncFD(OwnedFD(adopting: fd), loop: loop)
        let cid = self.cid
        let (result, _, _) = try socket.registration.withOp { fd throws(SyscallError) in
            try sysNonBlocking(what) { () -> Int32 in
                let rc = shim_connect_vsock(fd, cid, port)
                return rc < 0 && Glibc.errno == EINPROGRESS ? 0 : rc
            }
        }
        // EAGAIN from connect (hv_sock when the host refuses VMBus messages posted too often)
        // is a failed attempt: the socket is left in SYN_SENT with no timeout armed and would
        // never become writable. Go's blocking vsock.Dial returns it as an error too.
        guard case .done = result else {
            socket.close()
            throw SyscallError(what, errno: EAGAIN)
        }
        try await socket.finishConnect(what)
        return socket
    }
}

/// The test and local transport (Firecracker's hybrid-vsock convention): port P is the Unix
/// socket `<prefix>_<P>`, on which the host side listens.
public struct UnixSocketTransport: Transport {
    public let prefix: String
    public let loop: EventLoop

    public init(prefix: String, loop: EventLoop = .shared) {
        self.prefix = prefix
        self.loop = loop
    }

    /// The socket path for `port`.
    public func path(forPort port: UInt32) -> String { "\(prefix)_\(port)" }

    public func dial(port: UInt32) async throws -> AsyncFD {
        try await UnixSocket.connect(path: path(forPort: port), loop: loop)
    }
}

/// Unix-socket client helpers shared by the transport and the listeners' users.
public enum UnixSocket {
    /// Connects a stream socket to `path`. A full listen backlog (EAGAIN) is retried after 1 ms,
    /// up to one second, rather than failing a burst of dials.
    public static func connect(path: String, loop: EventLoop = .shared) async throws -> AsyncFD {
        let what = "connect(\(path))"
        var attempts = 0
        while true {
            let fd = try sys("socket(AF_UNIX)") { shim_socket(AF_UNIX, Int32(SOCK_STREAM.rawValue)) }
            let socket = try AsyncFD(OwnedFD(adopting: fd), loop: loop)
            let (result, _, _) = try socket.registration.withOp { fd throws(SyscallError) in
                try sysNonBlocking(what) { () -> Int32 in
                    let rc = path.withCString { shim_connect_unix(fd, $0) }
                    return rc < 0 && Glibc.errno == EINPROGRESS ? 1 : rc
                }
            }
            if case .done(let inProgress) = result {
                // A Unix stream connect normally completes at once (0); only EINPROGRESS (1
                // here) needs the wait for writability.
                if inProgress == 1 { try await socket.finishConnect(what) }
                return socket
            }
            socket.close()
            attempts += 1
            if attempts > 1000 { throw SyscallError(what, errno: EAGAIN) }
            try await loop.sleep(for: .milliseconds(1))
        }
    }
}

/// A listening Unix stream socket: the host side of `UnixSocketTransport` in tests, benchmarks
/// and the local demo host, and runc's console socket in the agent.
public final class UnixListener: Sendable {
    public let path: String
    let socket: AsyncFD

    /// Binds and listens on `path`, replacing a stale socket file left there.
    public init(path: String, backlog: Int32 = 1024, loop: EventLoop = .shared) throws {
        self.path = path
        _ = unlink(path)
        let fd = try sys("socket(AF_UNIX)") { shim_socket(AF_UNIX, Int32(SOCK_STREAM.rawValue)) }
        let owned = OwnedFD(adopting: fd)
        _ = try sys("bind(\(path))") { path.withCString { shim_bind_unix(fd, $0) } }
        _ = try sys("listen(\(path))") { Glibc.listen(fd, backlog) }
        socket = try AsyncFD(owned, loop: loop)
    }

    /// Waits for and accepts the next connection.
    public func accept() async throws -> AsyncFD { try await socket.accept() }

    /// Stops listening and removes the socket file.
    public func close() {
        if !socket.isClosed { _ = unlink(path) }
        socket.close()
    }

    deinit { close() }
}
