import EventLoop
import Shims
import Synchronization

/// Gives freed heap back to the kernel after bursts of process or container teardown.
///
/// glibc's malloc keeps freed memory in its arenas; after a thousand processes with relays
/// exit, the agent would otherwise stay at its high-water RSS for good (the Go agent never
/// releases it either). In a utility VM that memory belongs to the containers, so once the
/// agent goes quiet after releasing things it calls `malloc_trim(0)`, which returns free pages
/// from every arena. Debounced: one trim per quiet period, never on the request path.
final class HeapReclaimer: Sendable {
    private let loop: EventLoop
    private let delay: Duration
    /// Releases since the last trim, and whether a trim is scheduled.
    private let state = Mutex<(releases: Int, scheduled: Bool)>((0, false))
    private let trims = Atomic<Int>(0)

    init(loop: EventLoop, delay: Duration = .milliseconds(200)) {
        self.loop = loop
        self.delay = delay
    }

    /// How many trims ran (DumpStacks).
    var trimCount: Int { trims.load(ordering: .relaxed) }

    /// The malloc heap in KiB (DumpStacks).
    var statistics: String {
        var inUse = 0, free = 0, mmapped = 0
        shim_heap_stats(&inUse, &free, &mmapped)
        return "\(inUse >> 10) KiB in use, \(free >> 10) KiB free in arenas, \(mmapped >> 10) KiB mmapped"
    }

    /// Notes that memory was released (a process waited for, a container deleted).
    func noteRelease() {
        let schedule = state.withLock { state -> Bool in
            state.releases += 1
            if state.scheduled { return false }
            state.scheduled = true
            return true
        }
        guard schedule else { return }
        Task(executorPreference: loop) { await self.settle() }
    }

    /// Waits until no release arrived for `delay`, then trims once.
    private func settle() async {
        var seen = -1
        while true {
            let now = state.withLock { $0.releases }
            if now == seen { break }
            seen = now
            try? await loop.sleep(for: delay)
        }
        state.withLock { $0 = (0, false) }
        _ = shim_malloc_trim(0)
        trims.add(1, ordering: .relaxed)
    }
}
