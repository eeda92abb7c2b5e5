import BenchReport
import Bridge
import CBench
import EventLoop
import Glibc
import HostSupport
import Shims

/// Reads `conn` to EOF into a reused buffer; a pty's EIO counts as EOF. Returns the byte count.
func drain(_ conn: AsyncFD) async throws -> Int {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    defer { buffer.deallocate() }
    var total = 0
    while true {
        let n: Int
        do { n = try await conn.read(into: buffer) } catch let error as SyscallError where error.errno == EIO { return total }
        if n == 0 { return total }
        total += n
    }
}

/// Reads `conn` to its end with a blocking C loop on a thread of its own, as the raw pty reader
/// reads its pty: the host's share of a relay measurement is then one read per send, with no
/// event loop or task hop in between (on the one CPU everything is pinned to, the host's
/// overhead counts against the agent's rate). `conn` is closed first (off the host's epoll);
/// the loop reads a duplicate.
/// `BENCH_HOST_READER=task` reads with an async task instead (`drain`, as before), for A/B runs.
func drainBlocking(_ conn: AsyncFD) async throws -> Int {
    if useTaskReader { return try await drain(conn) }
    let fd = dup(conn.rawValue)
    guard fd >= 0 else { throw SyscallError("dup", errno: errno) }
    conn.close()
    let total = await BlockingWork.run { () -> Int64 in
        defer { close(fd) }
        return cbench_drain_fd(fd)
    }
    guard total >= 0 else { throw SyscallError("read", errno: Int32(-total)) }
    return Int(total)
}

let useTaskReader = getenv("BENCH_HOST_READER").map { String(cString: $0) } == "task"

/// The producer every contender of the container relay runs: busybox `dd` with 64 KiB blocks,
/// or with `BENCH_PRODUCER=head` GNU/busybox `head` (4 KiB per write: chatty).
let producerIsHead = getenv("BENCH_PRODUCER").map { String(cString: $0) } == "head"

/// Runs a C baseline relay on a thread of its own (it blocks until done), fed by the same
/// producer program as the container relay (`producerIsHead`), spawned by the load.
/// `pipeSize`: the capacity given to the producer's pipe first (default: the kernel's 64 KiB).
func cRelay(splice: Bool, bytes: UInt64, pipeSize: Int32? = nil) async throws -> (gbps: Double, cpuPerGB: Double) {
    let outcome = await BlockingWork.run { () -> Result<(Double, Double), SyscallError> in
        var src: Int32 = -1, dst: Int32 = -1
        let producer = producerIsHead ? Int32(CBENCH_PRODUCER_HEAD) : Int32(CBENCH_PRODUCER_DD)
        guard let load = cbench_load_create(1, bytes, producer, &src, &dst) else { return .failure(SyscallError("cbench_load_create", errno: errno)) }
        defer { cbench_load_destroy(load) }
        if let pipeSize, shim_fcntl_setpipe_sz(src, pipeSize) < 0 {
            close(src); close(dst)
            return .failure(SyscallError("F_SETPIPE_SZ", errno: errno))
        }
        let started = cbench_load_start(load)
        guard started == 0 else { close(src); close(dst); return .failure(SyscallError("cbench_load_start", errno: -started)) }
        var cpu: Int64 = 0
        var s = src, d = dst
        let relayed = splice ? cbench_relay_splice(1, &s, &d, &cpu) : cbench_relay_rw(1, &s, &d, &cpu)
        var elapsed: Int64 = 0
        let total = cbench_load_wait(load, &elapsed)
        guard relayed == 0, total == Int64(bytes), elapsed > 0 else {
            return .failure(SyscallError("C \(splice ? "splice" : "read/write") relay moved \(total) of \(bytes) bytes", errno: relayed < 0 ? -relayed : EIO))
        }
        let gb = Double(total) / 1e9
        return .success((gb / (Double(elapsed) / 1e9), Double(cpu) / 1e9 / gb))
    }
    let (gbps, cpuPerGB) = try outcome.get()
    return (gbps, cpuPerGB)
}

