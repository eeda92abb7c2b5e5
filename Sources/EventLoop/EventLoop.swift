import DequeModule
import Glibc
import Shims
import Synchronization

/// The reactor: one thread that waits on epoll, resumes the tasks whose descriptors became ready,
/// drives relays and timers, and runs Swift jobs. It is a `TaskExecutor`
/// (`withTaskExecutorPreference(loop)`, `Task(executorPreference: loop)`), so the agent's tasks,
/// the default actors they call, their I/O and their relays all live on one thread; and through
/// `serialExecutor` an actor can also be isolated to it.
///
/// The two roles have separate `enqueue`s because a job must run in the isolation it was queued
/// for. A task running on a task executor without an actor is on the generic executor: running
/// its jobs as isolated to a serial executor instead made every call into a nonisolated async
/// function look like an isolation change, and each one a trip through the queue (63 queued jobs
/// for one exec and wait, against 18 now).
///
/// Thread-safety: public methods may be called from any thread. Everything marked "loop thread"
/// is confined to the loop thread and touched only from code that runs there.
public final class EventLoop: TaskExecutor, @unchecked Sendable {
    // @unchecked: cross-thread state is behind `inbox` (a Mutex) and atomics; the remaining mutable
    // state (`timers`, `ready`, `releases`) is only touched on the loop thread, which
    // `assertOnLoop()` checks in debug builds.

    /// A unit of work queued for the loop thread.
    enum Work {
        /// Queued to the task executor: runs on the generic executor, preferring this loop.
        case job(UnownedJob)
        /// Queued to `serialExecutor`: runs isolated to it.
        case isolatedJob(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    /// The loop as a `SerialExecutor`, for actors that declare it as their `unownedExecutor`.
    public final class Isolation: SerialExecutor, Sendable {
        unowned let loop: EventLoop
        init(loop: EventLoop) { self.loop = loop }

        public func enqueue(_ job: consuming ExecutorJob) {
            loop.submit(.isolatedJob(UnownedJob(job)))
        }

        public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
            UnownedSerialExecutor(ordinary: self)
        }

        public func checkIsolated() {
            precondition(loop.inLoop, "not on the loop thread of \(loop.name)")
        }
    }

    /// This loop as a serial executor (an actor's `unownedExecutor`).
    public var serialExecutor: Isolation { isolation }
    /// Set once at the end of `init`, before the loop thread starts or the loop is shared, and
    /// never again: reads from any thread are safe.
    private var isolation: Isolation!

    /// The process-wide loop, started on first use. Agents normally use this one.
    public static let shared: EventLoop = {
        do { return try EventLoop(name: "gcs-loop") } catch { fatalError("cannot start the event loop: \(error)") }
    }()

    /// The name of the loop thread (visible in /proc/<pid>/task/*/comm).
    public let name: String
    let epollFD: Int32
    let wakeFD: Int32
    private let inbox = Mutex(Deque<Work>())
    private let sleeping = Atomic<Bool>(false)
    private let queueShrinks = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let threadIDValue = Atomic<UInt>(0)
    private let stopped = Mutex<Bool>(false)
    /// Loop thread: timers by deadline.
    var timers = TimerQueue()
    /// Loop thread: relays (or other drivers) that used their budget and want another turn.
    var ready: [any LoopDriven] = []
    /// Loop thread: registrations closed during this iteration, released after event dispatch.
    var releases: [Unmanaged<Registration>] = []
    /// Loop thread: the buffer copy-mode relays read into (one per loop, reused by all).
    var scratch = ScratchBuffer()
    private let scratchDiscards = Atomic<Int>(0)
    /// io_uring, when the kernel allows it; nil means epoll only.
    public let uring: Uring?
    private var thread: pthread_t?

    /// Ignores SIGPIPE process-wide, once (sockets use MSG_NOSIGNAL; pipes need this).
    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// Token in epoll's data for the wake eventfd; registrations use their object address.
    static let wakeToken: UInt64 = 0
    static let uringToken: UInt64 = 1

    /// Starts a loop thread. `useUring: false` forces the epoll-only path (as when io_uring is
    /// disabled by sysctl, seccomp or kernel config, which is detected at start-up too).
    public init(name: String, useUring: Bool = true) throws(SyscallError) {
        self.name = name
        // A write to a pipe whose reader is gone must fail with EPIPE, not kill the agent.
        Self.ignoreSIGPIPE
        let ep = try sys("epoll_create1") { shim_epoll_create() }
        let wake: Int32
        do { wake = try sys("eventfd") { shim_eventfd() } } catch {
            Glibc.close(ep); throw error
        }
        epollFD = ep
        wakeFD = wake
        uring = useUring ? Uring.probe() : nil
        _ = shim_epoll_ctl(ep, Int32(SHIM_EPOLL_CTL_ADD), wake, UInt32(SHIM_EPOLLIN), Self.wakeToken)
        if let uring {
            _ = shim_epoll_ctl(ep, Int32(SHIM_EPOLL_CTL_ADD), uring.ringFD, UInt32(SHIM_EPOLLIN), Self.uringToken)
        }
        isolation = Isolation(loop: self)
        startThread()
    }

