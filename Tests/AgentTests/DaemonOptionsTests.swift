import Agent
import Bridge
import EventLoop
import Glibc
import HostSupport
import Logging
import Shims
import Testing

@Suite("gcs command line", .timeLimit(.minutes(5)))
struct DaemonOptionsTests {
    @Test("hcsshim's flags in Go's forms: one or two dashes, separate or =value, -v4 as a boolean")
    func goForms() throws {
        let options = try DaemonOptions(arguments: ["-loglevel", "debug", "--logfile=/tmp/x.log", "-log-format=json", "-v4",
                                                    "--transport", "unix:/tmp/p", "-run-directory", "/r", "--runc-root=/rr",
                                                    "--runc", "/bin/runc", "--cgroup-parent", "/c", "--exec-stdio=relay",
                                                    "-root-mem-reserve-bytes", "1048576"])
        var expected = DaemonOptions()
        expected.logLevel = "debug"
        expected.logFile = "/tmp/x.log"
        expected.logFormat = "json"
        expected.transport = "unix:/tmp/p"
        expected.runDirectory = "/r"
        expected.runcRoot = "/rr"
        expected.runc = "/bin/runc"
        expected.cgroupParent = "/c"
        expected.execStdio = .relay
        expected.rootMemoryReserve = 1 << 20
        #expect(options == expected)
        let configuration = options.configuration(hostname: "uvm")
        #expect(configuration.runcRoot == "/rr" && configuration.execStdio == .relay && configuration.hostname == "uvm")
        #expect(configuration.rootMemoryReserve == 1 << 20)
    }

    @Test("the flags hcsshim adds by its options are accepted: the agent starts whatever the host's configuration")
    func hcsshimCommandLines() throws {
        // create_lcow.go: ExecCommandLine, then -disable-time-sync and -scrub-logs by option,
        // then -core-dump-location.
        let options = try DaemonOptions(arguments: ["-v4", "-log-format", "json", "-loglevel", "debug", "-disable-time-sync",
                                                    "-scrub-logs", "-core-dump-location", "/tmp/cores/core.%p"])
        #expect(options.logFormat == "json" && options.logLevel == "debug")
        #expect(options.coreDumpLocation == "/tmp/cores/core.%p")
        #expect(options.acceptedWithoutEffect == ["-scrub-logs"])
        #expect(options.disableTimeSync)
        let enabled = try DaemonOptions(arguments: ["-disable-time-sync", "--ptp-class-dir", "/p", "--chronyd=/c", "--chronyd-config", "/f",
                                                    "-disable-time-sync=false"])
        #expect(!enabled.disableTimeSync)
        #expect(enabled.timeSync.ptpClassDirectory == "/p" && enabled.timeSync.chronyd == "/c" && enabled.timeSync.configurationPath == "/f")
        let more = try DaemonOptions(arguments: ["-scrub-logs=false", "-kmsgLogLevel", "4", "--gcs-mem-limit-bytes=52428800",
                                                 "-initial-policy-stance", "allow", "-use-inouterr=false"])
        #expect(more.acceptedWithoutEffect.isEmpty && more.agentMemoryThreshold == 52_428_800)
        #expect(more.kernelLogLevel == 4)
        #expect(try DaemonOptions(arguments: ["-kmsgLogLevel=9"]).kernelLogLevel == 7)
    }

    @Test("gcs starts and serves with the command line hcsshim gives it")
    func startsWithHcsshimFlags() async throws {
        try await withGuest("hcsshim-flags", arguments: ["-log-format", "json", "-disable-time-sync", "-scrub-logs"]) { guest in
            let result = try await guest.run(.utilityVM, args: ["/bin/sh", "-c", "echo serving"])
            #expect(result.stdoutText == "serving\n")
            #expect(guest.log().contains("\"msg\":\"gcs starting\""), "\(guest.log().prefix(500))")
        }
    }

    @Test("the core dump location is written verbatim")
    func coreDumpLocation() throws {
        let file = "/tmp/gcs-core-pattern-\(getpid())"
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #expect(fd >= 0)
        close(fd)
        defer { unlink(file) }
        try CoreDumpLocation.apply("|/bin/dump %p", file: file)
        #expect(String(decoding: try HostFiles.read(file), as: UTF8.self) == "|/bin/dump %p")
        #expect(throws: BridgeError.self) { try CoreDumpLocation.apply("x", file: "/nonexistent/dir/core_pattern") }
    }

