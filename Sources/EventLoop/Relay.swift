import Glibc
import Shims
import Synchronization

/// Moves bytes from one descriptor to another until end of file, entirely on the loop thread:
/// readiness events call straight into the relay, so there is no task switch, allocation or
/// actor hop per chunk. This is the agent's stdio data path (process pipe or pty <-> host socket).
///
/// - Mechanism: `splice(2)` (directly when either end is a pipe, through a private pipe
///   otherwise) for bulk streams; `read`/`write` with the loop's scratch buffer for chatty streams
///   and for descriptors splice cannot handle (a tty). In `.automatic` mode the relay watches the
///   size of its transfers and switches between the two (see `RelayMechanism`).
/// - Backpressure: while the destination is full the relay stops reading the source, so the
///   writer of the source blocks; it never buffers more than one read.
/// - Fairness: a relay moves at most `turnBudget` bytes per turn, then yields to the others.
/// - End: at source EOF the destination is half-closed (`shutdown(SHUT_WR)` for a socket, close
///   for anything else) as `Options.onSourceEOF` says; errors end the relay and are reported.
/// - Re-dial (`Options.redial`): a destination whose peer went away is replaced by a new one,
///   which first gets the last bytes delivered again, and the stream goes on.
public final class Relay: @unchecked Sendable {
    // @unchecked: the mutable state below is confined to the loop thread (every entry point
    // hops there with `loop.execute`); what other threads read is in `counters` and `completion`,
    // both synchronised (Atomic, Mutex), and `destination`, read elsewhere only after the relay
    // ended (its last write happened before `finish` published the outcome under the lock).

    /// What to do with the destination when the source reaches EOF.
    public enum EOFAction: Sendable {
        /// `shutdown(SHUT_WR)` a socket (the peer reads EOF; the owner may still read from it),
        /// close anything else (e.g. a process's stdin pipe).
        case halfCloseDestination
        /// Leave the destination as it is.
        case none
    }

    /// How a relay finished.
    public struct Outcome: Sendable, CustomStringConvertible {
        /// Bytes written to the destination.
        public var bytes: UInt64
        /// nil when the source reached EOF and everything was delivered.
        public var error: (any Error)?
        public var description: String { error.map { "\(bytes) bytes, \($0)" } ?? "\(bytes) bytes, EOF" }
    }

    /// Tuning and behaviour of one relay.
    public struct Options: Sendable {
        public var mechanism: RelayMechanism = .automatic
        public var onSourceEOF: EOFAction = .halfCloseDestination
        /// Also close the source when the relay ends (it is the relay's to close).
        public var closeSourceAtEnd = true
        /// Close the destination when the relay ends with an error.
        public var closeDestinationOnError = true
        /// When set, a write to the destination that fails because its peer went away (EPIPE,
        /// ECONNRESET, ENOTCONN) does not end the relay: the destination is closed and this is
        /// called (on the loop) for a new one, which gets the last `replayBytes` delivered
        /// again, then what was read and not delivered, then the rest. nil from it ends the
        /// relay with the write's error. Such a relay copies (one copy per byte to keep the
        /// tail), never splices. For output that must outlive a host reconnect (a container's
        /// init, guest-behaviour §6).
        public var redial: (@Sendable () async -> AsyncFD?)?
        public var replayBytes = 128 << 10
        /// When set, every byte read from the source is also appended to this file, once, in
        /// the order read (a re-dial sends its tail again, not to the file). Such a relay
        /// copies, never splices. A failed append stops the copying, not the relay.
        public var tee: TeeFile?
        public init() {}
    }

    public let source: AsyncFD
    /// The destination now (another one after a re-dial). Loop-thread state: read it elsewhere
    /// only once the relay has ended (`wait()`).
    public private(set) var destination: AsyncFD
    // What the relay needs of its `Options` (not the whole struct: a relay's size counts when
    // a thousand processes have two relays each).
    private let onSourceEOF: EOFAction
    private let closeSourceAtEnd: Bool
    private let closeDestinationOnError: Bool
    /// Set for a relay whose destination may be re-dialled (`Options.redial`).
    private let redial: Redial?
    let loop: EventLoop

    /// What a source pipe that keeps arriving full is grown to (`RelayEngine.grownPipeSize`).
    public static let grownSourcePipeSize = RelayEngine.grownPipeSize

