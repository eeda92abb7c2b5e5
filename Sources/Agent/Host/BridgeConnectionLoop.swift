import Bridge
import EventLoop
import Logging
import Synchronization

/// Keeps the agent connected to the host: dials the bridge port, serves the connection, and
/// when the host goes away re-dials every 100 ms while containers keep running (bridge-protocol
/// §1.2). Exit notifications produced while disconnected are queued and delivered, in order,
/// once the next connection has negotiated. WaitForProcess requests in flight go on waiting
/// across the reconnect and answer on the connection current when their process exits, as a
/// live-migrating host expects (`BridgeSession`); the others end with their connection.
public final class BridgeConnectionLoop: Sendable {
    public static let bridgePort: UInt32 = 0x4000_0000

    private struct State {
        var queue: [ContainerNotification] = []
        var server: BridgeServer<AgentHost>?
        /// The dial in progress, which `stop()` cancels (a vsock connect that times out is
        /// retried for up to ~20 s).
        var dial: Task<AsyncFD, any Error>?
        var stopping = false
        /// A flush is sending: it takes what is queued meanwhile, so notifications keep their order.
        var flushing = false
    }

    private let state = Mutex(State())
    private let session = BridgeSession()
    /// Whether a negotiated connection is up, and since when (for the init stdio re-dial).
    public let link: HostLink
    let transport: any Transport
    let port: UInt32
    let loop: EventLoop
    let logger: Logger

    public init(transport: any Transport, port: UInt32 = BridgeConnectionLoop.bridgePort, loop: EventLoop = .shared, logger: Logger,
                link: HostLink = HostLink()) {
        self.link = link
        self.transport = transport
        self.port = port
        self.loop = loop
        self.logger = logger
    }

    /// Queues `notification` and delivers it now if a negotiated connection is up.
    public func send(_ notification: ContainerNotification) async {
        let queued = state.withLock { s -> Int in s.queue.append(notification); return s.queue.count }
        logger.debug("container notification queued", metadata: ["cid": "\(notification.base.containerId)", "type": "\(notification.type)", "queued": "\(queued)"])
        await flush()
    }

    /// Serves connections until `stop()`; then cancels the waits still in flight.
    public func run(host: AgentHost) async {
        await withDiscardingTaskGroup { carried in
            await serveConnections(host: host, carrying: &carried)
            carried.cancelAll()
        }
    }

    private func serveConnections(host: AgentHost, carrying carried: inout DiscardingTaskGroup) async {
        while !state.withLock({ $0.stopping }) {
            logger.debug("bridge dialing", metadata: ["port": "\(port)"])
            let dial = Task(executorPreference: loop) { [transport, port] in try await transport.dial(port: port) }
            if state.withLock({ s -> Bool in s.dial = dial; return s.stopping }) { dial.cancel() }
            let outcome = await dial.result
            let stopping = state.withLock { s -> Bool in s.dial = nil; return s.stopping }
            let connection: AsyncFD
            switch outcome {
            case .success(let dialled):
                connection = dialled  // a stop meanwhile is handled below, with the server
            case .failure(let error):
                if stopping {
                    logger.debug("bridge dial stopped", metadata: ["error": "\(error)"])
                    return
                }
                logger.debug("bridge dial failed; retrying in 100 ms", metadata: ["error": "\(error)"])
                try? await loop.sleep(for: .milliseconds(100))
                continue
            }
            logger.info("bridge connected")
            let server = BridgeServer(connection: connection, handler: host, logger: logger, session: session)
            // A stop() that came while dialling found no server to close: do not serve this one.
            let stopped = state.withLock { s -> Bool in
                if s.stopping { return true }
                s.server = server
                return false
            }
            if stopped {
                connection.close()
                break
            }
            let linkToken = link.connectionBegins()
            let flusher = Task(executorPreference: loop) { [self] in
                // Deliver what queued while disconnected once the host has negotiated.
                while !server.isNegotiated {
                    guard (try? await loop.sleep(for: .milliseconds(5))) != nil else { return }
                }
                link.negotiated(linkToken)
                await flush()
            }
            let ending = await server.serve(carrying: &carried, onReadEnded: { [link] in link.lost() })
            flusher.cancel()
            state.withLock { $0.server = nil }
            logger.info("bridge connection ended", metadata: ["how": "\(ending)"])
            if state.withLock({ $0.stopping }) { break }
            try? await loop.sleep(for: .milliseconds(100))
        }
    }

    /// Stops re-dialling (a dial in progress is cancelled) and closes the current connection.
    public func stop() {
        let (server, dial) = state.withLock { s in
            s.stopping = true
            return (s.server, s.dial)
        }
        dial?.cancel()
        server?.close()
    }

    private func flush() async {
        guard state.withLock({ s -> Bool in
            if s.flushing { return false }
            s.flushing = true
            return true
        }) else { return }
        while true {
            let next = state.withLock { s -> (BridgeServer<AgentHost>, ContainerNotification)? in
                guard let server = s.server, server.isNegotiated, !s.queue.isEmpty else {
                    s.flushing = false  // under the same lock as the empty check: nothing is missed
                    return nil
                }
                return (server, s.queue.removeFirst())
            }
            guard let (server, notification) = next else { return }
            do {
                try await server.sendNotification(notification)
                logger.debug("container notification sent", metadata: ["cid": "\(notification.base.containerId)"])
            } catch {
                logger.debug("container notification not sent; queued again", metadata: ["cid": "\(notification.base.containerId)", "error": "\(error)"])
                // Back to the front. A connection that negotiated while this send was failing
                // found `flushing` set and left the queue to this flush: go on with it.
                let retry = state.withLock { s -> Bool in
                    s.queue.insert(notification, at: 0)
                    if let current = s.server, current !== server, current.isNegotiated { return true }
                    s.flushing = false
                    return false
                }
                if !retry { return }
            }
        }
    }
}
