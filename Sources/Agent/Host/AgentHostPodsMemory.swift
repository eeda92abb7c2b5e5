import EventLoop
import Logging

/// The UVM-level pods cgroup's upkeep, apart from the request handlers: its memory limit
/// follows memory hot-add, and its OOM events are logged.
extension AgentHost {
    /// Sets the containers' parent cgroup memory limit now and every `period` after (memory
    /// hot-add), until the task is cancelled, and, once the cgroup is there, logs its OOM events
    /// (`MemoryEventWatch`). A failure (no cgroupfs, no memory controller) is logged, not fatal:
    /// the agent serves without the limit and tries again each period.
    public nonisolated func maintainPodsMemoryLimit(period: Duration = .seconds(60)) -> Task<Void, Never> {
        let pods = podsCgroup, logger = logger, loop = loop
        return Task(executorPreference: loop) {
            var failed = false
            var outOfMemoryWatch: Task<Void, Never>?, watchFailed = false
            defer { outOfMemoryWatch?.cancel() }
            while !Task.isCancelled {
                do {
                    let before = pods.appliedLimit
                    let limit = try pods.refresh()
                    if limit != before { logger.info("pods memory limit", metadata: ["cgroup": "\(pods.path)", "limit": "\(limit)"]) }
                    failed = false
                } catch {
                    if !failed { logger.warning("pods memory limit not set", metadata: ["error": "\(error)"]) }
                    failed = true
                }
                // Tried again each period until it starts; a failure is logged once.
                if !failed && outOfMemoryWatch == nil {
                    do {
                        outOfMemoryWatch = try MemoryEventWatch.start(pods.cgroup, for: .outOfMemory, loop: loop, logger: logger)
                    } catch {
                        if !watchFailed { logger.warning("pods cgroup OOM events not watched", metadata: ["error": "\(error)"]) }
                        watchFailed = true
                    }
                }
                do { try await loop.sleep(for: period) } catch { return }
            }
        }
    }
}
