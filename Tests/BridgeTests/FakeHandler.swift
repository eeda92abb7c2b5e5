import Bridge
import EventLoop
import FoundationEssentials
import Logging
import Synchronization

/// A scripted `BridgeHandler` for tests. Behaviour is keyed on the request so tests can check
/// that each response went to its own request:
/// - WaitForProcess answers `ExitCode = ProcessId + 1`; pids divisible by 7 wait a little first
///   (so responses leave out of order); pid 0xDEAD fails with ERROR_NOT_FOUND.
/// - ContainerId "fail" makes any container request fail with `0xC037010E`.
/// - ContainerId "huge" makes GetProperties / DumpStacks / errors produce far more than 64 KiB.
/// - WaitForProcess of pid 0xBEEF says so on `gatedEntered`, then waits until `releaseGate()`.
/// - DeleteContainerState of ContainerId "slow" says so on `slowEntered`, then waits until
///   `releaseGate()`, cancelled or not (as a create or delete under way runs to its end).
final class FakeHandler: BridgeHandler {
    let guestCapabilities = GuestDefinedCapabilities()
    let calls = Atomic<Int>(0)
    /// WaitForProcess answers written (their `answered` callbacks run).
    let answers = Atomic<Int>(0)
    private let gate = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    /// One element each time a "slow" DeleteContainerState has begun.
    let slowEntered: AsyncStream<Void>
    private let slowEnteredSink: AsyncStream<Void>.Continuation
    /// One element each time a WaitForProcess of pid 0xBEEF has reached the gate.
    let gatedEntered: AsyncStream<Void>
    private let gatedEnteredSink: AsyncStream<Void>.Continuation
    /// One element each time a WaitForProcess answer has been written.
    let answerWritten: AsyncStream<Void>
    private let answerWrittenSink: AsyncStream<Void>.Continuation

    init() {
        (slowEntered, slowEnteredSink) = AsyncStream.makeStream()
        (gatedEntered, gatedEnteredSink) = AsyncStream.makeStream()
        (answerWritten, answerWrittenSink) = AsyncStream.makeStream()
    }

