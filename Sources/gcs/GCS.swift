// gcs: the guest compute service daemon. Dials the host's bridge, serves hcsshim's protocol v4,
// runs containers with runc. Flags follow hcsshim's gcs where they make sense (DaemonOptions).
import Agent
import EventLoop
import Glibc
import Logging
import Shims
import Synchronization

@main
enum GCS {
    /// Set when the host shut the VM down (rather than a signal stopping the agent).
    static let vmShutdownRequested = Atomic<Bool>(false)

    static func main() {
        _ = shim_malloc_single_arena()
        let options: DaemonOptions
        do {
            options = try DaemonOptions(arguments: Array(CommandLine.arguments.dropFirst()))
        } catch {
            printError("gcs: \(error)\n\(DaemonOptions.usage)\n")
            exit(2)
        }
        if options.helpRequested {
            print(DaemonOptions.usage)
            return
        }
        let logger: Logger
        do {
            logger = try makeLogger(options)
        } catch {
            printError("gcs: \(error)\n")
            exit(2)
        }
        var name = [CChar](repeating: 0, count: 256)
        let hostname = gethostname(&name, name.count) == 0 ? name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : "localhost"
        let configuration = options.configuration(hostname: hostname)
        let loop = EventLoop.shared
        let transport: any Transport = options.transport == "vsock"
            ? VsockTransport(loop: loop)
            : UnixSocketTransport(prefix: String(options.transport.dropFirst(5)), loop: loop)

        // The main thread only waits for the agent to finish. It is not an async main: that
        // parks the main thread with dispatch_main, whose pthread_exit unwinds the stack, and in
        // a static binary the first unwind sorts every unwind entry of the program (~2 MiB of
        // resident memory, for nothing). It blocks the signals the agent handles, so they are
        // delivered to the loop thread, which takes them in place (SignalSource unblocks them
        // there).
        SignalSource.blockInThisThread([SIGCHLD, SIGTERM, SIGINT])
        var finished: [Int32] = [-1, -1]
        guard shim_pipe2(&finished, O_CLOEXEC) == 0 else {
            logger.critical("pipe: errno \(errno)")
            exit(1)
        }
        let notifyEnd = finished[1]
        logger.info("gcs starting", metadata: ["transport": "\(options.transport)", "pid": "\(getpid())",
                                               "accepted without effect": "\(options.acceptedWithoutEffect)"])
        // Thousands of processes' stdio and pidfds need more than init's soft limit of 1,024:
        // up to the hard limit, as Go's runtime raises it for hcsshim's gcs. Processes the agent
        // starts (runc, external processes) get the original soft limit back, as in Go.
        var nofileBefore: UInt = 0, nofileAfter: UInt = 0
        if shim_raise_nofile_to_hard(&nofileBefore, &nofileAfter) != 0 {
            logger.warning("open file limit not raised", metadata: ["error": "\(String(cString: strerror(errno)))", "soft": "\(nofileBefore)"])
        } else if nofileAfter != nofileBefore {
            logger.info("open file limit raised", metadata: ["from": "\(nofileBefore)", "to": "\(nofileAfter)", "children": "\(nofileBefore)"])
        }
        if let pattern = options.coreDumpLocation {
            do { try CoreDumpLocation.apply(pattern) } catch { logger.error("core dump location not set", metadata: ["error": "\(error)"]) }
        }
        Task(executorPreference: loop) {
            var status: UInt8 = 0
            do {
                let kernelLog = KernelLogForwarder.start(maxLevel: options.kernelLogLevel, loop: loop, logger: logger)
                defer { kernelLog?.cancel() }
                let memoryWatch = options.agentCgroup.isEmpty ? nil
                    : AgentCgroup.join(path: options.agentCgroup, threshold: options.agentMemoryThreshold, loop: loop, logger: logger)
                defer { memoryWatch?.cancel() }
                try await serve(configuration: configuration, transport: transport, timeSync: options.disableTimeSync ? nil : options.timeSync,
                                loop: loop, logger: logger)
            } catch {
                logger.critical("gcs failed: \(error)")
                status = 1
            }
            _ = write(notifyEnd, &status, 1)
        }
        var status: UInt8 = 1
        while read(finished[0], &status, 1) < 0 && errno == EINTR {}
        if vmShutdownRequested.load(ordering: .relaxed) && options.vmShutdown == .powerOff {
            // As hcsshim's gcs does: the host waits for the VM to stop, and its init is not
            // told to power off (exiting would only make the kernel panic).
            logger.notice("powering the VM off")
            if shim_power_off() != 0 { logger.critical("reboot(RB_POWER_OFF) failed: errno \(errno)") }
        }
        exit(Int32(status))
    }

    /// Runs the agent until SIGTERM/SIGINT or the host's shutdown of the VM: the reaper, the host registry, the bridge
    /// connection loop (which re-dials after disconnects). Containers are left running.
    static func serve(configuration: AgentConfiguration, transport: any Transport, timeSync: TimeSync?, loop: EventLoop,
                      logger: Logger) async throws {
        let reaper = try await Reaper(loop: loop)
        let chronyd = timeSync?.start(reaper: reaper, loop: loop, logger: logger)
        let connections = BridgeConnectionLoop(transport: transport, loop: loop, logger: logger)
        // The host's shutdown of the VM stops serving like SIGTERM does; `main` then powers the
        // VM off (or exits, `--vm-shutdown exit`).
        let host = AgentHost(configuration: configuration, transport: transport, reaper: reaper, loop: loop, logger: logger,
                             link: connections.link, onVMShutdown: { GCS.vmShutdownRequested.store(true, ordering: .relaxed); connections.stop() }) {
            await connections.send($0)
        }
        let podsLimit = host.maintainPodsMemoryLimit()
        let stopSignals = try await SignalSource(signals: [SIGTERM, SIGINT], mechanism: .handler, loop: loop)
        let stopper = Task(executorPreference: loop) {
            guard let signal = try? await stopSignals.next() else { return }
            logger.notice("stopping on signal \(signal); containers are left running")
            connections.stop()
            // A second signal while the stop waits (a request's handler still ending): now.
            guard let again = try? await stopSignals.next() else { return }
            logger.critical("signal \(again) again while stopping: exiting at once")
            exit(128 + again)
        }
        await connections.run(host: host)
        stopper.cancel()
        podsLimit.cancel()
        chronyd?.cancel()
        logger.info("gcs stopped")
    }

    /// Writes `text` to standard error (fd 2).
    static func printError(_ text: String) {
        var text = text
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    /// What can be wrong with the logging flags.
    struct LoggingError: Error, CustomStringConvertible {
        var description: String
    }

    static func makeLogger(_ options: DaemonOptions) throws(LoggingError) -> Logger {
        guard let level = DaemonOptions.logLevel(options.logLevel) else { throw LoggingError(description: "unknown log level \(options.logLevel)") }
        if let logFile = options.logFile {
            // Like hcsshim's gcs: the log file replaces stderr (truncated, mode 0600).
            let fd = open(logFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw LoggingError(description: "cannot open log file \(logFile): errno \(errno)") }
            _ = dup2(fd, 2)
            close(fd)
        }
        if options.logFormat == "json" {
            LoggingSystem.bootstrap { label in JSONLogHandler(logLevel: level, label: label) }
        } else {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        return Logger(label: "gcs")
    }
}
