import Bridge
import EventLoop
import Glibc
import Logging
import Shims

/// The host's stdio connections for one process, dialled in the order stdin, stdout, stderr
/// before the process starts (guest-behaviour §6.1). A failed dial closes the ones made.
public struct StdioConnections: Sendable {
    public var stdin: AsyncFD?
    public var stdout: AsyncFD?
    public var stderr: AsyncFD?

    public init(stdin: AsyncFD? = nil, stdout: AsyncFD? = nil, stderr: AsyncFD? = nil) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }

    /// Dials the ports whose `CreateStd*Pipe` flag is set (a port of 0 is not dialled).
    public static func dial(_ transport: any Transport, ports: VsockStdioRelaySettings,
                            stdin: Bool, stdout: Bool, stderr: Bool) async throws -> StdioConnections {
        var result = StdioConnections()
        do {
            if stdin && ports.stdIn != 0 { result.stdin = try await transport.dial(port: ports.stdIn) }
            if stdout && ports.stdOut != 0 { result.stdout = try await transport.dial(port: ports.stdOut) }
            if stderr && ports.stdErr != 0 { result.stderr = try await transport.dial(port: ports.stdErr) }
        } catch {
            result.closeAll()
            throw BridgeError(.fail, "dialing stdio to the host: \(error)")
        }
        return result
    }

    /// Readies the connections to become a child's fds 0-2 (blocking mode, as a process
    /// expects of its stdio) and returns them in that order (nil: not connected, /dev/null).
    /// The caller spawns with them, then `closeAll()`s its own copies: the agent leaves the
    /// data path.
    public func handOff() throws -> [Int32?] {
        for conn in [stdin, stdout, stderr].compactMap({ $0 }) { try conn.prepareForHandOff() }
        return [stdin?.rawValue, stdout?.rawValue, stderr?.rawValue]
    }

    public func closeAll() {
        stdin?.close()
        stdout?.close()
        stderr?.close()
    }
}

/// The agent's side of a process's stdio while it runs: the relays between the host's
/// connections and the process's pipes or pty (the agent interposes), or nothing at all when
/// the process holds the connections itself (external processes without a terminal).
///
/// `finish()` implements the exit ordering of guest-behaviour §6.2/§6.3: release the stdin
/// relay, let stdout/stderr drain completely, do the clean-close handshake, close everything.
/// The process's exit is reported only after that, so no output is ever lost.
public final class ProcessIO: Sendable {
    let stdinRelay: Relay?
    let outputRelays: [Relay]
    let connections: StdioConnections
    /// The pty master kept for resizing (nil without a terminal), and the second descriptor of
    /// it that the stdin relay writes to.
    let terminal: AsyncFD?
    let terminalWriter: AsyncFD?

    init(stdinRelay: Relay?, outputRelays: [Relay], connections: StdioConnections, terminal: AsyncFD? = nil, terminalWriter: AsyncFD? = nil) {
        self.stdinRelay = stdinRelay
        self.outputRelays = outputRelays
        self.connections = connections
        self.terminal = terminal
        self.terminalWriter = terminalWriter
    }

    /// No interposition: the process holds the host connections itself (or has none).
    static func direct(_ connections: StdioConnections) -> ProcessIO {
        ProcessIO(stdinRelay: nil, outputRelays: [], connections: connections)
    }

    /// Pipes between the process and the host: `pipes` are the agent's ends (stdin write end,
    /// stdout and stderr read ends); a stream the host did not ask for is closed here. With
    /// `redial`, stdout and stderr outlive a host reconnect (`StdioRedial`); with `tee`, what
    /// they relay is also appended to that file.
    static func pipes(_ connections: StdioConnections, stdinWrite: AsyncFD?, stdoutRead: AsyncFD?, stderrRead: AsyncFD?,
                      redial: (stdout: (@Sendable () async -> AsyncFD?)?, stderr: (@Sendable () async -> AsyncFD?)?) = (nil, nil),
                      tee: TeeFile? = nil) -> ProcessIO {
        var stdinRelay: Relay?
        if let conn = connections.stdin, let pipe = stdinWrite {
            stdinRelay = Relay(from: conn, to: pipe)
        } else {
            stdinWrite?.close()  // the process reads EOF at once
        }
        var outputs: [Relay] = []
        for (pipe, conn, redial) in [(stdoutRead, connections.stdout, redial.stdout), (stderrRead, connections.stderr, redial.stderr)] {
            guard let pipe else { continue }
            var options = Relay.Options()
            options.redial = redial
            options.tee = tee
            if let conn { outputs.append(Relay(from: pipe, to: conn, options: options)) } else { pipe.close() }
        }
        return ProcessIO(stdinRelay: stdinRelay, outputRelays: outputs, connections: connections)
    }

