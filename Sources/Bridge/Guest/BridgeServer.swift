import EventLoop
import FoundationEssentials
import Logging
import Synchronization

/// The guest side of one bridge connection: reads frames, answers negotiation itself, runs
/// every other request in its own task against a `BridgeHandler`, and writes responses as they
/// complete (out of order, matched by sequence id) plus notifications (ID 0).
///
/// Bad messages get error responses and the connection stays up; only a header that makes
/// framing impossible (size < 16, or above `maxIncomingMessageSize`) closes it, with the reason
/// logged. Negotiation state is per connection: a new connection needs a new negotiation.
/// WaitForProcess requests can outlive the connection (`serve(carrying:)`, `BridgeSession`).
public final class BridgeServer<Handler: BridgeHandler>: SessionConnection {
    /// Limits and buffer sizes.
    public struct Configuration: Sendable {
        /// Largest incoming message accepted (header included). Host create bodies with big
        /// OCI specs are tens of KiB; the default leaves ample room.
        public var maxIncomingMessageSize = 16 << 20
        /// Largest message we send: the host's limit.
        public var maxOutgoingMessageSize = FrameHeader.hostMaxMessageSize
        /// Initial read buffer (grows only as large messages arrive).
        public var readBufferSize = 64 << 10
        public init() {}
    }

    /// How `serve()` ended.
    public enum Ending: Sendable, Equatable {
        /// The host closed the connection.
        case closed
        /// The stream could not be framed any further; the connection was closed.
        case framingError(FramingError)
        /// Reading failed (e.g. the connection was reset or closed locally).
        case readError(String)
    }

    private let connection: AsyncFD
    private let handler: Handler
    private let configuration: Configuration
    private let logger: Logger
    private let writer: FrameWriter
    private let negotiated = Atomic<Bool>(false)
    private let session: BridgeSession
    /// This connection's number in the session (`BridgeSession.attach`), set when serving begins.
    private let sessionConnection = Atomic<UInt64>(0)
    private var inFlight: InFlightRequests { session.inFlight }

    /// `session`: shared by the connections of one agent, so that WaitForProcess requests carried
    /// across a reconnect answer on the current one (`serve(carrying:)`); a server of its own
    /// when nil.
    public init(connection: AsyncFD, handler: Handler, configuration: Configuration = Configuration(), logger: Logger,
                session: BridgeSession? = nil) {
        self.connection = connection
        self.handler = handler
        self.configuration = configuration
        self.logger = logger
        self.writer = FrameWriter(connection: connection)
        self.session = session ?? BridgeSession()
    }

    /// Whether NegotiateProtocol succeeded on this connection.
    public var isNegotiated: Bool { negotiated.load(ordering: .acquiring) }

    /// Serves until the connection ends. In-flight handlers are cancelled and awaited before
    /// this returns (their late responses are dropped).
    public func serve() async -> Ending {
        await withDiscardingTaskGroup { carried in
            let ending = await serve(carrying: &carried)
            carried.cancelAll()
            return ending
        }
    }

    /// Serves until the connection ends, running WaitForProcess requests in `carried`, a group
    /// that outlives the connection: they go on waiting, and answer on the session's current
    /// connection when their process exits. Other in-flight handlers are cancelled and awaited
    /// before this returns (their late responses are dropped). `onReadEnded` runs as soon as
    /// the connection stops being read, before those handlers have ended.
    public func serve(carrying carried: inout DiscardingTaskGroup, onReadEnded: () -> Void = {}) async -> Ending {
        sessionConnection.store(session.attach(self), ordering: .relaxed)
        let ending: Ending = await withDiscardingTaskGroup { group in
            let ending = await readLoop(group: &group, carried: &carried)
            // At once, not after the handlers cancelled below have ended (a create runs to its
            // end): a wait's answer due meanwhile must not go to a connection that is ending.
            session.detach(self)
            onReadEnded()
            group.cancelAll()
            return ending
        }
        writer.fail(EventLoopError.closed)
        connection.close()
        return ending
    }

    /// Sends a container notification (header ID 0). Dropped with an error log if it cannot
    /// fit the host's size limit.
    public func sendNotification(_ notification: ContainerNotification) async throws {
        guard let body = OutgoingBodies.notification(notification, limit: configuration.maxOutgoingMessageSize - FrameHeader.byteCount) else {
            logger.error("dropping container notification that exceeds the bridge message limit",
                         metadata: ["cid": .string(String(notification.base.containerId.prefix(80)))])
            return
        }
        // Returns once the frame is written: if the connection breaks first, the caller keeps
        // the notification for the next connection instead of losing it behind a failed write.
        try await writer.sendAwaitingWrite { buffer in
            body.withUnsafeBytes { buffer.appendFrame(type: .containerNotification, id: 0, body: $0) }
        }
    }

    /// Closes the connection; `serve()` returns soon after.
    public func close() {
        try? connection.shutdownRead()
        connection.close()
    }

    // MARK: Reading

    private func readLoop(group: inout DiscardingTaskGroup, carried: inout DiscardingTaskGroup) async -> Ending {
        let reader = FrameReader(maxMessageSize: configuration.maxIncomingMessageSize, initialCapacity: configuration.readBufferSize)
        while true {
            let n: Int
            do {
                n = try await connection.readStream(into: reader.writableBytes())
            } catch {
                logger.debug("bridge read ended", metadata: ["error": "\(error)"])
                return .readError(String(describing: error))
            }
            if n == 0 {
                do {
                    try reader.finish()
                } catch {
                    logger.warning("bridge connection closed mid-message", metadata: ["reason": "\(error)"])
                }
                return .closed
            }
            reader.didWrite(n)
            do {
                while let frame = try reader.nextFrame() {
                    handleFrame(frame, group: &group, carried: &carried)
                }
            } catch {
                logger.error("closing bridge connection: framing impossible", metadata: ["reason": "\(error)"])
                try? connection.shutdownRead()
                return .framingError(error)
            }
        }
    }

