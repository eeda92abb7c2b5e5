import BenchReport
import Bridge
import CBench
import EventLoop
import Glibc
import HostSupport

/// exec + wait of /bin/true through the agent against C posix_spawn + waitpid of the same
/// binary. The three kinds run interleaved in small blocks, so the machine's slow drifts
/// (this kind of VM changes speed by up to 3x every few seconds) hit all of them alike.
enum ExecLatency {
    enum Kind: CaseIterable { case c, noStdio, withStdio }

    /// `BENCH_EXEC_KINDS=noStdio` (or `withStdio`) runs only that kind beside the C baseline: for profiling one path.
    static let profiledKinds = getenv("BENCH_EXEC_KINDS").map { String(cString: $0).split(separator: ",").map(String.init) }

    /// C posix_spawn+waitpid of /bin/true p50 on the machine where the Go agent was measured.
    static let goMachineSpawnMicroseconds = 500.0

    static func measure(guest: LocalGuest, scale: Int) async throws -> [BenchResult] {
        var samples: [Kind: [Double]] = [:]
        var executeResponse: [Double] = []
        var gcsCPU: [Kind: Double] = [:], hostCPU: [Kind: Double] = [:]
        let blocks = max(1, 20 / scale), perBlock = 25
        for _ in 0..<blocks {
            for kind in Kind.allCases where profiledKinds.map({ $0.contains("\(kind)") || kind == .c }) ?? true {
                let gcsBefore = Probe.cpuSeconds(guest.pid), hostBefore = Probe.cpuSeconds(getpid())
                for _ in 0..<perBlock {
                    let start = benchNow()
                    switch kind {
                    case .c:
                        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
                        let nanoseconds = cbench_spawn_wait_ns("/bin/true", &argv)
                        free(argv[0])
                        guard nanoseconds > 0 else { throw SyscallError("C posix_spawn /bin/true", errno: Int32(-nanoseconds)) }
                        samples[kind, default: []].append(Double(nanoseconds) / 1000)
                        continue
                    case .noStdio:
                        let (p, _) = try await guest.start(.utilityVM, args: ["/bin/true"], stdout: false, stderr: false)
                        executeResponse.append(Double(benchNow() - start) / 1000)
                        _ = try await guest.client.send(WaitForProcessRequest(base: RequestBase(containerId: uvmContainerID), processId: p))
                    case .withStdio:
                        _ = try await guest.run(.utilityVM, args: ["/bin/true"])
                    }
                    samples[kind, default: []].append(Double(benchNow() - start) / 1000)
                }
                gcsCPU[kind, default: 0] += Probe.cpuSeconds(guest.pid) - gcsBefore
                hostCPU[kind, default: 0] += Probe.cpuSeconds(getpid()) - hostBefore
            }
        }
        let name = "exec+wait /bin/true"
        let cP50 = percentile(samples[.c]!, 0.5)
        var results = [BenchResult(benchmark: name, metric: "C posix_spawn+waitpid p50", value: cP50, unit: "us")]
        if !executeResponse.isEmpty {  // measured by the no-stdio kind only
            results.append(BenchResult(benchmark: name, metric: "ExecuteProcess response p50", value: percentile(executeResponse, 0.5), unit: "us"))
        }
        for kind in [Kind.noStdio, .withStdio] {
            let label = kind == .noStdio ? "no stdio" : "with stdout+stderr"
            guard let values = samples[kind] else { continue }
            let count = Double(values.count)
            let goOverhead = kind == .withStdio ? 1410.0 - 500 : 1070.0 - 500
            // The Go figures come from a machine whose C spawn+wait took ~500 us; this one's is
            // cP50. The second ratio scales Go's overhead by that speed difference (an estimate:
            // it assumes both overheads scale with the machine as spawning does).
            let scaledGo = goOverhead * cP50 / goMachineSpawnMicroseconds
            results += [
                BenchResult(benchmark: name, metric: "\(label) p50", value: percentile(values, 0.5), unit: "us"),
                BenchResult(benchmark: name, metric: "\(label) p99", value: percentile(values, 0.99), unit: "us"),
                BenchResult(benchmark: name, metric: "\(label) overhead vs C (Go: \(Int(goOverhead)) us)",
                            value: percentile(values, 0.5) - cP50, unit: "us", baseline: goOverhead),
                BenchResult(benchmark: name, metric: "\(label) overhead vs Go scaled by this C spawn / 500 us",
                            value: percentile(values, 0.5) - cP50, unit: "us", baseline: scaledGo),
                BenchResult(benchmark: name, metric: "\(label): gcs CPU per process", value: gcsCPU[kind]! / count * 1e6, unit: "us"),
                BenchResult(benchmark: name, metric: "\(label): host CPU per process", value: hostCPU[kind]! / count * 1e6, unit: "us"),
            ]
        }
        return results
    }
}