    /// Lets every WaitForProcess of pid 0xBEEF (and later ones) return.
    func releaseGate() {
        let waiters = gate.withLock { g in
            g.open = true
            defer { g.waiters = [] }
            return g.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func check(_ base: RequestBase) throws {
        calls.add(1, ordering: .relaxed)
        if base.containerId == "fail" { throw BridgeError(.systemNotFound, "container fail does not exist") }
        if base.containerId == "huge" {
            throw BridgeError(.fail, String(repeating: "error text that keeps growing \"quoted\"\n", count: 10_000))
        }
    }

    func createContainer(_ request: CreateContainerRequest, settings: ContainerSettings) async throws -> CreateContainerResponse {
        try check(request.base)
        return CreateContainerResponse()
    }

    func startContainer(_ request: StartContainerRequest) async throws { try check(request.base) }

    func shutdownContainer(_ request: RequestBase, forced: Bool) async throws -> ShutdownReply {
        if request.containerId == uvmContainerID { return .noResponse }
        try check(request)
        return .respond
    }

    func executeProcess(_ request: ExecuteProcessRequest, parameters: ProcessParameters) async throws -> UInt32 {
        try check(request.base)
        return 1000 + UInt32(parameters.commandArgs.count)
    }

    private func passGate() async {
        await withCheckedContinuation { continuation in
            let open = gate.withLock { g in
                if !g.open { g.waiters.append(continuation) }
                return g.open
            }
            if open { continuation.resume() }
        }
    }

    func waitForProcess(_ request: WaitForProcessRequest) async throws -> ProcessExitAnswer {
        calls.add(1, ordering: .relaxed)
        if request.processId == 0xDEAD { throw BridgeError(.notFound, "process 57005 not found") }
        if request.processId == 0xBEEF {
            gatedEnteredSink.yield()
            await passGate()
        }
        if request.processId % 7 == 0 {
            try await Task.sleep(for: .microseconds(200))
        } else if request.processId % 3 == 0 {
            await Task.yield()
        }
        return ProcessExitAnswer(exitCode: request.processId &+ 1, answered: { [self] _ in
            answers.add(1, ordering: .relaxed)
            answerWrittenSink.yield()
        })
    }

    func signalProcess(_ request: SignalProcessRequest) async throws { try check(request.base) }
    func resizeConsole(_ request: ResizeConsoleRequest) async throws { try check(request.base) }

    func getProperties(_ request: GetPropertiesRequest, query: PropertyQuery) async throws -> PropertiesDocument {
        if request.base.containerId == "huge" {
            return PropertiesDocument(processList: (0..<100_000).map { ProcessDetails(processId: UInt32($0)) })
        }
        try check(request.base)
        return PropertiesDocument(processList: [ProcessDetails(processId: 1), ProcessDetails(processId: 2)])
    }

    func modifySettings(_ request: ModifySettingsRequest) async throws { try check(request.base) }

    func dumpStacks(_ request: DumpStacksRequest) async throws -> String {
        calls.add(1, ordering: .relaxed)
        if request.base.containerId == "huge" { return String(repeating: "goroutine 1 [running]:\n\tmain.go:1\n", count: 20_000) }
        return "task 1 [running]"
    }

    func deleteContainerState(_ request: DeleteContainerStateRequest) async throws {
        if request.base.containerId == "slow" {
            slowEnteredSink.yield()
            await passGate()
        }
        try check(request.base)
    }
}

/// A server on one end of a socket pair and a `BridgeClient` on the other.
struct ClientServerPair {
    let client: BridgeClient
    let server: BridgeServer<FakeHandler>
    let handler: FakeHandler
    let serverTask: Task<BridgeServer<FakeHandler>.Ending, Never>
    let clientTask: Task<BridgeClientError?, Never>

    static func start(configuration: BridgeClient.Configuration = .init(), negotiate: Bool = true) async throws -> ClientServerPair {
        let (hostEnd, guestEnd) = try AsyncFD.socketPair()
        let handler = FakeHandler()
        var logger = Logger(label: "test.bridge")
        logger.logLevel = .warning
        let server = BridgeServer(connection: guestEnd, handler: handler, logger: logger)
        let client = BridgeClient(connection: hostEnd, configuration: configuration, logger: logger)
        let serverTask = Task { await server.serve() }
        let clientTask = Task { await client.run() }
        let pair = ClientServerPair(client: client, server: server, handler: handler, serverTask: serverTask, clientTask: clientTask)
        if negotiate { _ = try await client.send(NegotiateProtocolRequest()) }
        return pair
    }

    func stop() async {
        client.close()
        _ = await serverTask.value
        _ = await clientTask.value
    }
}

/// The host end of a socket pair driven byte by byte, for malformed input.
final class RawHost {
    let fd: AsyncFD
    let reader = FrameReader(maxMessageSize: 1 << 20)

    init(fd: AsyncFD) { self.fd = fd }

    func send(_ bytes: [UInt8]) async throws {
        let copy = bytes
        try await fd.writeAll(copy)
    }

    /// The next frame from the guest, or nil at EOF.
    func next() async throws -> (header: FrameHeader, body: [UInt8])? {
        while true {
            if let frame = try reader.nextFrame() { return (frame.header, Array(frame.body)) }
            let n = try await fd.read(into: reader.writableBytes())
            if n == 0 { return nil }
            reader.didWrite(n)
        }
    }
}

/// A frame: header for `type`/`id` plus `body` (host style: trailing newline by default).
func frame(_ type: UInt32, id: UInt64 = 1, _ body: String, newline: Bool = true) -> [UInt8] {
    let bytes = Array(body.utf8) + (newline ? [0x0A] : [])
    return FrameHeader(type: MessageIdentifier(type), size: UInt32(16 + bytes.count), id: id).bytes + bytes
}

/// A header only, with an arbitrary size field.
func rawHeader(_ type: UInt32, size: UInt32, id: UInt64 = 1) -> [UInt8] {
    FrameHeader(type: MessageIdentifier(type), size: size, id: id).bytes
}

let negotiateBody = #"{"ContainerId":"","ActivityId":"00000000-0000-0000-0000-000000000000","MinimumVersion":4,"MaximumVersion":4}"#
let activity = "00000000-0000-0000-0000-000000000000"
