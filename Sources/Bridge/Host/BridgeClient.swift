import EventLoop
import FoundationEssentials
import Logging
import Synchronization

/// The host side of the bridge, behaving like hcsshim's `internal/gcs` bridge: sequence ids from
/// 0 upward in wire order, responses matched by id only, a 5-minute deadline per synchronous
/// request (none for WaitForProcess) after which the whole bridge is torn down, and teardown on
/// every fatal condition of spec §4.4 (bad size, unknown response id, undecodable response,
/// bad notification, wrong type nibble). Used by tests, the demo host tool and benchmarks to
/// drive a guest exactly as the real host would.
///
/// Call `run()` (in a task) to read; `send` from any number of tasks.
public final class BridgeClient: Sendable {
    /// Host behaviour knobs.
    public struct Configuration: Sendable {
        /// Deadline of synchronous requests (hcsshim: 5 minutes). WaitForProcess has none.
        public var requestTimeout: Duration = .seconds(300)
        /// Largest message accepted from the guest (hcsshim: 65536).
        public var maxIncomingMessageSize = FrameHeader.hostMaxMessageSize
        /// Track containers created through this client and treat a notification for any other
        /// container (or a second one) as fatal, as hcsshim does.
        public var trackContainers = true
        /// Containers to treat as created through this client from the start: a host that
        /// reconnects to a guest whose containers it created on an earlier connection (as
        /// hcsshim's live-migration path pre-registers them).
        public var adoptedContainers: Set<String> = []
        /// The first sequence id (hcsshim `SeedNextID`): above every id an earlier connection
        /// to the same guest used, so that no new request shares an id with an adopted one.
        public var firstID: UInt64 = 0
        public init() {}
    }

    struct Pending: Sendable {
        /// Decodes the body and resolves the caller; returns the decoded base or the error.
        var deliver: @Sendable (UnsafeRawBufferPointer) -> Result<ResponseBase, BridgeClientError>
        var fail: @Sendable (BridgeClientError) -> Void
        var deadline: ContinuousClock.Instant?
        /// Set for Create requests: the container to start tracking on success.
        var createdContainer: String?
    }

    struct State {
        var nextID: UInt64 = 0
        var pending: [UInt64: Pending] = [:]
        var closed: BridgeClientError?
        var containers: Set<String> = []
    }

    private let connection: AsyncFD
    private let configuration: Configuration
    private let logger: Logger
    private let writer: FrameWriter
    private let state = Mutex(State())
    private let notificationSink: AsyncStream<ContainerNotification>.Continuation
    /// Container notifications, in arrival order. Finishes when the bridge closes.
    public let notifications: AsyncStream<ContainerNotification>

    public init(connection: AsyncFD, configuration: Configuration = Configuration(), logger: Logger) {
        self.connection = connection
        self.configuration = configuration
        state.withLock { s in
            s.containers = configuration.adoptedContainers
            s.nextID = configuration.firstID
        }
        self.logger = logger
        self.writer = FrameWriter(connection: connection)
        (notifications, notificationSink) = AsyncStream.makeStream(of: ContainerNotification.self)
    }

    /// Why the bridge closed, once it has.
    public var closeReason: BridgeClientError? { state.withLock { $0.closed } }

    /// Containers created (or adopted) through this client whose notification has not arrived.
    public var trackedContainers: Set<String> { state.withLock { $0.containers } }

    /// The next sequence id (hcsshim `NextID`).
    public var nextID: UInt64 { state.withLock { $0.nextID } }

    // MARK: Sending

