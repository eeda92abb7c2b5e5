// Relay throughput: our EventLoop Relay against plain C relays (splice and 64 KiB read/write,
// and splice with the pipes grown as our Relay grows a full one), on the same pipe ->
// Unix-socket workloads, in the same run. Run pinned: `taskset -c 0`.
// Usage: RelayBench [--scale N] [--reps N]   (sizes divided by N; best-of-N repetitions)
import BenchReport
import CBench
import EventLoop
import Glibc
import Shims

struct Workload {
    var name: String
    var streams: Int
    var bytesPerStream: UInt64
    var useHead: Bool
    /// Bytes per write of the producer (nil: 64 KiB); small writes model a chatty process.
    var writeSize: Int? = nil
}

struct Measurement {
    var bytesPerSecond: Double
    var cpuSecondsPerGB: Double
}

enum Contender: String, CaseIterable {
    case cSplice = "C splice"
    case cReadWrite = "C read/write 64K"
    /// C splice with every pipe first grown as our Relay grows a pipe it finds full.
    case cSpliceGrown = "C splice, pipes grown"
    case ours = "Relay (automatic)"
    case oursSplice = "Relay (splice)"
    case oursCopy = "Relay (copy)"
}

func arguments() -> (scale: UInt64, reps: Int) {
    var scale: UInt64 = 1, reps = 3
    var args = CommandLine.arguments.dropFirst().makeIterator()
    while let a = args.next() {
        if a == "--scale", let v = args.next(), let n = UInt64(v) { scale = max(1, n) }
        if a == "--reps", let v = args.next(), let n = Int(v) { reps = max(1, n) }
    }
    return (scale, reps)
}

func fail(_ message: String) -> Never {
    print("RelayBench: \(message)")
    exit(1)
}

func measure(_ contender: Contender, _ w: Workload, loop: EventLoop) async -> Measurement {
    if let size = w.writeSize { setenv("CBENCH_WRITE_SIZE", "\(size)", 1) } else { unsetenv("CBENCH_WRITE_SIZE") }
    var src = [Int32](repeating: -1, count: w.streams)
    var dst = [Int32](repeating: -1, count: w.streams)
    guard let load = cbench_load_create(Int32(w.streams), w.bytesPerStream, w.useHead ? 1 : 0, &src, &dst) else {
        fail("cbench_load_create: \(String(cString: strerror(errno)))")
    }
    defer { cbench_load_destroy(load) }
    guard cbench_load_start(load) == 0 else { fail("cbench_load_start failed") }
    var cpu: Int64 = 0
    switch contender {
    case .cSplice, .cReadWrite, .cSpliceGrown:
        if contender == .cSpliceGrown {
            for fd in src where shim_fcntl_setpipe_sz(fd, Relay.grownSourcePipeSize) < 0 { fail("F_SETPIPE_SZ: errno \(errno)") }
        }
        // The C relays run to completion on a thread of their own, like our loop thread.
        let (srcFDs, dstFDs) = (src, dst)
        let rc = await BlockingWork.run {
            var c: Int64 = 0
            let rc = contender == .cReadWrite ? cbench_relay_rw(Int32(w.streams), srcFDs, dstFDs, &c) : cbench_relay_splice(Int32(w.streams), srcFDs, dstFDs, &c)
            return (rc, c)
        }
        if rc.0 != 0 { fail("\(contender.rawValue) failed: \(rc.0)") }
        cpu = rc.1
    case .ours, .oursSplice, .oursCopy:
        var options = Relay.Options()
        options.mechanism = contender == .ours ? .automatic : contender == .oursSplice ? .splice : .copy
        let before = await loop.run { shim_thread_cpu_ns() }
        var relays: [Relay] = []
        for i in 0..<w.streams {
            do {
                let s = try AsyncFD(OwnedFD(adopting: src[i]), loop: loop)
                let d = try AsyncFD(OwnedFD(adopting: dst[i]), loop: loop)
                relays.append(Relay(from: s, to: d, options: options))
            } catch { fail("register: \(error)") }
        }
        for r in relays { r.start() }
        var switches = 0
        defer { if switches > 0 && getenv("RELAY_DEBUG") != nil { print("  \(contender.rawValue) \(w.name): \(switches) mechanism switches") } }
        for r in relays {
            let outcome = await r.wait()
            switches += r.mechanismSwitches
            if let error = outcome.error { fail("relay failed: \(error)") }
            r.destination.close()
        }
        let after = await loop.run { shim_thread_cpu_ns() }
        cpu = after - before
    }
    var elapsed: Int64 = 0
    let total = cbench_load_wait(load, &elapsed)
    if total < 0 { fail("\(contender.rawValue) on \(w.name): consumer got the wrong byte count") }
    let seconds = Double(elapsed) / 1e9
    let gb = Double(total) / 1e9
    return Measurement(bytesPerSecond: Double(total) / seconds, cpuSecondsPerGB: Double(cpu) / 1e9 / gb)
}

let (scale, reps) = arguments()
_ = shim_raise_nofile(16_384)
signal(SIGPIPE, SIG_IGN)
let loop = try EventLoop(name: "relay-bench")
let workloads = [
    Workload(name: "1 x 2 GiB (head)", streams: 1, bytesPerStream: (2 << 30) / scale, useHead: true),
    Workload(name: "100 x 64 MiB", streams: 100, bytesPerStream: (64 << 20) / scale, useHead: false),
    Workload(name: "1000 x 4 MiB", streams: 1000, bytesPerStream: (4 << 20) / scale, useHead: false),
    Workload(name: "chatty 1 x 256 MiB, 512 B writes", streams: 1, bytesPerStream: (256 << 20) / scale, useHead: false, writeSize: 512),
]
var report = BenchReport(name: "relay")
print("relay benchmark: pipe -> Unix stream socket, best of \(reps), sizes / \(scale)")
print(BenchReport.header)
for w in workloads {
    var best: [Contender: Measurement] = [:]
    for _ in 0..<reps {
        // Interleave contenders so that the machine's fast/slow phases hit all of them alike.
        for c in Contender.allCases {
            let m = await measure(c, w, loop: loop)
            if let b = best[c], b.bytesPerSecond >= m.bytesPerSecond { continue }
            best[c] = m
        }
    }
    let bestC = max(best[.cSplice]!.bytesPerSecond, best[.cReadWrite]!.bytesPerSecond)
    // Our CPU is compared with the cheaper of the two C relays (splice, as a rule).
    let leastCCPU = min(best[.cSplice]!.cpuSecondsPerGB, best[.cReadWrite]!.cpuSecondsPerGB)
    for c in Contender.allCases {
        let m = best[c]!
        let isOurs = ![.cSplice, .cReadWrite, .cSpliceGrown].contains(c)
        report.add(BenchResult(benchmark: "relay \(w.name)", metric: "\(c.rawValue) GB/s", value: m.bytesPerSecond / 1e9,
                               unit: "GB/s", baseline: isOurs ? bestC / 1e9 : nil))
        report.add(BenchResult(benchmark: "relay \(w.name)", metric: "\(c.rawValue) CPU", value: m.cpuSecondsPerGB,
                               unit: "CPU-s/GB", baseline: isOurs ? leastCCPU : nil))
    }
    // The same, against C splice given the pipe size our Relay grows a full pipe to.
    report.add(BenchResult(benchmark: "relay \(w.name)", metric: "Relay (automatic) GB/s vs C splice, pipes grown",
                           value: best[.ours]!.bytesPerSecond / 1e9, unit: "GB/s", baseline: best[.cSpliceGrown]!.bytesPerSecond / 1e9))
}
report.write()
loop.shutdown()