    deinit {
        Glibc.close(epollFD)
        Glibc.close(wakeFD)
    }

    private func startThread() {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let loop = Unmanaged<EventLoop>.fromOpaque(arg!).takeRetainedValue()
            loop.run()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = tid
    }

    /// The kernel thread id of the loop thread (0 until it started).
    public var threadID: pid_t { pid_t(truncatingIfNeeded: threadIDValue.load(ordering: .acquiring)) }

    /// How often the work queues were given back after a burst (diagnostics, DumpStacks).
    public var queueShrinkCount: Int { queueShrinks.load(ordering: .relaxed) }

    /// How many times the relays' scratch buffer was given back after going unused (diagnostics).
    public var scratchDiscardCount: Int { scratchDiscards.load(ordering: .relaxed) }

    /// Whether the caller runs on this loop's thread.
    public var inLoop: Bool { threadIDValue.load(ordering: .acquiring) == UInt(bitPattern: Int(shim_gettid())) }

    @inline(__always) func assertOnLoop() {
        assert(inLoop, "must run on the loop thread of \(name)")
    }

    // MARK: Executors

    public func enqueue(_ job: consuming ExecutorJob) {
        submit(.job(UnownedJob(job)))
    }

    /// Runs `body` on the loop thread, soon. From the loop thread itself it is queued, never
    /// run inline, so callers never re-enter themselves.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        submit(.closure(body))
    }

    fileprivate func submit(_ work: Work) {
        inbox.withLock { $0.append(work) }
        // The loop sets `sleeping` before its last look at the inbox, so either it sees this
        // work there or we see `sleeping` and wake it. Never both missed.
        if sleeping.exchange(false, ordering: .sequentiallyConsistent) {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// Stops the loop thread after the work queued so far, and waits for it unless called on it.
    public func shutdown() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
        if !inLoop, let thread {
            let already = stopped.withLock { s -> Bool in defer { s = true }; return s }
            if !already { pthread_join(thread, nil) }
        }
    }

    // MARK: The loop

    /// How many rounds of queued work one loop turn runs before polling epoll again.
    static let workRoundsPerTurn = 64
    /// Queued work above which the work queues are given back when the loop goes idle.
    static let idleQueueCapacity = 256

    private func run() {
        threadIDValue.store(UInt(bitPattern: Int(shim_gettid())), ordering: .releasing)
        name.withCString { shim_set_thread_name($0) }
        let capacity = 512
        let events = UnsafeMutableRawPointer.allocate(byteCount: capacity * shim_epoll_event_size(), alignment: 8)
        defer { events.deallocate() }
        let stride = shim_epoll_event_size()
        var batch = Deque<Work>()
        // The most work one swap took since the queues last went back to their small size.
        var batchHighWater = 0

        while !stopping.load(ordering: .relaxed) {
            // 1. Run the work queued so far (jobs resumed by the previous dispatch run here),
            //    including what that work queues in turn (a task hopping to an actor and back),
            //    for a bounded number of rounds so I/O readiness is still polled regularly.
            for _ in 0..<Self.workRoundsPerTurn {
                inbox.withLock { swap(&batch, &$0) }
                if batch.isEmpty { break }
                batchHighWater = max(batchHighWater, batch.count)
                while let work = batch.popFirst() { run(work) }
            }

            // 2. Drivers that used their budget get another turn before we block.
            if !ready.isEmpty {
                let turn = ready
                ready.removeAll(keepingCapacity: true)
                for driver in turn { driver.loopTurn() }
            }

            // 3. Hand queued io_uring submissions to the kernel, then wait for events (not at
            //    all when work is pending).
            uring?.submit()
            var timeout = timers.millisecondsUntilNext(now: monotonicNanoseconds())
            if !ready.isEmpty { timeout = 0 }
            // Submissions the kernel refused for now: poll again soon rather than block.
            if uring?.hasUnsubmitted == true && (timeout < 0 || timeout > 1) { timeout = 1 }
            if timeout != 0 {
                // About to block: the relays' scratch buffer, if used, is given back once it
                // has gone unused for a while (checked by a timer, so an idle loop sleeps on).
                if scratch.loopWillBlock() {
                    _ = timers.schedule(at: monotonicNanoseconds() + ScratchBuffer.idleDelay) { [unowned self] in
                        if scratch.check() { scratchDiscards.add(1, ordering: .relaxed) }
                    }
                    let check = timers.millisecondsUntilNext(now: monotonicNanoseconds())
                    timeout = timeout < 0 ? check : min(timeout, check)
                }
                // A burst (a thousand processes starting) grew both queues,
                // which keep their capacity; do not keep it while idle.
                if batchHighWater > Self.idleQueueCapacity {
                    batch = Deque()
                    // Work queued meanwhile keeps the inbox (and the loop awake): next time.
                    let replaced = inbox.withLock { queue -> Bool in
                        guard queue.isEmpty else { return false }
                        queue = Deque()
                        return true
                    }
                    if replaced {
                        batchHighWater = 0
                        queueShrinks.add(1, ordering: .relaxed)
                    }
                }
                sleeping.store(true, ordering: .sequentiallyConsistent)
                if !inbox.withLock({ $0.isEmpty }) { timeout = 0 }
            }
            let count = shim_epoll_wait(epollFD, events, Int32(capacity), timeout)
            sleeping.store(false, ordering: .sequentiallyConsistent)
            if count > 0 {
                for i in 0..<Int(count) {
                    let ev = events + i * stride
                    dispatch(token: shim_epoll_event_data(ev), events: shim_epoll_event_events(ev))
                }
            }
            // 4. Timers that are due.
            timers.fireDue(now: monotonicNanoseconds())
            // 5. Registrations closed during this iteration can go now: no event refers to them.
            for r in releases { r.release() }
            releases.removeAll(keepingCapacity: true)
        }
        // Drain what is left so no continuation is leaked.
        inbox.withLock { swap(&batch, &$0) }
        while let work = batch.popFirst() { run(work) }
    }

    @inline(__always) private func run(_ work: Work) {
        switch work {
        case .job(let job):
            job.runSynchronously(on: asUnownedTaskExecutor())
        case .isolatedJob(let job):
            job.runSynchronously(isolatedTo: isolation.asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
        case .closure(let body):
            body()
        }
    }

    @inline(__always) private func dispatch(token: UInt64, events: UInt32) {
        switch token {
        case Self.wakeToken:
            var value: UInt64 = 0
            _ = Glibc.read(wakeFD, &value, 8)
        case Self.uringToken:
            uring?.reap()
        default:
            let registration = Unmanaged<Registration>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(token))!)
            registration.takeUnretainedValue().handle(events: events)
        }
    }