enum ContainerRelay {
    /// The default agent (pipes + relay) and one started with `--exec-stdio pass-through`, beside
    /// the C relays, all fed by the same producer program: three interleaved rounds (the
    /// machine's speed drifts by up to 3x), the best of each contender reported.
    static func measure(guest: LocalGuest, passThrough: LocalGuest, work: String, scale: Int) async throws -> [BenchResult] {
        let bytes = UInt64(2 << 30) / UInt64(scale) / 65536 * 65536
        let rootfs = try Busybox.makeRootfs(in: "\(work)/images/busybox")
        // The containers go whatever happens: a stopped agent would leave them running.
        func removeContainers() async {
            for agent in [guest, passThrough] {
                _ = try? await agent.client.send(ShutdownForcedRequest(base: RequestBase(containerId: "bench")))
                _ = try? await agent.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: "bench")))
            }
        }
        var relayed: (gbps: Double, cpu: Double) = (0, 0), passed = relayed
        var cSplice: (gbps: Double, cpuPerGB: Double) = (0, 0), cRW = cSplice, cSpliceGrown = cSplice
        /// Three interleaved rounds: each contender once per round, the best of each kept.
        func rounds() async throws {
            for _ in 0..<3 {
                let r = try await run(guest: guest, bytes: bytes)
                if r.gbps > relayed.gbps { relayed = r }
                let p = try await run(guest: passThrough, bytes: bytes)
                if p.gbps > passed.gbps { passed = p }
                let cs = try await cRelay(splice: true, bytes: bytes)
                if cs.gbps > cSplice.gbps { cSplice = cs }
                let cr = try await cRelay(splice: false, bytes: bytes)
                if cr.gbps > cRW.gbps { cRW = cr }
                let cg = try await cRelay(splice: true, bytes: bytes, pipeSize: Relay.grownSourcePipeSize)
                if cg.gbps > cSpliceGrown.gbps { cSpliceGrown = cg }
            }
        }
        do {
            for agent in [guest, passThrough] {
                try await agent.createContainer(id: "bench", spec: Busybox.spec(rootfs: rootfs, args: ["sleep", "3600"]))
                _ = try await agent.start(.containerInit("bench"), stdout: false, stderr: false)
            }
            try await rounds()
        } catch {
            await removeContainers()
            throw error
        }
        await removeContainers()
        let bestC = max(cSplice.gbps, cRW.gbps), leastCCPU = min(cSplice.cpuPerGB, cRW.cpuPerGB)
        let name = "container stdout relay"
        return [
            BenchResult(benchmark: name, metric: "C splice relay", value: cSplice.gbps, unit: "GB/s"),
            BenchResult(benchmark: name, metric: "C read/write relay", value: cRW.gbps, unit: "GB/s"),
            BenchResult(benchmark: name, metric: "C splice relay CPU", value: cSplice.cpuPerGB, unit: "CPU-s/GB"),
            BenchResult(benchmark: name, metric: "C read/write relay CPU", value: cRW.cpuPerGB, unit: "CPU-s/GB"),
            BenchResult(benchmark: name, metric: "C splice relay, pipe grown as gcs grows it", value: cSpliceGrown.gbps, unit: "GB/s"),
            BenchResult(benchmark: name, metric: "gcs (vs best C)", value: relayed.gbps, unit: "GB/s", baseline: bestC),
            BenchResult(benchmark: name, metric: "gcs (vs C splice with gcs's grown pipe)", value: relayed.gbps, unit: "GB/s",
                        baseline: cSpliceGrown.gbps),
            BenchResult(benchmark: name, metric: "gcs CPU (Go: 0.43)", value: relayed.cpu, unit: "CPU-s/GB", baseline: 0.43),
            BenchResult(benchmark: name, metric: "gcs CPU (vs the cheaper C relay)", value: relayed.cpu, unit: "CPU-s/GB", baseline: leastCCPU),
            BenchResult(benchmark: name, metric: "runc pass-through (vs relay)", value: passed.gbps, unit: "GB/s", baseline: relayed.gbps),
            BenchResult(benchmark: name, metric: "runc pass-through gcs CPU", value: passed.cpu, unit: "CPU-s/GB"),
        ]
    }

    /// One run of the producer exec'd into the running container "bench" through `guest`.
    /// Timed from the ExecuteProcess answer (the producer is running), as the C relays are timed
    /// from their producer's spawn: `runc exec`'s own start-up (tens of milliseconds, measured
    /// by the exec section) is not relaying. The agent's CPU counts from before the request.
    static func run(guest: LocalGuest, bytes: UInt64) async throws -> (gbps: Double, cpu: Double) {
        let cpuBefore = Probe.cpuSeconds(guest.pid)
        let producer = producerIsHead
            ? ["head", "-c", "\(bytes)", "/dev/zero"] : ["dd", "if=/dev/zero", "bs=65536", "count=\(bytes / 65536)"]
        let (pid, stdio) = try await guest.start(.exec("bench", Busybox.process(args: producer)), stderr: false)
        let start = benchNow()
        let got = try await drainBlocking(stdio.stdout!)
        let seconds = Double(benchNow() - start) / 1e9
        stdio.close()
        _ = try await guest.client.send(WaitForProcessRequest(base: RequestBase(containerId: "bench"), processId: pid))
        let cpu = Probe.cpuSeconds(guest.pid) - cpuBefore
        guard got == Int(bytes) else { throw SyscallError("container relay delivered \(got) of \(bytes) bytes", errno: EIO) }
        let gb = Double(got) / 1e9
        return (gb / seconds, cpu / gb)
    }
}

