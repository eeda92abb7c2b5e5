// End-to-end agent benchmarks: the real gcs (release build) driven over the bridge by a local
// host, against baselines measured in the same run (C posix_spawn+waitpid, C relays, a raw pty
// reader) or, where no local baseline can exist, the Go agent's figures from the issue.
// Run pinned: `taskset -c 0 .build/release/AgentBench [--scale N]`.
import Bridge
import BenchReport
import CBench
import EventLoop
import Glibc
import HostSupport
import Logging
import Shims

var scale = 1
/// Sections to run (`--only rtt,exec,rate,relay,tty,many`); all when empty.
var only: Set<String> = []
/// Another gcs binary to measure (A/B runs); default: the one built next to this tool.
var gcsOverride: String?
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let a = arguments.next() {
    if a == "--scale", let v = arguments.next(), let n = Int(v) { scale = max(1, n) }
    if a == "--only", let v = arguments.next() { only = Set(v.split(separator: ",").map(String.init)) }
    if a == "--gcs", let v = arguments.next() { gcsOverride = v }
}
@MainActor func runs(_ section: String) -> Bool { only.isEmpty || only.contains(section) }
_ = shim_raise_nofile(20_000)
signal(SIGPIPE, SIG_IGN)

let me = CommandLine.arguments[0]
let gcs = gcsOverride ?? me.lastIndex(of: "/").map { String(me[..<$0]) + "/gcs" } ?? "gcs"
var logger = Logger(label: "agent-bench")
logger.logLevel = .error
let work = "/tmp/agent-bench-\(getpid())"
var report = BenchReport(name: "agent")
print("agent benchmark: gcs \(gcs), sizes / \(scale)")
print(BenchReport.header)

// Every run starts gcs from an uncached binary: its idle RSS then does not depend on how the
// page cache came to hold the file (see `Probe.dropFromPageCache`).
Probe.dropFromPageCache(gcs)
let guest = try await LocalGuest.start(gcsBinary: gcs, workDirectory: work, logLevel: "error", logger: logger)
let pid = guest.pid

// 6. Idle RSS right after negotiation.
let idleRSS = Probe.rss(pid)
let idleAnon = Probe.rssAnon(pid)
Probe.snapshotResidentPages(pid, label: "idle-at-start")
report.add(BenchResult(benchmark: "idle", metric: "gcs RSS (Go agent: 10.8 MiB)", value: idleRSS / 1048576, unit: "MiB", baseline: 10.8))
report.add(BenchResult(benchmark: "idle", metric: "gcs anonymous RSS", value: idleAnon / 1048576, unit: "MiB"))
report.add(BenchResult(benchmark: "idle", metric: "gcs threads", value: Double(Probe.threads(pid)), unit: "threads"))

// The host side runs on its event loop as gcs does (no thread hop per request); the C spawn
// baseline then also runs on that thread, which is otherwise idle while it does.
let hostLoop = EventLoop.shared

// 1. Bridge round trips of a no-op request (Start is a no-op for Linux containers).
func roundTrips(inFlight: Int, total: Int) async throws -> Double {
    let start = benchNow()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for lane in 0..<inFlight {
            group.addTask(executorPreference: hostLoop) {
                for _ in stride(from: lane, to: total, by: inFlight) {
                    _ = try await guest.client.send(StartContainerRequest(base: RequestBase(containerId: "noop")))
                }
            }
        }
        try await group.waitForAll()
    }
    return Double(total) / (Double(benchNow() - start) / 1e9)
}
// A section that fails ends the run, but what was measured before it is still written, and
// the agent stopped.
var failure: (any Error)?
do {
    _ = try await roundTrips(inFlight: 8, total: 2000 / scale)  // warm up
    if runs("rtt") {
        report.add(BenchResult(benchmark: "bridge no-op round trips", metric: "1 in flight (Go: 5,300/s)",
                               value: try await roundTrips(inFlight: 1, total: 20_000 / scale), unit: "req/s", baseline: 5300))
        report.add(BenchResult(benchmark: "bridge no-op round trips", metric: "64 in flight (Go: 18,000/s)",
                               value: try await roundTrips(inFlight: 64, total: 50_000 / scale), unit: "req/s", baseline: 18000))
    }

    // 2. exec + wait of /bin/true, against C posix_spawn + waitpid measured now (interleaved).
    if runs("exec") {
        for r in try await withTaskExecutorPreference(hostLoop, operation: { try await ExecLatency.measure(guest: guest, scale: scale) }) { report.add(r) }
    }

    // 3. Processes per second with 50 in flight.
    if runs("rate") {
        let total = 2000 / scale
        let start = benchNow()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<50 {
                group.addTask(executorPreference: hostLoop) {
                    for _ in stride(from: lane, to: total, by: 50) {
                        let (p, _) = try await guest.start(.utilityVM, args: ["/bin/true"], stdout: false, stderr: false)
                        _ = try await guest.client.send(WaitForProcessRequest(base: RequestBase(containerId: uvmContainerID), processId: p))
                    }
                }
            }
            try await group.waitForAll()
        }
        report.add(BenchResult(benchmark: "process throughput", metric: "50 in flight (Go: 1,200/s)",
                               value: Double(total) / (Double(benchNow() - start) / 1e9), unit: "proc/s", baseline: 1200))
    }

    // 4. Container-path stdout relay (pipe -> our Relay -> host socket) against the C relays.
    if runs("relay") {
        // The default agent relays, as hcsshim does; a second one passes the connections through.
        let passing = try await LocalGuest.start(gcsBinary: gcs, workDirectory: "\(work)/pass-through", logLevel: "error",
                                                 extraArguments: ["--exec-stdio", "pass-through"], logger: logger)
        do {
            for r in try await ContainerRelay.measure(guest: guest, passThrough: passing, work: work, scale: scale) { report.add(r) }
        } catch {
            _ = try? await passing.stop()
            throw error
        }
        _ = try await passing.stop()
    }

    // 5. TTY stdout against a raw pty reader.
    if runs("tty") { for r in try await TerminalRelay.measure(guest: guest, scale: scale) { report.add(r) } }

    // 7. 1,000 running processes with stdio attached.
    if runs("many") { for r in try await ManyProcesses.measure(guest: guest, count: max(10, 1000 / scale), idleRSS: idleRSS, idleAnon: idleAnon) { report.add(r) } }
} catch {
    failure = error
}

_ = try? await guest.stop()
HostFiles.removeTree(work)
report.write()
if let failure {
    print("AgentBench failed: \(failure)")
    exit(1)
}
