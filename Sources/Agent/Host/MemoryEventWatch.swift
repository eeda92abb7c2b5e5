import Bridge
import EventLoop
import Glibc
import Logging
import Shims

/// Tells the agent's log when a cgroup's memory crosses a line: the agent's own cgroup passing
/// `-gcs-mem-limit-bytes` (a warning, not a limit: the agent must not be killed for a burst),
/// or the containers' parent running out of memory. The host reads the agent's log; without
/// these lines an OOM in the pods cgroup shows only as containers dying. hcsshim's gcs logs
/// the same two events.
///
/// v1: the kernel's own notifications, an eventfd registered in `cgroup.event_control` for a
/// usage threshold or for `memory.oom_control`, read on the loop: nothing runs until an event.
/// v2 has no threshold notification: `memory.current` and `memory.events`' `oom_kill` are read
/// every `pollPeriod` (`V2Check` decides what to log).
enum MemoryEventWatch {
    /// What to watch for.
    enum Event: Sendable, Equatable {
        /// Usage crossing this many bytes (upward: a warning; back down: a notice).
        case threshold(UInt64)
        /// The cgroup's limit was hit and the OOM killer runs (v1: notified as it starts; v2:
        /// seen in `oom_kill` after the kill).
        case outOfMemory
    }

    /// Starts watching `cgroup` (which must exist) on `loop`; `what` names it in the log.
    static func start(_ cgroup: MemoryCgroup, for event: Event, what: String, pollPeriod: Duration = .seconds(1),
                      loop: EventLoop, logger: Logger) throws(BridgeError) -> Task<Void, Never> {
        var logger = logger
        logger[metadataKey: "cgroup"] = "\(cgroup.path)"
        if cgroup.isUnified { return poll(cgroup, for: event, what: what, period: pollPeriod, loop: loop, logger: logger) }
        let notifications = try register(cgroup, for: event, what: what, loop: loop)
        return Task(executorPreference: loop) {
            defer { notifications.close() }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)
            defer { buffer.deallocate() }
            var count: UInt64 = 0
            while !Task.isCancelled {
                do {
                    guard try await notifications.read(into: buffer) == 8 else { continue }
                } catch {
                    if !Task.isCancelled { logger.warning("\(what): memory events no longer watched", metadata: ["error": "\(error)"]) }
                    return
                }
                // Removing the cgroup also signals its events.
                guard access("\(cgroup.directory)/cgroup.event_control", F_OK) == 0 else { return }
                count += buffer.load(as: UInt64.self)
                // The OOM notifier fires before the kill: no kill count yet.
                report(event, what: what, usage: cgroup.usage(), count: count, oomKills: nil, logger: logger)
            }
        }
    }

    /// v1: an eventfd the kernel signals at the event, registered through `cgroup.event_control`
    /// as `<eventfd> <fd of the watched file> [<threshold>]`. The kernel keeps the registration
    /// until the eventfd is closed or the cgroup removed; the watched file's fd is not needed
    /// after the write.
    private static func register(_ cgroup: MemoryCgroup, for event: Event, what: String, loop: EventLoop) throws(BridgeError) -> AsyncFD {
        let eventFD = shim_eventfd()
        guard eventFD >= 0 else { throw BridgeError(.fail, "\(what): eventfd: \(String(cString: strerror(errno)))") }
        let notifications: AsyncFD
        do { notifications = try AsyncFD(OwnedFD(adopting: eventFD), loop: loop) } catch {
            throw BridgeError(.fail, "\(what): \(error)")
        }
        let watched = event == .outOfMemory ? cgroup.file(v1: "memory.oom_control", v2: "memory.events")
                                            : cgroup.file(v1: "memory.usage_in_bytes", v2: "memory.current")
        let watchedFD = open(watched, O_RDONLY | O_CLOEXEC)
        guard watchedFD >= 0 else {
            let error = BridgeError(.fail, "\(what): open \(watched): \(String(cString: strerror(errno)))")
            notifications.close()
            throw error
        }
        defer { close(watchedFD) }
        var line = "\(eventFD) \(watchedFD)"
        if case .threshold(let bytes) = event { line += " \(bytes)" }
        do {
            try ControlFile.write(line, to: "\(cgroup.directory)/cgroup.event_control", what: what)
        } catch {
            notifications.close()
            throw error
        }
        return notifications
    }

    /// v2: reads the cgroup's files every `period`.
    private static func poll(_ cgroup: MemoryCgroup, for event: Event, what: String, period: Duration,
                             loop: EventLoop, logger: Logger) -> Task<Void, Never> {
        Task(executorPreference: loop) {
            var check = V2Check(event: event, cgroup: cgroup)
            while !Task.isCancelled {
                do { try await loop.sleep(for: period) } catch { return }
                guard let found = check.next() else { continue }
                report(event, what: what, usage: found.usage, count: found.count, oomKills: found.oomKills, logger: logger)
            }
        }
    }

    /// The v2 decision, one reading at a time: a threshold is reported when usage crosses it
    /// (either way) since the last reading, an OOM when `memory.events`' `oom_kill` grew.
    struct V2Check {
        let event: Event
        let cgroup: MemoryCgroup
        private var above = false
        private var oomKills: UInt64
        private var count: UInt64 = 0

        init(event: Event, cgroup: MemoryCgroup) {
            self.event = event
            self.cgroup = cgroup
            oomKills = Self.oomKills(cgroup) ?? 0
        }

        /// What to report after this reading, if anything.
        mutating func next() -> (usage: MemoryCgroup.Usage, count: UInt64, oomKills: UInt64?)? {
            switch event {
            case .threshold(let bytes):
                let usage = cgroup.usage()
                guard let current = usage.current, (current > bytes) != above else { return nil }
                above.toggle()
                count += 1
                return (usage, count, nil)
            case .outOfMemory:
                guard let kills = Self.oomKills(cgroup), kills > oomKills else { return nil }
                count += kills - oomKills
                oomKills = kills
                return (cgroup.usage(), count, kills)
            }
        }

        private static func oomKills(_ cgroup: MemoryCgroup) -> UInt64? {
            ContainerStatistics(root: cgroup.root).keyValues(cgroup.file(v1: "memory.oom_control", v2: "memory.events"))["oom_kill"]
        }
    }

    /// One log line for an event: a threshold crossed upward is a warning, back down a notice;
    /// an OOM is an error.
    private static func report(_ event: Event, what: String, usage: MemoryCgroup.Usage, count: UInt64, oomKills: UInt64?, logger: Logger) {
        var metadata = Logger.Metadata()
        for (key, value) in usage.metadata { metadata[key] = "\(value)" }
        metadata["events"] = "\(count)"
        switch event {
        case .threshold(let bytes):
            metadata["threshold"] = "\(bytes)"
            if let current = usage.current, current <= bytes {
                logger.notice("\(what): memory usage fell back below its threshold", metadata: metadata)
            } else {
                logger.warning("\(what): memory usage exceeded its threshold", metadata: metadata)
            }
        case .outOfMemory:
            if let oomKills { metadata["oom kills"] = "\(oomKills)" }
            logger.error("\(what): out of memory, the kernel's OOM killer takes a process in it", metadata: metadata)
        }
    }
}