    /// Routes one frame (decoding in place) and starts its handler task, or answers at once.
    private func handleFrame(_ frame: FrameReader.Frame, group: inout DiscardingTaskGroup, carried: inout DiscardingTaskGroup) {
        let header = frame.header
        if logger.logLevel <= .trace {
            logger.trace("bridge request", metadata: ["type": "\(header.type)", "id": "\(header.id)", "size": "\(header.size)"])
        }
        switch RequestRouter.route(type: header.type, body: frame.body, negotiated: isNegotiated) {
        case .reject(let error, let activityId):
            let body = OutgoingBodies.failure(error, activityId: activityId, limit: outgoingLimit)
            group.addTask { try? await self.send(type: header.type.responseIdentifier, id: header.id, body: body) }
        case .dispatch(.negotiateProtocol(let request)):
            // Answered inline so that requests read after it see the negotiated state (§7.2).
            let body: Data
            var succeeded = false
            do {
                let version = try RequestRouter.negotiate(request)
                succeeded = true
                let capabilities = GcsCapabilities(guestDefinedCapabilities: handler.guestCapabilities)
                body = OutgoingBodies.response(
                    NegotiateProtocolResponse(base: ResponseBase(activityId: request.base.activityId), version: version, capabilities: capabilities),
                    limit: outgoingLimit)
            } catch {
                body = OutgoingBodies.failure(error, activityId: request.base.activityId, limit: outgoingLimit)
            }
            // Queued before the connection counts as negotiated: what the negotiated state lets
            // out (a carried wait's answer, a queued notification) cannot overtake it, and a
            // host meets no answer to an id it has not re-registered yet ahead of it.
            let mustDrain = try? body.withUnsafeBytes { bytes in
                try writer.append { $0.appendFrame(type: header.type.responseIdentifier, id: header.id, body: bytes) }
            }
            if succeeded { negotiated.store(true, ordering: .releasing) }
            if mustDrain == true { group.addTask { try? await self.writer.drain() } }
        case .dispatch(.waitForProcess(let request)):
            carried.addTask { await self.runWait(request, header: header) }
        case .dispatch(let routed):
            group.addTask { await self.run(routed, header: header) }
        }
    }

    private var outgoingLimit: Int { configuration.maxOutgoingMessageSize - FrameHeader.byteCount }

    // MARK: Handling

    /// Answers one request in its task. Kept to a few awaits, with logging out of line: its
    /// async frame is allocated for every request (see `RequestAnswers`).
    private func run(_ routed: RoutedRequest, header: FrameHeader) async {
        let token = inFlight.begin(type: header.type, sequence: header.id, containerId: routed.base.containerId,
                                   connection: sessionConnection.load(ordering: .relaxed))
        let body = await RequestAnswers(handler: handler, outgoingLimit: outgoingLimit, logger: logger)
            .answer(routed, activityId: routed.base.activityId, header: header, inFlight: inFlight, token: token)
        // Answered: no longer in flight, even while the response is being written.
        inFlight.end(token)
        if let body { _ = await deliver(body, header: header, carried: false) }
    }

    /// A WaitForProcess's task: `run` without the dispatch. It stays suspended for its
    /// process's life with every frame on the way (hcsshim keeps one in flight per process),
    /// so it has as few as it can.
    private func runWait(_ request: WaitForProcessRequest, header: FrameHeader) async {
        let token = inFlight.begin(type: header.type, sequence: header.id, containerId: request.base.containerId,
                                   connection: sessionConnection.load(ordering: .relaxed))
        let answers = RequestAnswers(handler: handler, outgoingLimit: outgoingLimit, logger: logger)
        let exit: ProcessExitAnswer?, body: Data
        do {
            let answer = try await handler.waitForProcess(request)
            exit = answer
            body = answers.waitResponse(answer.exitCode, request.base.activityId)
        } catch {
            exit = nil
            body = answers.failure(error, request.base.activityId, header: header)
        }
        inFlight.end(token)
        let delivered = await deliver(body, header: header, carried: true)
        await exit?.answered?(delivered)
    }

    /// Sends a response; whether it was written (or, for a wait, whether it was written on the
    /// session's current connection, perhaps a later one than it came on).
    @inline(never)
    nonisolated(nonsending) private func deliver(_ body: Data, header: FrameHeader, carried: Bool) async -> Bool {
        do {
            if carried {
                try await session.respond(type: header.type.responseIdentifier, id: header.id, body: body)
            } else {
                try await send(type: header.type.responseIdentifier, id: header.id, body: body)
            }
            return true
        } catch {
            logUndelivered(error, header: header)
            return false
        }
    }

    @inline(never)
    private func logUndelivered(_ error: any Error, header: FrameHeader) {
        logger.debug("dropping response: no connection to send it on", metadata: ["id": "\(header.id)", "type": "\(header.type)", "error": "\(error)"])
    }

    /// Returns once the frame itself is written (not merely queued behind a write that may
    /// yet fail): the session's caller learns whether the host got the answer.
    func sendResponse(type: MessageIdentifier, id: UInt64, body: Data) async throws {
        try await writer.sendAwaitingWrite { buffer in
            body.withUnsafeBytes { buffer.appendFrame(type: type, id: id, body: $0) }
        }
    }

    private func send(type: MessageIdentifier, id: UInt64, body: Data) async throws {
        let mustDrain = try body.withUnsafeBytes { bytes in
            try writer.append { $0.appendFrame(type: type, id: id, body: bytes) }
        }
        if mustDrain { try await writer.drain() }
    }
}