    /// A terminal: stdin -> pty master, pty master -> stdout. stderr is never used with a tty.
    /// Each direction gets its own descriptor of the master (relays own one registration each).
    static func terminal(_ connections: StdioConnections, master: consuming OwnedFD, loop: EventLoop,
                         redial: (@Sendable () async -> AsyncFD?)? = nil, tee: TeeFile? = nil) throws -> ProcessIO {
        let writer = try master.duplicate()
        let reader = try AsyncFD(master, loop: loop)
        let masterIn = try AsyncFD(writer, loop: loop, writeOnly: true)
        var stdinRelay: Relay?
        if let conn = connections.stdin {
            var options = Relay.Options()
            options.onSourceEOF = .none  // host EOF on stdin injects nothing into the terminal
            stdinRelay = Relay(from: conn, to: masterIn, options: options)
        }
        var outputs: [Relay] = []
        if let conn = connections.stdout {
            var options = Relay.Options()
            options.closeSourceAtEnd = false  // kept for resize until finish()
            options.redial = redial
            options.tee = tee
            outputs.append(Relay(from: reader, to: conn, options: options))
        }
        connections.stderr?.close()
        return ProcessIO(stdinRelay: stdinRelay, outputRelays: outputs, connections: connections,
                         terminal: reader, terminalWriter: masterIn)
    }

    /// Starts the relays.
    func start() {
        stdinRelay?.start()
        for relay in outputRelays { relay.start() }
    }

    /// After the process exited: stop stdin, drain stdout/stderr, handshake, close.
    func finish() async {
        if let conn = connections.stdin {
            try? conn.shutdownRead()
        }
        for relay in outputRelays {
            _ = await relay.wait()
        }
        // The connections the output went out on at the end (a re-dialled relay's are new).
        var outputEnds = [connections.stdout, connections.stderr].compactMap { $0 }
        for relay in outputRelays where !outputEnds.contains(where: { $0 === relay.destination }) {
            outputEnds.append(relay.destination)
        }
        if terminal == nil {
            // Clean-close handshake: the host closes its end once it has read everything.
            for conn in outputEnds where !conn.isClosed {
                _ = try? await conn.read(upTo: 1)
            }
        }
        if let relay = stdinRelay { relay.cancel(); _ = await relay.wait() }
        terminal?.close()
        terminalWriter?.close()
        connections.closeAll()
        for conn in outputEnds { conn.close() }
    }

    /// A start that failed after the relays began: stops them and closes the host's
    /// connections now, whether or not the process is ever reaped (a `finish` after this finds
    /// them ended and closed). Waits for nothing, so it cannot race `finish` for a relay's end.
    func abort() {
        for relay in relays { relay.cancel() }
        connections.closeAll()
    }

    /// Resizes the terminal (`TIOCSWINSZ`); no-op once the relay has closed it, an error when
    /// the ioctl fails (as Go's guest answers).
    func resize(height: UInt16, width: UInt16) throws {
        guard let terminal else { throw BridgeError(.fail, "is not a tty and cannot be resized") }
        // Inside an operation on the master: a close by the exit's teardown, on another thread,
        // waits for it (the fd number cannot be another terminal's by then).
        do {
            try terminal.withDescriptor { fd throws(SyscallError) in
                if shim_ioctl_set_winsize(fd, height, width) != 0 { throw SyscallError("ioctl(TIOCSWINSZ)", errno: errno) }
            }
        } catch let error as SyscallError {
            throw BridgeError(.fail, "resizing the terminal to \(height)x\(width): \(error)")
        } catch {
            // Closed by the exit's teardown: nothing left to resize.
        }
    }

    /// Relays for diagnostics (dump stacks).
    var relays: [Relay] { (stdinRelay.map { [$0] } ?? []) + outputRelays }
}

