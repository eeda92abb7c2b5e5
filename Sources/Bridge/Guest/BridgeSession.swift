import FoundationEssentials
import Synchronization

/// What the guest's side of the bridge keeps across connections: the requests that outlive
/// the connection they came on, and the connection their answers go to now.
///
/// A host that live-migrates the VM drops the bridge and accepts a fresh one from the guest.
/// It then renegotiates and re-registers the ids of the WaitForProcess requests it still has
/// outstanding (hcsshim's `PreregisterRPC`), expecting each answer when its process exits, on
/// whichever connection is current then (bridge-protocol §1.2). So `BridgeServer` runs
/// WaitForProcess in a task group that outlives its connection and answers through the
/// session. An answer due while no negotiated connection is up is not sent: a host learns the
/// old ids only after negotiating, and an answer whose id it does not know tears its bridge
/// down. The handler hears that the answer was not delivered (`ProcessExitAnswer.answered`)
/// and keeps the exit code for the host's next wait (hcsshim probes with a short one). This
/// narrows the window, it does not close it: hcsshim re-registers a process's wait some time
/// after negotiating, and a process that exits in between is answered to an id the host does
/// not know yet, as with Go's guest.
public final class BridgeSession: Sendable {
    /// Why an answer was not sent.
    public enum Undelivered: Error, Sendable, Equatable {
        /// No connection is up, or the current one has not negotiated yet.
        case noNegotiatedConnection
    }

    /// Requests being handled, across connections, for DumpStacks.
    let inFlight = InFlightRequests()
    private let current = Mutex<(any SessionConnection)?>(nil)
    private let attachments = Atomic<UInt64>(0)

    public init() {}

    /// `connection` is the one answers go to from now on. Returns its number in this session
    /// (1 for the first), which tells DumpStacks the requests carried from earlier ones.
    func attach(_ connection: any SessionConnection) -> UInt64 {
        current.withLock { $0 = connection }
        return attachments.add(1, ordering: .relaxed).newValue
    }

    /// `connection` has ended: answers due from now on wait for no one.
    func detach(_ connection: any SessionConnection) {
        current.withLock { if $0 === connection { $0 = nil } }
    }

    /// Writes a response on the current connection once it has negotiated, returning when the
    /// frame is written; throws `Undelivered` when there is none, or the connection's error if
    /// the write fails.
    func respond(type: MessageIdentifier, id: UInt64, body: Data) async throws {
        let connection = current.withLock { c -> (any SessionConnection)? in
            guard let c, c.isNegotiated else { return nil }
            return c
        }
        guard let connection else { throw Undelivered.noNegotiatedConnection }
        try await connection.sendResponse(type: type, id: id, body: body)
    }
}

/// A bridge connection as the session sees it: whether the host negotiated on it, and how to
/// write a response on it.
protocol SessionConnection: AnyObject, Sendable {
    var isNegotiated: Bool { get }
    func sendResponse(type: MessageIdentifier, id: UInt64, body: Data) async throws
}
