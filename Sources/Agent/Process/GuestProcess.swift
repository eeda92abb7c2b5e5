import Bridge
import EventLoop
import Glibc
import Synchronization

/// One process the agent started (a container's init, an exec in a container, or a process
/// run directly in the VM). It owns the pid, the stdio relays and the exit status: the exit is
/// taken from the agent's Reaper, the output drained, and only then published to waiters.
public actor GuestProcess {
    public let pid: pid_t
    /// The command line, for diagnostics and the process list.
    public let arguments: [String]
    let io: ProcessIO
    let latch = ExitLatch()
    /// Set as soon as the reaper has the exit, before the output is drained and the code
    /// published: from then on the pid is free for the kernel to reuse, so it is never signalled.
    let reaped = Atomic<Bool>(false)
    private var monitor: Task<Void, Never>?
    /// How exit statuses map to exit codes: containers report 128+signal, external processes
    /// report -1 (sent as 4294967295) when signalled, as hcsshim's guest does.
    let signalledCode: @Sendable (Int32) -> UInt32

    init(pid: pid_t, arguments: [String], io: ProcessIO, signalledCode: @escaping @Sendable (Int32) -> UInt32) {
        self.pid = pid
        self.arguments = arguments
        self.io = io
        self.signalledCode = signalledCode
    }

    /// Starts the relays and the exit monitor (on `loop`, where the exit wake-up arrives, so
    /// publishing it costs no thread hop). `onReaped` runs once the process is reaped, before
    /// its output is drained; `onExit` after the exit is published.
    func start(reaper: Reaper, loop: EventLoop, onReaped: (@Sendable () async -> Void)? = nil,
               onExit: @escaping @Sendable (UInt32) async -> Void = { _ in }) {
        io.start()
        let latch = self.latch, io = self.io, pid = self.pid, mapSignal = signalledCode
        monitor = Task(executorPreference: loop) { [self] in
            let status = await reaper.wait(pid: pid)
            reaped.store(true, ordering: .releasing)
            if let onReaped { await onReaped() }
            await io.finish()
            let code: UInt32
            switch status {
            case .exited(let value): code = UInt32(truncatingIfNeeded: value)
            case .signaled(let signal): code = mapSignal(signal)
            }
            latch.publish(code)
            await onExit(code)
        }
    }

    /// The exit code once published.
    public nonisolated var exitCode: UInt32? { latch.code }

    /// Waits for the exit (WaitForProcess).
    public nonisolated func wait(timeoutMs: UInt32?, loop: EventLoop) async throws -> UInt32 {
        try await latch.wait(timeoutMs: timeoutMs, loop: loop)
    }

    /// Called once per `wait` that returned the code, when its answer has gone out.
    public nonisolated func acknowledgeExit() { latch.acknowledge() }

    /// Called instead of `acknowledgeExit` when the answer could not go out (no connection).
    public nonisolated func withdrawExit() { latch.withdraw() }

    /// True once the exit code has been answered to the host, false if that will not happen
    /// (see `ExitLatch.answered`).
    public nonisolated func exitAnswered() async -> Bool {
        await latch.answered()
    }

    /// Nobody will wait any more: `exitAnswered()` returns false.
    public nonisolated func abandonExitAnswer() {
        latch.abandonAnswer()
    }

    /// Its start failed (`runc start`): stop relaying and close the host's connections, rather
    /// than rely on the process dying to end them.
    nonisolated func abortIO() { io.abort() }

    /// Sends `signal` (SignalProcess). A process that is gone answers ERROR_NOT_FOUND.
    public nonisolated func signal(_ signal: Int32) throws {
        let gone = reaped.load(ordering: .acquiring)
        if gone || Glibc.kill(pid, signal) != 0 {
            let code = gone ? ESRCH : errno
            if code == ESRCH { throw BridgeError(.notFound, "process \(pid) not found") }
            throw BridgeError(.fail, "kill(\(pid), \(signal)): \(SyscallError("kill", errno: code))")
        }
    }

    /// Resizes its terminal (ResizeConsole).
    public nonisolated func resize(height: UInt16, width: UInt16) throws {
        do { try io.resize(height: height, width: width) } catch let error as BridgeError {
            throw BridgeError(error.hresult, "pid: \(pid), \(error.message)")
        }
    }

    /// A line for DumpStacks: pid, state, relays with their byte counters and backpressure.
    public nonisolated func describe() -> String {
        var line = "  process \(pid) \(arguments.prefix(4).joined(separator: " "))"
        line += exitCode.map { " exited(\($0))" } ?? " running"
        for relay in io.relays {
            line += "\n    relay \(relay.mechanismDescription) \(relay.bytesMoved) bytes"
            if relay.isBackpressured { line += " backpressured" }
            if relay.isFinished { line += " done" }
        }
        return line
    }
}