    @Test("defaults are the production ones")
    func defaults() throws {
        let options = try DaemonOptions(arguments: [])
        #expect(options.transport == "vsock" && options.runDirectory == "/var/run/gcsrunc" && options.execStdio == .relay)
        #expect(options.cgroupParent == "/pods" && options.rootMemoryReserve == 78_643_200)
        #expect(options.agentCgroup == "/gcs" && options.agentMemoryThreshold == 50 << 20)
        #expect(try DaemonOptions(arguments: ["--gcs-cgroup", ""]).agentCgroup.isEmpty)
        #expect(try DaemonOptions(arguments: ["--cgroup-parent", "k8s//pods/"]).cgroupParent == "/k8s/pods")
        #expect(try DaemonOptions(arguments: ["-v4=true", "--help"]).helpRequested)
        // The host's VM shutdown powers off, as hcsshim's gcs does; `exit` only when asked.
        #expect(options.vmShutdown == .powerOff)
        #expect(try DaemonOptions(arguments: ["--vm-shutdown", "exit"]).vmShutdown == .exit)
    }

    @Test("bad command lines are refused with a reason", arguments: [
        ["-bogus"], ["-loglevel"], ["stray"], ["--transport", "tcp:1"], ["--transport=unix:"], ["-log-format", "xml"],
        ["--exec-stdio", "splice"], ["-v4=maybe"], ["--"], ["-root-mem-reserve-bytes", "-1"], ["-root-mem-reserve-bytes=75MiB"],
        ["-initial-policy-stance", "deny"], ["-use-inouterr"], ["-disable-time-sync=maybe"], ["-kmsgLogLevel", "warning"], ["-gcs-mem-limit-bytes", "50MiB"], ["--gcs-cgroup"], ["--gcs-cgroup", "/pods/"], ["--gcs-cgroup", "pods/gcs"],
        ["--gcs-cgroup", "/k8s", "--cgroup-parent", "/k8s/pods"], ["--vm-shutdown", "halt"], ["--vm-shutdown"], ["--cgroup-parent", "/"],
    ])
    func refused(_ arguments: [String]) {
        #expect(throws: DaemonOptions.UsageError.self) { try DaemonOptions(arguments: arguments) }
    }

    @Test("a gcs that exits before dialling (a bad flag) fails LocalGuest.start at once, instead of leaving it waiting")
    func localGuestSeesEarlyExit() async throws {
        let work = "/tmp/gcs-early-exit-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { HostFiles.removeTree(work) }
        var logger = Logger(label: "early-exit")
        logger.logLevel = .critical
        await #expect(throws: LocalGuestError.self) {
            _ = try await LocalGuest.start(gcsBinary: gcsBinary(), workDirectory: work, extraArguments: ["--no-such-flag"], logger: logger)
        }
    }
}

@Suite("Logging", .timeLimit(.minutes(5)))
struct LoggingTests {
    @Test("-loglevel is read as logrus reads it: any case, warn or warning, panic and fatal as critical")
    func levels() {
        #expect(DaemonOptions.logLevel("WARN") == .warning && DaemonOptions.logLevel("warning") == .warning)
        #expect(DaemonOptions.logLevel("Info") == .info && DaemonOptions.logLevel("debug") == .debug && DaemonOptions.logLevel("trace") == .trace)
        #expect(DaemonOptions.logLevel("panic") == .critical && DaemonOptions.logLevel("FATAL") == .critical)
        #expect(DaemonOptions.logLevel("verbose") == nil && DaemonOptions.logLevel("") == nil)
    }

    @Test("a JSON log line goes out whole through a descriptor that takes it a few KiB at a time")
    func wholeLines() async throws {
        let pipe = try Pipes.make(nonBlocking: true)
        let (readEnd, writeEnd) = (pipe.first.release(), pipe.second.release())
        #expect(shim_fcntl_setpipe_sz(writeEnd, 4096) == 4096)
        defer { close(readEnd) }
        // The reader drains at its own pace on another thread while the handler writes.
        async let received: [UInt8] = BlockingWork.run {
            var out: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 1024)
            while true {
                var ready = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
                _ = poll(&ready, 1, -1)
                let n = read(readEnd, &buffer, buffer.count)
                if n > 0 { out += buffer[..<n]; continue }
                if n < 0 && errno == EAGAIN { continue }
                return out
            }
        }
        let value = String(repeating: "x", count: 100_000)
        let handler = JSONLogHandler(logLevel: .info, label: "test", fd: writeEnd)
        var logger = Logger(label: "test") { _ in handler }
        logger.logLevel = .info
        logger.info("first", metadata: ["big": "\(value)"])
        logger.info("second")
        close(writeEnd)
        let lines = String(decoding: await received, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty)
        #expect(lines.first?.hasSuffix(",\"big\":\"\(value)\"}") == true)
        #expect(lines.dropFirst().first?.contains("\"msg\":\"second\"") == true)
    }
}
