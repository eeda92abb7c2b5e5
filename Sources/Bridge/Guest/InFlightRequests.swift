import Synchronization

/// The requests the bridge is handling right now (WaitForProcess ones carried over from an
/// earlier connection included), for DumpStacks: what the host is waiting for and for how long
/// (a WaitForProcess that never returns, a create stuck in runc).
/// One lock, one dictionary entry per request; nothing is kept once a request is answered.
final class InFlightRequests: Sendable {
    private struct Entry {
        let type: MessageIdentifier
        let sequence: UInt64
        let containerId: String
        /// The connection it came on (`BridgeSession.attach`).
        let connection: UInt64
        let started: ContinuousClock.Instant
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var nextToken: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Most requests a report lists (the oldest); the rest are counted.
    static let reportLimit = 32

    /// Notes a request as being handled; pass the token to `end`.
    func begin(type: MessageIdentifier, sequence: UInt64, containerId: String, connection: UInt64) -> UInt64 {
        let entry = Entry(type: type, sequence: sequence, containerId: containerId, connection: connection, started: .now)
        return state.withLock { s in
            s.nextToken &+= 1
            s.entries[s.nextToken] = entry
            return s.nextToken
        }
    }

    /// Notes the request answered (or dropped).
    func end(_ token: UInt64) {
        state.withLock { s in
            s.entries.removeValue(forKey: token)
            // Dictionaries keep their capacity; do not keep a burst's.
            if s.entries.isEmpty && s.entries.capacity > 64 { s.entries = [:] }
        }
    }

    /// Lines for DumpStacks, oldest first, without the request asking (`excluding`). A request
    /// that came on another connection than the asking one is marked as carried from an
    /// earlier connection: a WaitForProcess kept across a reconnect, whose sequence number is
    /// the old connection's.
    func report(excluding token: UInt64) -> String {
        let now = ContinuousClock.now
        let (asker, unsorted) = state.withLock { s in (s.entries[token]?.connection, s.entries.filter { $0.key != token }.map(\.value)) }
        let entries = unsorted.sorted { $0.started < $1.started }
        var text = "bridge: \(entries.count) other request\(entries.count == 1 ? "" : "s") in flight\n"
        for entry in entries.prefix(Self.reportLimit) {
            let age = now - entry.started
            let ms = age.components.seconds * 1000 + age.components.attoseconds / 1_000_000_000_000_000
            // The id is the host's text: control characters would forge lines.
            let container = String(entry.containerId.prefix(80).map { ($0.asciiValue ?? 0x20) < 0x20 ? "?" : $0 })
            let carried = asker.map { $0 != entry.connection } ?? false
            text += "  \(entry.type.guestName) #\(entry.sequence) container \(container) for \(ms) ms\(carried ? ", asked on an earlier connection" : "")\n"
        }
        if entries.count > Self.reportLimit { text += "  ... and \(entries.count - Self.reportLimit) more\n" }
        return text
    }
}