    // MARK: Registration (epoll)

    /// Adds `fd` to epoll in edge-triggered mode, for reading only: readiness is tracked by the
    /// registration from then on, so no epoll_ctl is needed per wait. Write readiness is asked
    /// for the first time something has to wait for it (`watchWritability`): a socket that is
    /// only ever written without blocking (the bridge, a request/response peer) would otherwise
    /// take a wake-up, and on one CPU two context switches, each time its peer reads.
    func register(_ registration: Registration) throws(SyscallError) {
        let token = UInt64(UInt(bitPattern: Unmanaged.passRetained(registration).toOpaque()))
        let mask = Self.epollMask(read: registration.readInterest, write: false)
        let fd = registration.fd
        do throws(SyscallError) {
            _ = try sys("epoll_ctl(ADD, \(fd))") { shim_epoll_ctl(epollFD, Int32(SHIM_EPOLL_CTL_ADD), fd, mask, token) }
        } catch {
            Unmanaged.passUnretained(registration).release()
            throw error
        }
    }

    /// The interest set of a registration: edge-triggered, reads (with hang-up) and/or writes.
    /// Errors and hang-ups are reported whatever it says.
    static func epollMask(read: Bool, write: Bool) -> UInt32 {
        (read ? UInt32(SHIM_EPOLLIN | SHIM_EPOLLRDHUP) : 0) | (write ? UInt32(SHIM_EPOLLOUT) : 0) | SHIM_EPOLLET
    }

    /// Adds write readiness to `registration`'s epoll interest, for good. epoll re-checks the
    /// descriptor on the change, so a descriptor already writable reports an edge at once; an
    /// EAGAIN seen before the change is never left without one. (A readable descriptor reports
    /// a read edge with it too: one spare wake-up of its reader, harmless.) Called with the
    /// registration's lock held and its close not yet requested, so `fd` is still open.
    func watchWritability(_ registration: Registration) throws(SyscallError) {
        let token = UInt64(UInt(bitPattern: Unmanaged.passUnretained(registration).toOpaque()))
        let mask = Self.epollMask(read: registration.readInterest, write: true)
        let fd = registration.fd
        _ = try sys("epoll_ctl(MOD, \(fd))") { shim_epoll_ctl(epollFD, Int32(SHIM_EPOLL_CTL_MOD), fd, mask, token) }
    }

    /// Removes `fd` from epoll. The registration's +1 is dropped on the loop thread after the
    /// current event batch, so an event already read for it can still be dispatched safely.
    func deregister(_ registration: Registration) {
        _ = shim_epoll_ctl(epollFD, Int32(SHIM_EPOLL_CTL_DEL), registration.fd, 0, 0)
        let unmanaged = Unmanaged.passUnretained(registration)
        execute { [self] in releases.append(unmanaged) }
    }
}

/// Something the loop thread drives directly (a relay), which may ask for another turn.
protocol LoopDriven: AnyObject {
    /// Called on the loop thread when the driver asked for a turn via `loop.ready`.
    func loopTurn()
}

@inline(__always) func monotonicNanoseconds() -> Int64 { shim_monotonic_ns() }
