// BridgeBench: bridge round trips per second (BridgeClient ↔ BridgeServer over a Unix socket
// pair in one process) for a cheap request at 1 and 64 in flight, and decode/encode time of
// the largest fixture. Prints a table and writes Benchmarks/results/bridge.json (BenchReport).
//
// Usage: BridgeBench [--quick]   (pin it: taskset -c 0 .build/release/BridgeBench)
import BenchReport
import Bridge
import EventLoop
import FoundationEssentials
import Logging

/// The cheapest possible guest: every request succeeds at once.
struct NoopHandler: BridgeHandler {
    let guestCapabilities = GuestDefinedCapabilities()
    func createContainer(_ request: CreateContainerRequest, settings: ContainerSettings) async throws -> CreateContainerResponse { CreateContainerResponse() }
    func startContainer(_ request: StartContainerRequest) async throws {}
    func shutdownContainer(_ request: RequestBase, forced: Bool) async throws -> ShutdownReply { .respond }
    func executeProcess(_ request: ExecuteProcessRequest, parameters: ProcessParameters) async throws -> UInt32 { 1 }
    func waitForProcess(_ request: WaitForProcessRequest) async throws -> ProcessExitAnswer { ProcessExitAnswer(exitCode: 0) }
    func signalProcess(_ request: SignalProcessRequest) async throws {}
    func resizeConsole(_ request: ResizeConsoleRequest) async throws {}
    func getProperties(_ request: GetPropertiesRequest, query: PropertyQuery) async throws -> PropertiesDocument { PropertiesDocument() }
    func modifySettings(_ request: ModifySettingsRequest) async throws {}
    func dumpStacks(_ request: DumpStacksRequest) async throws -> String { "" }
    func deleteContainerState(_ request: DeleteContainerStateRequest) async throws {}
}

let arguments = CommandLine.arguments
let quick = arguments.contains("--quick")
let packageRoot: String = {
    var path = #filePath
    for _ in 0..<3 { while let last = path.last, last != "/" { path.removeLast() }; path.removeLast() }
    return path
}()
func now() -> ContinuousClock.Instant { ContinuousClock.now }
func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// Round trips per second with `inFlight` concurrent senders, `total` requests.
func roundTrips(client: BridgeClient, inFlight: Int, total: Int) async throws -> Double {
    let request = StartContainerRequest(base: RequestBase(containerId: "4f3c9a1e7b2d4c86a5e0f19d2b7c3e8a6d1f0b9c8e7a5d4c3b2a1f0e9d8c7b6a"))
    let start = now()
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<inFlight {
            group.addTask {
                var i = worker
                while i < total {
                    _ = try await client.send(request)
                    i += inFlight
                }
            }
        }
        try await group.waitForAll()
    }
    return Double(total) / seconds(now() - start)
}

