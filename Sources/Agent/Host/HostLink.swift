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
    private struct State {
        /// Counts the connections that ended: a connection negotiates under the count it began with.
        var ended = 0
        var negotiatedSince: ContinuousClock.Instant?
    }

    private let state = Mutex(State())

    public init() {}

    /// When the current connection negotiated; nil while no negotiated connection is up.
    public var negotiatedSince: ContinuousClock.Instant? { state.withLock { $0.negotiatedSince } }

    /// A connection begins: what it passes to `negotiated`.
    func connectionBegins() -> Int { state.withLock { $0.ended } }

    /// The connection that began with `token` has negotiated (ignored if it has ended since:
    /// its negotiation was seen late).
    func negotiated(_ token: Int) {
        state.withLock { s in if s.ended == token { s.negotiatedSince = .now } }
    }

    /// The current connection ended: called as soon as it stops reading, not once its handlers
    /// have finished (a create or a delete can take seconds), so that a re-dial counting its
    /// grace does not take the old connection for a live one.
    func lost() {
        state.withLock { s in
            s.ended += 1
            s.negotiatedSince = nil
        }
    }
}