    /// Sends `request` and awaits its response. Throws `GuestRPCError` when `Result` is not 0
    /// (unless `checkResult` is false), `BridgeClientError` when the bridge fails, or
    /// `CancellationError` when the calling task is cancelled (the late answer is then
    /// discarded without error, as hcsshim does for cancellable requests).
    public func send<R: BridgeRequest>(_ request: R, checkResult: Bool = true) async throws -> R.Response {
        let body = try request.messageBody()
        let slot = ResponseSlot()
        let pending = self.pending(R.self, resolving: slot, createdContainer: R.identifier == .create ? request.base.containerId : nil)
        try Task.checkCancellation()
        let mustDrain = try body.withUnsafeBytes { bytes in
            try writer.append { buffer in
                let id = try state.withLock { s throws(BridgeClientError) -> UInt64 in
                    if let closed = s.closed { throw closed }
                    let id = s.nextID
                    s.nextID &+= 1
                    s.pending[id] = pending
                    return id
                }
                buffer.appendFrame(type: R.identifier, id: id, body: bytes, newline: true)
            }
        }
        if mustDrain {
            do {
                try await writer.drain()
            } catch {
                kill(.closed(reason: "bridge write: \(error)"))
            }
        }
        return try await Self.response(R.Response.self, from: slot, checkResult: checkResult)
    }

    /// Expects the response to request `id`, which a client of an earlier connection to the
    /// same guest sent, as hcsshim's live-migration path adopts the WaitForProcess requests it
    /// still has outstanding (`PreregisterRPC`): the guest answers them on this connection when
    /// their processes exit. Call after negotiating; give the client a `firstID` above the old ids.
    public func adopt<R: BridgeRequest>(_ request: R.Type, id: UInt64) throws(BridgeClientError) -> AdoptedRequest<R.Response> {
        let slot = ResponseSlot()
        let pending = self.pending(R.self, resolving: slot, createdContainer: nil)
        try state.withLock { s throws(BridgeClientError) in
            if let closed = s.closed { throw closed }
            guard s.pending[id] == nil else { throw .protocolViolation("request id \(id) is already awaiting a response") }
            s.pending[id] = pending
            s.nextID = max(s.nextID, id &+ 1)  // no new request takes the id (hcsshim seeds above them)
        }
        return AdoptedRequest(slot: slot)
    }

    /// What delivers a response of `R` (or a failure) to `slot`.
    private func pending<R: BridgeRequest>(_: R.Type, resolving slot: ResponseSlot, createdContainer: String?) -> Pending {
        let timeout: Duration? = R.identifier == .waitForProcess ? nil : configuration.requestTimeout
        return Pending(
            deliver: { bytes in
                do {
                    let response = try R.Response.fromMessageBody(bytes)
                    try HostChecks.validate(response.base)
                    if R.identifier == .negotiateProtocol && response.base.result.isSuccess { try HostChecks.validateNegotiation(bytes) }
                    slot.resolve(.success(ResponseBox(response)))
                    return .success(response.base)
                } catch {
                    let failure = error as? BridgeClientError ?? .protocolViolation("response unmarshal failed: \(JSONErrorText.describe(error))")
                    slot.resolve(.failure(failure))
                    return .failure(failure)
                }
            },
            fail: { slot.resolve(.failure($0)) },
            deadline: timeout.map { ContinuousClock.now.advanced(by: $0) },
            createdContainer: createdContainer)
    }

    /// Awaits the response `slot` receives; a cancelled caller walks away (the late answer is
    /// discarded).
    static func response<Response: BridgeResponse>(_: Response.Type, from slot: ResponseSlot, checkResult: Bool) async throws -> Response {
        let boxed = try await withTaskCancellationHandler {
            try await slot.value()
        } onCancel: {
            slot.resolve(.failure(CancellationError()))
        }
        // Only the deliver closure made for this slot's request resolves it with a value: a ResponseBox<Response>.
        let response = unsafeDowncast(boxed, to: ResponseBox<Response>.self).value
        if checkResult && !response.base.result.isSuccess { throw GuestRPCError(base: response.base) }
        return response
    }

    /// Closes the bridge (orderly): pending requests fail with `.closed(reason: nil)`.
    public func close() { kill(.closed(reason: nil)) }

    // MARK: Receiving