/// Requests/s the guest server sustains against a minimal pipelined host (pre-encoded request
/// frames, responses counted by header only): the server's own cost, like the Go figure, which
/// was measured with the load generator outside the pinned agent.
func guestOnly(inFlight: Int, total: Int) async throws -> Double {
    let (hostEnd, guestEnd) = try AsyncFD.socketPair(loop: loop)
    let server = BridgeServer(connection: guestEnd, handler: NoopHandler(), logger: logger)
    let serving = Task(executorPreference: loop) { await server.serve() }
    let body = Array(#"{"ContainerId":"4f3c9a1e7b2d4c86a5e0f19d2b7c3e8a6d1f0b9c8e7a5d4c3b2a1f0e9d8c7b6a","ActivityId":"00000000-0000-0000-0000-000000000000"}"#.utf8) + [0x0A]
    func frames(_ count: Int, from id: Int) -> [UInt8] {
        var out: [UInt8] = []
        for i in 0..<count { out += FrameHeader(type: .start, size: UInt32(16 + body.count), id: UInt64(id + i)).bytes + body }
        return out
    }
    try await hostEnd.writeAll(frame(negotiate: true))
    let reader = FrameReader()
    func readSome() async throws -> Int {
        let n = try await hostEnd.read(into: reader.writableBytes())
        precondition(n > 0, "guest closed")
        reader.didWrite(n)
        var count = 0
        while try reader.nextFrame() != nil { count += 1 }
        return count
    }
    _ = try await readSome()  // negotiation answer
    let start = now()
    var sent = min(inFlight, total)
    try await hostEnd.writeAll(frames(sent, from: 1))
    var received = 0
    while received < total {
        let got = try await readSome()
        received += got
        let more = min(got, total - sent)
        if more > 0 {
            try await hostEnd.writeAll(frames(more, from: sent + 1))
            sent += more
        }
    }
    let rate = Double(total) / seconds(now() - start)
    hostEnd.close()
    _ = await serving.value
    return rate
}

func frame(negotiate: Bool) -> [UInt8] {
    let body = Array(#"{"ContainerId":"","ActivityId":"00000000-0000-0000-0000-000000000000","MinimumVersion":4,"MaximumVersion":4}"#.utf8) + [0x0A]
    return FrameHeader(type: .negotiateProtocol, size: UInt32(16 + body.count), id: 0).bytes + body
}

/// Mean microseconds per call of `body` over `iterations`.
func timePerCall(iterations: Int, _ body: () throws -> Void) rethrows -> Double {
    for _ in 0..<(iterations / 10) { try body() }
    let start = now()
    for _ in 0..<iterations { try body() }
    return seconds(now() - start) / Double(iterations) * 1e6
}

let logger: Logger = {
    var logger = Logger(label: "bridge-bench")
    logger.logLevel = .info  // the default level: no per-request logging
    return logger
}()

// Everything (server, client, senders) runs on the event loop's thread, as the agent does:
// no thread hops between the reactor and the tasks it resumes.
let loop = EventLoop.shared
let (hostEnd, guestEnd) = try AsyncFD.socketPair(loop: loop)
let server = BridgeServer(connection: guestEnd, handler: NoopHandler(), logger: logger)
let client = BridgeClient(connection: hostEnd, logger: logger)
let serving = Task(executorPreference: loop) { await server.serve() }
let reading = Task(executorPreference: loop) { await client.run() }

var report = BenchReport(name: "bridge")
print(BenchReport.header)
let scale = quick ? 10 : 1
try await withTaskExecutorPreference(loop) {
    _ = try await client.send(NegotiateProtocolRequest())
    _ = try await roundTrips(client: client, inFlight: 64, total: 20_000 / scale)  // warm-up
    let rt1 = try await roundTrips(client: client, inFlight: 1, total: 50_000 / scale)
    report.add(BenchResult(benchmark: "bridge_roundtrip_1_in_flight", metric: "throughput", value: rt1, unit: "requests/s", baseline: 5_300))
    let rt64 = try await roundTrips(client: client, inFlight: 64, total: 400_000 / scale)
    report.add(BenchResult(benchmark: "bridge_roundtrip_64_in_flight", metric: "throughput", value: rt64, unit: "requests/s", baseline: 18_000))
    let g1 = try await guestOnly(inFlight: 1, total: 50_000 / scale)
    report.add(BenchResult(benchmark: "guest_only_1_in_flight", metric: "throughput", value: g1, unit: "requests/s", baseline: 5_300))
    let g64 = try await guestOnly(inFlight: 64, total: 400_000 / scale)
    report.add(BenchResult(benchmark: "guest_only_64_in_flight", metric: "throughput", value: g64, unit: "requests/s", baseline: 18_000))
}

client.close()
_ = await serving.value
_ = await reading.value

// Codec: the largest fixture, decoded the way the server does (body + embedded ContainerConfig).
let fixtureName = "create-container.workload.request.json"
let fixture = try Data(contentsOf: URL(fileURLWithPath: packageRoot + "/Tests/BridgeTests/Fixtures/" + fixtureName))
let iterations = 20_000 / scale
let decoded = try BridgeJSON.decoder.decode(CreateContainerRequest.self, from: fixture)
let decodeMicros = try timePerCall(iterations: iterations) {
    let request = try fixture.withUnsafeBytes { try BridgeJSON.decode(CreateContainerRequest.self, from: $0) }
    _ = try request.settings()
}
let encodeMicros = try timePerCall(iterations: iterations) { _ = try BridgeJSON.encode(decoded) }
let settings = try decoded.settings()
let encodeFullMicros = try timePerCall(iterations: iterations) {
    _ = try CreateContainerRequest(base: decoded.base, settings: settings)
}
report.add(BenchResult(benchmark: "decode_\(fixtureName)", metric: "latency", value: decodeMicros, unit: "us/op"))
report.add(BenchResult(benchmark: "encode_\(fixtureName)", metric: "latency", value: encodeMicros, unit: "us/op"))
report.add(BenchResult(benchmark: "encode_with_embedded_config_\(fixtureName)", metric: "latency", value: encodeFullMicros, unit: "us/op"))

print("bridge_roundtrip_*: BridgeClient and BridgeServer in this process, both on the pinned CPU (JSON on both sides).")
print("guest_only_*: BridgeServer against a minimal pre-encoded pipelined host on the same CPU (the server's own cost).")
print("baselines: hcsshim Go GCS answering a no-op request, pinned to one CPU; measured elsewhere (issue #3), not on this machine.")
print("fixture: \(fixtureName) (\(fixture.count) bytes); decode = body + embedded ContainerConfig.")

report.write()
