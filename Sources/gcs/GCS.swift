// gcs: the guest compute service daemon. Dials the host's bridge, serves hcsshim's protocol v4,
// runs containers with runc. Flags follow hcsshim's gcs where they make sense.
import Agent
import ArgumentParser
import EventLoop
import Glibc
import Logging

@main
struct GCS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gcs", abstract: "Linux guest agent for Hyper-V utility VMs (hcsshim bridge protocol v4).")

    @Option(name: .customLong("loglevel", withSingleDash: true), help: "trace, debug, info, warning, error")
    var logLevel = "info"

    @Option(name: .customLong("logfile", withSingleDash: true), help: "Log file (default: stderr).")
    var logFile: String?

    @Option(name: .customLong("log-format", withSingleDash: true), help: "text or json.")
    var logFormat = "text"

    @Flag(name: .customLong("v4", withSingleDash: true), help: "Accepted for hcsshim compatibility: protocol v4 is always on.")
    var v4 = false

    @Option(name: .long, help: "vsock (to the host, CID 2) or unix:<prefix> (port P is the socket <prefix>_<P>).")
    var transport = "vsock"

    @Option(name: .long, help: "Agent state directory (per-container runc files).")
    var runDirectory = "/var/run/gcsrunc"

    @Option(name: .long, help: "runc --root (default: runc's own).")
    var runcRoot: String?

    @Option(name: .long, help: "runc binary.")
    var runc = "/usr/sbin/runc"

    @Option(name: .long, help: "cgroup parent for containers.")
    var cgroupParent = "/pods"

    @Option(name: .long, help: "stdio of processes exec'd into containers without a tty: relay (pipes + relay) or pass-through (the host's connections as fds 0-2).")
    var execStdio = "pass-through"

    mutating func run() async throws {
        let logger = try makeLogger()
        let loop = EventLoop.shared
        let hostTransport: any Transport
        if transport == "vsock" {
            hostTransport = VsockTransport(loop: loop)
        } else if transport.hasPrefix("unix:") {
            hostTransport = UnixSocketTransport(prefix: String(transport.dropFirst(5)), loop: loop)
        } else {
            throw ValidationError("--transport must be vsock or unix:<prefix>")
        }
        var configuration = AgentConfiguration()
        configuration.runDirectory = runDirectory
        configuration.runcRoot = runcRoot
        configuration.runcBinary = runc
        configuration.cgroupParent = cgroupParent
        guard let mode = AgentConfiguration.ExecStdio(rawValue: execStdio) else {
            throw ValidationError("--exec-stdio must be relay or pass-through")
        }
        configuration.execStdio = mode
        var name = [CChar](repeating: 0, count: 256)
        if gethostname(&name, name.count) == 0 { configuration.hostname = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } }

        let reaper = try await Reaper(loop: loop)
        let connections = BridgeConnectionLoop(transport: hostTransport, loop: loop, logger: logger)
        let host = AgentHost(configuration: configuration, transport: hostTransport, reaper: reaper, loop: loop, logger: logger) {
            await connections.send($0)
        }
        let stopSignals = try await SignalSource(signals: [SIGTERM, SIGINT], mechanism: .handler, loop: loop)
        let stopper = Task(executorPreference: loop) {
            if let signal = try? await stopSignals.next() {
                logger.notice("stopping on signal \(signal); containers are left running")
                connections.stop()
            }
        }
        logger.info("gcs starting", metadata: ["transport": "\(self.transport)", "pid": "\(getpid())"])
        await withTaskExecutorPreference(loop) { await connections.run(host: host) }
        stopper.cancel()
        logger.info("gcs stopped")
    }

    private func makeLogger() throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel == "fatal" || logLevel == "panic" ? "critical" : logLevel) else {
            throw ValidationError("unknown log level \(logLevel)")
        }
        if let logFile {
            // Like hcsshim's gcs: the log file replaces stderr (truncated, mode 0600).
            let fd = open(logFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ValidationError("cannot open log file \(logFile)") }
            _ = dup2(fd, 2)
            close(fd)
        }
        switch logFormat {
        case "json":
            LoggingSystem.bootstrap { label in JSONLogHandler(logLevel: level, label: label) }
        case "text":
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        default:
            throw ValidationError("-log-format must be text or json")
        }
        return Logger(label: "gcs")
    }
}