enum TerminalRelay {
    /// Five interleaved rounds of a direct pty reader (C, blocking 64 KiB reads, no relay) and gcs's tty relay
    /// on the same workload (head -c N /dev/zero into a pty): the machine's speed drifts, so each
    /// round's ratios are taken against the direct reader of that round and the medians reported.
    /// The raw reader's CPU is what the kernel charges just to read a pty master (its n_tty
    /// layer hands over at most 4 KiB per read, copied 64 bytes at a time): a floor for any relay.
    static func measure(guest: LocalGuest, scale: Int) async throws -> [BenchResult] {
        let bytes = (64 << 20) / scale
        var raw: [Double] = [], rawCPUs: [Double] = [], ours: [Double] = [], ratios: [Double] = []
        var cpus: [Double] = [], cpuRatios: [Double] = []
        for _ in 0..<5 {
            let (rawRate, rawCPU) = try rawPty(bytes: bytes)
            let cpuBefore = Probe.cpuSeconds(guest.pid)
            let begin = benchNow()
            let (pid, stdio) = try await guest.start(.utilityVM, args: ["/usr/bin/head", "-c", "\(bytes)", "/dev/zero"], terminal: true)
            let got = try await drainBlocking(stdio.stdout!)
            let rate = Double(got) / 1e9 / (Double(benchNow() - begin) / 1e9)
            stdio.close()
            _ = try await guest.client.send(WaitForProcessRequest(base: RequestBase(containerId: uvmContainerID), processId: pid))
            let cpu = (Probe.cpuSeconds(guest.pid) - cpuBefore) / (Double(max(got, 1)) / 1e9)
            raw.append(rawRate)
            rawCPUs.append(rawCPU)
            ours.append(rate)
            ratios.append(rate / rawRate)
            cpus.append(cpu)
            cpuRatios.append(cpu / rawCPU)
        }
        let rawMedian = percentile(raw, 0.5), rawCPUMedian = percentile(rawCPUs, 0.5)
        return [
            BenchResult(benchmark: "tty stdout", metric: "raw pty reader, C (median)", value: rawMedian, unit: "GB/s"),
            BenchResult(benchmark: "tty stdout", metric: "gcs (median; ratio: median per round)", value: percentile(ours, 0.5), unit: "GB/s",
                        baseline: rawMedian, ratio: percentile(ratios, 0.5)),
            BenchResult(benchmark: "tty stdout", metric: "raw pty reader CPU, C (median)", value: rawCPUMedian, unit: "CPU-s/GB"),
            BenchResult(benchmark: "tty stdout", metric: "gcs CPU vs raw reader (ratio: median per round)", value: percentile(cpus, 0.5),
                        unit: "CPU-s/GB", baseline: rawCPUMedian, ratio: percentile(cpuRatios, 0.5)),
            BenchResult(benchmark: "tty stdout", metric: "gcs CPU vs Go agent (5)", value: percentile(cpus, 0.5), unit: "CPU-s/GB", baseline: 5),
        ]
    }

    /// `head` writes into a pty slave; a C loop reads the master (blocking this thread meanwhile).
    static func rawPty(bytes: Int) throws -> (rate: Double, cpuPerGB: Double) {
        let arguments = ["head", "-c", "\(bytes)", "/dev/zero"]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var elapsed: Int64 = 0, cpu: Int64 = 0
        let got = cbench_pty_read("/usr/bin/head", &argv, &elapsed, &cpu)
        guard got > 0 else { throw SyscallError("raw pty reader", errno: Int32(-got)) }
        let gigabytes = Double(got) / 1e9
        return (gigabytes / (Double(elapsed) / 1e9), Double(cpu) / 1e9 / gigabytes)
    }
}