    /// Reads until the bridge closes; returns why (nil for an orderly close by either side).
    @discardableResult
    public func run() async -> BridgeClientError? {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.watchdog() }
            let reason = await readLoop()
            kill(reason ?? .closed(reason: nil))
            group.cancelAll()
        }
        let reason = closeReason
        if case .closed(nil) = reason { return nil }
        return reason
    }

    private func readLoop() async -> BridgeClientError? {
        let reader = FrameReader(maxMessageSize: configuration.maxIncomingMessageSize, initialCapacity: 64 << 10)
        while true {
            let n: Int
            do {
                n = try await connection.readStream(into: reader.writableBytes())
            } catch {
                return closeReason ?? .closed(reason: "bridge read failed: \(error)")
            }
            if n == 0 {
                if reader.bufferedCount > 0 { return .closed(reason: "bridge read failed: unexpected EOF") }
                return nil
            }
            reader.didWrite(n)
            do {
                while let frame = try reader.nextFrame() {
                    if let violation = handle(frame) { return violation }
                }
            } catch {
                return .protocolViolation("invalid message size: \(error)")
            }
        }
    }

    /// Processes one frame; returns the violation that must tear the bridge down, if any.
    private func handle(_ frame: FrameReader.Frame) -> BridgeClientError? {
        let header = frame.header
        switch header.type.kind {
        case .response:
            let entry = state.withLock { $0.pending.removeValue(forKey: header.id) }
            guard let entry else {
                return .protocolViolation("bridge received unknown rpc response for id \(header.id), type \(header.type)")
            }
            switch entry.deliver(frame.body) {
            case .failure(let error):
                return error
            case .success(let base):
                if let container = entry.createdContainer, base.result.isSuccess, configuration.trackContainers {
                    state.withLock { _ = $0.containers.insert(container) }
                }
                return nil
            }
        case .notification:
            guard header.type == .containerNotification else {
                return .protocolViolation("bridge received unknown notification message \(header.type)")
            }
            let notification: ContainerNotification
            do {
                notification = try BridgeJSON.decode(ContainerNotification.self, from: frame.body)
                try HostChecks.validate(notification)
            } catch {
                return error as? BridgeClientError ?? .protocolViolation("notification unmarshal failed: \(JSONErrorText.describe(error))")
            }
            if configuration.trackContainers {
                let known = state.withLock { $0.containers.remove(notification.base.containerId) != nil }
                if !known {
                    return .protocolViolation("bridge notification failed: container \(notification.base.containerId.prefix(80)) not found")
                }
            }
            notificationSink.yield(notification)
            return nil
        default:
            return .protocolViolation("bridge received unknown message type \(header.type)")
        }
    }

    // MARK: Teardown

    /// Tears the bridge down once: closes the connection, fails every outstanding request.
    private func kill(_ reason: BridgeClientError) {
        let victims = state.withLock { s -> [Pending]? in
            if s.closed != nil { return nil }
            s.closed = reason
            let victims = Array(s.pending.values)
            s.pending.removeAll()
            return victims
        }
        guard let victims else { return }
        if case .closed(nil) = reason {
            logger.debug("bridge terminating")
        } else {
            logger.error("bridge forcibly terminating", metadata: ["reason": "\(reason)"])
        }
        writer.fail(reason)
        try? connection.shutdownRead()
        connection.close()
        for victim in victims { victim.fail(reason) }
        notificationSink.finish()
    }

    /// Tears the bridge down when a synchronous request outlives its deadline.
    private func watchdog() async {
        let period = min(configuration.requestTimeout / 4, .seconds(1))
        while !Task.isCancelled {
            do { try await Task.sleep(for: period) } catch { return }
            let now = ContinuousClock.now
            let expired = state.withLock { s -> UInt64? in
                s.pending.first(where: { $0.value.deadline.map { $0 <= now } ?? false })?.key
            }
            if let expired {
                kill(.timeout(id: expired))
                return
            }
        }
    }
}

/// A response the client expects to a request an earlier connection's client sent
/// (`BridgeClient.adopt`).
public struct AdoptedRequest<Response: BridgeResponse>: Sendable {
    let slot: ResponseSlot

    /// Awaits the response; throws as `BridgeClient.send` does.
    public func response(checkResult: Bool = true) async throws -> Response {
        try await BridgeClient.response(Response.self, from: slot, checkResult: checkResult)
    }
}
