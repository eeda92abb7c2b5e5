import Agent
import Testing

@Suite("gcs command line")
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

    @Test("defaults are the production ones")
    func defaults() throws {
        let options = try DaemonOptions(arguments: [])
        #expect(options.transport == "vsock" && options.runDirectory == "/var/run/gcsrunc" && options.execStdio == .passThrough)
        #expect(options.cgroupParent == "/pods" && options.rootMemoryReserve == 78_643_200)
        #expect(try DaemonOptions(arguments: ["-v4=true", "--help"]).helpRequested)
    }

    @Test("bad command lines are refused with a reason", arguments: [
        ["-bogus"], ["-loglevel"], ["stray"], ["--transport", "tcp:1"], ["--transport=unix:"], ["-log-format", "xml"],
        ["--exec-stdio", "splice"], ["-v4=maybe"], ["--"], ["-root-mem-reserve-bytes", "-1"], ["-root-mem-reserve-bytes=75MiB"],
    ])
    func refused(_ arguments: [String]) {
        #expect(throws: DaemonOptions.UsageError.self) { try DaemonOptions(arguments: arguments) }
    }
}
