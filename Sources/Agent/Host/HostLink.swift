import Synchronization

/// Whether a negotiated bridge connection to the host is up, and since when.
///
/// Exists for the container inits' stdio re-dial (`StdioRedial`), which must tell a live
/// migration from a host that closed one stream for good. In a migration the bridge goes down
/// with the stdio connections, and the host listens on the stdio ports again once it has
/// reconnected (hcsshim's `OpenProcessWithIO`). A host that closes a stream while the bridge
/// stays up (its own reader went away) never listens on that port again: a re-dial that keeps
/// failing while the bridge has been up for a while is abandoned, so the init's exit can
/// still be reported.
public final class HostLink: Sendable {
    private let since = Mutex<ContinuousClock.Instant?>(nil)

    public init() {}

    /// When the current connection negotiated; nil while no negotiated connection is up.
    public var negotiatedSince: ContinuousClock.Instant? { since.withLock { $0 } }

    /// A connection has negotiated.
    func negotiated() { since.withLock { $0 = .now } }

    /// The connection ended.
    func lost() { since.withLock { $0 = nil } }
}