    /// Counters other threads may read (dump stacks, benchmarks).
    private let moved = Atomic<UInt64>(0)
    private let blocked = Atomic<Bool>(false)
    /// The engine's mechanism (`RelayEngine.mechanismCode`) and its switch count, published by
    /// the loop thread after each turn: the engine itself is loop-thread state.
    private let mechanism = Atomic<UInt64>(0)
    private let waiting = Atomic<Bool>(false)
    private let completion = Mutex<(outcome: Outcome?, waiter: UnsafeContinuation<Outcome, Never>?)>((nil, nil))

    // Loop-thread state.
    var engine: RelayEngine
    private var started = false
    private var finished = false
    private var queuedForTurn = false
    /// A re-dialled relay's loop-thread state, boxed (most relays have none).
    private final class Redial {
        let dial: @Sendable () async -> AsyncFD?
        /// Waiting for `dial` to give a new destination: the source is not read.
        var inProgress = false
        /// The task asking `dial`, cancelled if the relay ends first.
        var task: Task<Void, Never>?
        init(_ dial: @escaping @Sendable () async -> AsyncFD?) { self.dial = dial }
    }
    /// The destination's write readiness is asked for (a loop-thread copy of the registration's
    /// own flag, so a relay's wait does not take the registration's lock to find out).
    private var watchingDestination = false
    static let turnBudget = 1 << 20

    /// Creates a relay from `source` to `destination`; call `start()` to begin. The two must be
    /// registered with the same loop, and nobody else may read the source or write the
    /// destination while the relay runs.
    public init(from source: AsyncFD, to destination: AsyncFD, options: Options = Options()) {
        precondition(source.loop === destination.loop, "relay ends on different loops")
        self.source = source
        self.destination = destination
        onSourceEOF = options.onSourceEOF
        closeSourceAtEnd = options.closeSourceAtEnd
        closeDestinationOnError = options.closeDestinationOnError
        redial = options.redial.map(Redial.init)
        self.loop = source.loop
        self.engine = RelayEngine(source: source.rawValue, destination: destination.rawValue, mechanism: options.mechanism,
                                  replayBytes: options.redial == nil ? nil : max(1, options.replayBytes), tee: options.tee)
        publishMechanism()
    }

    /// Publishes the engine's mechanism and switch count for other threads (loop thread).
    private func publishMechanism() {
        mechanism.store(UInt64(engine.switches) << 2 | UInt64(engine.mechanismCode), ordering: .relaxed)
    }

    /// Bytes delivered so far.
    public var bytesMoved: UInt64 { moved.load(ordering: .relaxed) }
    /// Whether the relay is waiting for the destination to drain (backpressure): it is waiting
    /// and the source still holds data (asked of the kernel now, not on the hot path).
    public var isBackpressured: Bool {
        if blocked.load(ordering: .relaxed) { return true }
        guard waiting.load(ordering: .relaxed), let epochs = try? source.registration.beginOp() else { return false }
        _ = epochs
        defer { source.registration.endOp() }
        return RelayEngine.bytesReadable(source.rawValue) > 0
    }
    /// Whether the relay ended.
    public var isFinished: Bool { completion.withLock { $0.outcome != nil } }
    /// The mechanism in use as of the relay's last turn (for diagnostics; any thread).
    public var mechanismDescription: String { RelayEngine.mechanismName(UInt8(mechanism.load(ordering: .relaxed) & 3)) }
    /// How often automatic mode switched mechanism, as of the relay's last turn (diagnostics; any thread).
    public var mechanismSwitches: Int { Int(mechanism.load(ordering: .relaxed) >> 2) }

    /// Starts relaying (idempotent; nothing once cancelled: a relay ended before it started
    /// must not become its descriptors' driver, which would keep it alive for good).
    public func start() {
        loop.execute { [self] in
            guard !started, !finished else { return }
            started = true
            source.registration.driver = self
            destination.registration.driver = self
            pump()
        }
    }

    /// Stops the relay; it ends with `CancellationError` (what was moved stays moved).
    public func cancel() {
        loop.execute { [self] in finish(error: CancellationError()) }
    }

