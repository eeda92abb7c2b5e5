import Bridge
import EventLoop
import Glibc
import Shims

/// The Unix socket runc hands a container process's pty master to (`--console-socket`): we
/// listen before runc runs, accept its one connection, and receive exactly one descriptor via
/// SCM_RIGHTS (guest-behaviour §6.3).
struct ConsoleSocket: Sendable {
    let listener: UnixListener
    var path: String { listener.path }

    init(path: String, loop: EventLoop) throws {
        listener = try UnixListener(path: path, backlog: 1, loop: loop)
    }

    /// Waits for runc to connect and send the pty master; returns it (owned by the caller).
    func receiveMaster() async throws -> OwnedFDBox {
        let connection = try await listener.accept()
        defer { connection.close(); listener.close() }
        let fd = try await connection.readAttempt { (socket) throws(SyscallError) -> Int32? in
            var fd: Int32 = -1
            var byte: UInt8 = 0
            if shim_recv_fd(socket, &byte, 1, &fd) >= 0 { return fd }
            guard errno == EAGAIN || errno == EINTR else { throw SyscallError("recvmsg(console socket)", errno: errno) }
            return nil
        }
        guard fd >= 0 else { throw BridgeError(.fail, "console socket: runc sent no pty descriptor") }
        return OwnedFDBox(OwnedFD(adopting: fd))
    }

    func close() { listener.close() }

    /// Listens at `path`, runs `launch` (the runc invocation told to use this socket) while
    /// waiting for the pty master, and returns launch's result with the master's outcome. If
    /// launch fails, the socket is closed and the wait ended before the error is rethrown; a
    /// master that fails after launch succeeded is returned as a failure, for the caller to
    /// undo what runc did.
    static func receivingMaster<T: Sendable>(path: String, loop: EventLoop, isolation: isolated (any Actor)? = #isolation,
                                             _ launch: () async throws -> T) async throws -> (T, Result<OwnedFDBox, any Error>) {
        let console = try ConsoleSocket(path: path, loop: loop)
        async let master = console.receiveMaster()
        let launched: T
        do {
            launched = try await launch()
        } catch {
            console.close()
            _ = try? await master
            throw error
        }
        do { return (launched, .success(try await master)) } catch { return (launched, .failure(error)) }
    }
}
