import EventLoop
import Logging
import Synchronization

/// Re-dials a container init's stdout and stderr ports when the host's end of one goes away,
/// as a live-migrating host expects (guest-behaviour §6, "reconnecting init output"): every
/// 100 ms until a dial connects; until `stop()` (the host shut the container down or deleted
/// it; a signal to the init does not stop it, as in Go's guest); or until the dials have kept
/// failing for `grace` while a negotiated bridge connection was up (`HostLink`): a host that is
/// connected and has not listened on the port again by then closed the stream for good, and
/// the relay ends as it would without a re-dial, so that the init's exit can be reported. The relays (`Relay.Options.redial`) send
/// the last 128 KiB again on a new connection and go on, so a container that logs to stdout
/// neither loses its output nor dies of SIGPIPE when the host reconnects.
final class StdioRedial: Sendable {
    private let transport: any Transport
    private let loop: EventLoop
    private let logger: Logger
    private let link: HostLink
    private let grace: Duration
    private let stopped = Atomic<Bool>(false)

    init(transport: any Transport, loop: EventLoop, logger: Logger, link: HostLink, grace: Duration) {
        self.transport = transport
        self.loop = loop
        self.logger = logger
        self.link = link
        self.grace = grace
    }

    /// Re-dialling ends: a relay waiting for a connection ends with its write's error.
    func stop() { stopped.store(true, ordering: .releasing) }

    /// What a relay calls for a new connection to `port` (nil for a port the host gave none).
    /// The first attempt is immediate unless the previous re-dial of the port succeeded less
    /// than a second ago (a host that accepts and drops at once is not dialled in a tight loop).
    /// Ends with nil when stopped, when abandoned (see the type), or when the relay's task is
    /// cancelled (the relay ended).
    func dialer(port: UInt32) -> (@Sendable () async -> AsyncFD?)? {
        guard port != 0 else { return nil }
        let lastSuccess = Mutex<ContinuousClock.Instant?>(nil)
        return { [self] in
            logger.info("init stdio connection lost; re-dialling", metadata: ["port": "\(port)"])
            let began = ContinuousClock.now
            var pause = lastSuccess.withLock { $0 }.map { began - $0 < .seconds(1) } ?? false
            while !stopped.load(ordering: .acquiring) && !Task.isCancelled {
                if pause {
                    guard (try? await loop.sleep(for: .milliseconds(100))) != nil else { return nil }
                }
                pause = true
                // One attempt at a time (a vsock dial retries timeouts for up to ~20 s): the
                // grace is checked between attempts.
                if let connection = try? await transport.dialOnce(port: port) {
                    if stopped.load(ordering: .acquiring) || Task.isCancelled { connection.close(); return nil }
                    lastSuccess.withLock { $0 = .now }
                    logger.info("init stdio re-dialled", metadata: ["port": "\(port)"])
                    return connection
                }
                // Counted from the later of this re-dial's start and the bridge's negotiation:
                // after a migration the host listens again only once it has reconnected.
                if let since = link.negotiatedSince, ContinuousClock.now - max(since, began) >= grace {
                    logger.warning("init stdio re-dial abandoned: the host is connected but not listening on the port; its output ends here",
                                   metadata: ["port": "\(port)", "grace": "\(grace)"])
                    return nil
                }
            }
            logger.info("init stdio re-dial stopped", metadata: ["port": "\(port)"])
            return nil
        }
    }
}