enum ManyProcesses {
    /// `count`: 1,000 unless scaled down (`--scale`, as `scripts/order-file.sh` does).
    static func measure(guest: LocalGuest, count: Int, idleRSS: Double, idleAnon: Double) async throws -> [BenchResult] {
        var results: [BenchResult] = []
        let name = count == 1000 ? "1,000 processes with a tty" : "\(count) processes with a tty"
        var running: [(UInt32, HostStdio)] = []
        // What the agent should return to: its RSS idle just before the burst, after one such
        // process and a quiet second (the agent trims its heap then, as after the burst). A
        // first process maps the code of its path (~0.4 MiB of text, in 64 KiB fault-around
        // steps) once for good, which is not memory the burst kept; earlier sections have also
        // run other code since the idle figure was taken at start.
        // Handled as the burst's are: its wait is in flight while it runs.
        let (warmPid, warmStdio) = try await guest.start(.utilityVM, args: ["/bin/cat"], stdin: true, terminal: true)
        async let warmWait = wait(pid: warmPid, guest: guest)
        // Also asked with the burst running: the text that describes a process is in both figures.
        print("gcs with one running: " + (try await agentState(guest)))
        try await stop(pid: warmPid, stdio: warmStdio, guest: guest)
        _ = try await warmWait
        // Asked before the idle figure is taken, so the text DumpStacks maps is in both figures.
        print("gcs before the burst: " + (try await agentState(guest)))
        try await Task.sleep(for: .seconds(1))
        let beforeRSS = Probe.rss(guest.pid), beforeAnon = Probe.rssAnon(guest.pid)
        Probe.snapshotResidentPages(guest.pid, label: "before-burst")
        // hcsshim's host sends a WaitForProcess (no timeout) as soon as a process has started and
        // keeps it in flight for the process's life (internal/gcs/process.go, waitBackground): the
        // agent holds one pending request per running process, as here.
        try await withThrowingTaskGroup(of: Void.self) { waits in
            for _ in 0..<count {
                // A terminal each: gcs holds a pty master and two relays per process.
                let (pid, stdio) = try await guest.start(.utilityVM, args: ["/bin/cat"], stdin: true, terminal: true)
                running.append((pid, stdio))
                waits.addTask { _ = try await wait(pid: pid, guest: guest) }
            }
            let threads = Probe.threads(guest.pid)
            let busyRSS = Probe.rss(guest.pid)
            print("gcs with the \(count) running: " + (try await agentState(guest)))
            results.append(BenchResult(benchmark: name, metric: "gcs threads (Go: 1,005)", value: Double(threads), unit: "threads", baseline: 1005))
            results.append(BenchResult(benchmark: name, metric: "gcs RSS, a wait in flight each (Go: 54 MiB)", value: busyRSS / 1048576,
                                       unit: "MiB", baseline: 54))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (pid, stdio) in running {
                    group.addTask { try await stop(pid: pid, stdio: stdio, guest: guest) }
                }
                try await group.waitForAll()
            }
            try await waits.waitForAll()
        }
        results.append(BenchResult(benchmark: name, metric: "gcs RSS right after exit (vs warm idle before)",
                                   value: Probe.rss(guest.pid) / 1048576, unit: "MiB", baseline: beforeRSS / 1048576))
        // The agent trims its heap once it has been quiet for 200 ms after releases.
        try await Task.sleep(for: .seconds(1))
        let afterRSS = Probe.rss(guest.pid), afterAnon = Probe.rssAnon(guest.pid)
        Probe.snapshotResidentPages(guest.pid, label: "after-burst")
        print("gcs after the burst: " + (try await agentState(guest)))
        results.append(BenchResult(benchmark: name, metric: "gcs anonymous RSS 1 s after exit (vs warm idle before)",
                                   value: afterAnon / 1048576, unit: "MiB", baseline: beforeAnon / 1048576))
        results.append(BenchResult(benchmark: name, metric: "gcs RSS 1 s after exit (vs warm idle before)", value: afterRSS / 1048576,
                               unit: "MiB", baseline: beforeRSS / 1048576))
        results.append(BenchResult(benchmark: name, metric: "gcs RSS 1 s after exit (vs idle at start)", value: afterRSS / 1048576,
                               unit: "MiB", baseline: idleRSS / 1048576))
        return results
    }

    /// The agent's own summary line and heap figures from DumpStacks.
    static func agentState(_ guest: LocalGuest) async throws -> String {
        let dump = try await guest.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID)))
        return dump.guestStacks.split(separator: "\n").filter { $0.hasPrefix("swift-gcs state") || $0.hasPrefix("heap:") }.joined(separator: "; ")
    }

    /// SIGKILL, drain the output, close the streams: how the host ends a tty process (its wait,
    /// in flight since the start, then gets the exit).
    static func stop(pid: UInt32, stdio: HostStdio, guest: LocalGuest) async throws {
        _ = try await guest.client.send(SignalProcessRequest(base: RequestBase(containerId: uvmContainerID), processId: pid,
                                                               options: SignalProcessOptions(signal: SIGKILL)))
        _ = try await drain(stdio.stdout!)
        stdio.close()
    }

    static func wait(pid: UInt32, guest: LocalGuest) async throws -> WaitForProcessResponse {
        try await guest.client.send(WaitForProcessRequest(base: RequestBase(containerId: uvmContainerID), processId: pid))
    }
}