    /// Waits for the end of the relay. One waiter at a time.
    public func wait() async -> Outcome {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Outcome, Never>) in
            let done = completion.withLock { c -> Outcome? in
                if let outcome = c.outcome { return outcome }
                precondition(c.waiter == nil, "Relay.wait() called twice concurrently")
                c.waiter = continuation
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    // MARK: Loop thread

    func pump() {
        guard started, !finished, redial?.inProgress != true else { return }
        do {
            _ = try source.registration.beginOp()
            defer { source.registration.endOp() }
            _ = try destination.registration.beginOp()
            defer { destination.registration.endOp() }
            waiting.store(false, ordering: .relaxed)
            let step = try engine.run(budget: Self.turnBudget, scratch: &loop.scratch)
            moved.store(engine.delivered, ordering: .relaxed)
            publishMechanism()
            switch step {
            case .waiting(let backpressured):
                blocked.store(backpressured, ordering: .relaxed)
                waiting.store(true, ordering: .relaxed)
                if !watchingDestination && (backpressured || engine.waitMayBeOnDestination) {
                    // The relay learns that a full destination drained from its readiness
                    // callback, so from now on it needs the destination's write edges (asked for
                    // only now: a relay whose destination never fills, such as a tty's output,
                    // is not woken each time the host reads). Adding them re-checks the
                    // destination, so a drain that came before is not missed.
                    try destination.registration.watchWritability()
                    watchingDestination = true
                }
            case .budgetUsed:
                if !queuedForTurn { queuedForTurn = true; loop.ready.append(self) }
            case .sourceEOF:
                try endOfSource()
                finish(error: nil)
            }
        } catch {
            moved.store(engine.delivered, ordering: .relaxed)
            publishMechanism()
            if let redial, Self.peerWentAway(error) {
                redialDestination(redial, after: error)
            } else {
                finish(error: error)
            }
        }
    }

    static func peerWentAway(_ error: any Error) -> Bool {
        guard let code = (error as? SyscallError)?.errno else { return false }
        return code == EPIPE || code == ECONNRESET || code == ENOTCONN
    }

    /// The destination's peer went away: close it, ask for a new one, go on with it.
    private func redialDestination(_ redial: Redial, after error: any Error) {
        redial.inProgress = true
        blocked.store(false, ordering: .relaxed)
        if destination.registration.driver === self { destination.registration.driver = nil }
        watchingDestination = false
        destination.close()
        let dial = redial.dial
        redial.task = Task(executorPreference: loop) { [self] in
            let next = await dial()
            loop.execute { self.redialled(next, after: error) }
        }
    }

    private func redialled(_ next: AsyncFD?, after error: any Error) {
        redial?.inProgress = false
        redial?.task = nil
        guard !finished else { next?.close(); return }  // cancelled meanwhile
        guard let next, next.loop === loop else {
            next?.close()
            return finish(error: error)
        }
        destination = next
        engine.replaceDestination(next.rawValue)
        next.registration.driver = self
        pump()
    }

    private func endOfSource() throws {
        guard onSourceEOF == .halfCloseDestination else { return }
        if engine.destinationIsSocket {
            do { try destination.shutdownWrite() } catch let error as SyscallError where error.errno == ENOTCONN {
                // The peer is gone already: nothing to half-close.
            }
        } else {
            destination.close()
        }
    }

    private func finish(error: (any Error)?) {
        guard !finished else { return }
        finished = true
        redial?.task?.cancel()  // its dial, if it still gets one, is closed by `redialled`
        if source.registration.driver === self { source.registration.driver = nil }
        if destination.registration.driver === self { destination.registration.driver = nil }
        engine.releaseResources()
        publishMechanism()
        if closeSourceAtEnd { source.close() }
        if error != nil && closeDestinationOnError { destination.close() }
        blocked.store(false, ordering: .relaxed)
        let outcome = Outcome(bytes: engine.delivered, error: error)
        let waiter = completion.withLock { c -> UnsafeContinuation<Outcome, Never>? in
            c.outcome = outcome
            defer { c.waiter = nil }
            return c.waiter
        }
        waiter?.resume(returning: outcome)
    }
}

extension Relay: ReadinessDriver, LoopDriven {
    func ready(_ registration: Registration, readable: Bool, writable: Bool) {
        // A turn is already queued: let it run rather than jumping the queue of other relays.
        if !queuedForTurn { pump() }
    }

    func loopTurn() {
        queuedForTurn = false
        pump()
    }
}
