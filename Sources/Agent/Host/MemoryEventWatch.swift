import Bridge
import EventLoop
import Glibc
import Logging
import Shims

/// Tells the agent's log when a cgroup's memory crosses a line: the agent's own cgroup passing
/// `-gcs-mem-limit-bytes` (a warning, not a limit: the agent must not be killed for a burst),
/// or the containers' parent running out of memory. The host reads the agent's log; without
/// these lines an OOM in the pods cgroup shows only as containers dying. hcsshim's gcs logs
/// the same two events, with the same message for a threshold and the same field names.
///
/// v1: the kernel's own notifications, an eventfd registered in `cgroup.event_control` for a
/// usage threshold or for `memory.oom_control`, read on the loop: nothing runs until an event.
/// After a notification the watch waits `settle` (usage settles, kills happen; a storm of
/// events becomes one line), then reports once. v2 has no threshold notification: the cgroup's
/// files are read every `settle` (`V2Check` decides what to report).
enum MemoryEventWatch {
    /// What to watch for.
    enum Event: Sendable, Equatable {
        /// Usage crossing this many bytes (upward: a warning; back down: a notice).
        case threshold(UInt64)
        /// The cgroup's own limit was hit and the kernel's OOM killer ran in it.
        case outOfMemory
    }

    /// Starts watching `cgroup` (which must exist, with its memory controller) on `loop`.
    static func start(_ cgroup: MemoryCgroup, for event: Event, settle: Duration = .seconds(1),
                      loop: EventLoop, logger: Logger) throws(BridgeError) -> Task<Void, Never> {
        if cgroup.isUnified {
            let first = try V2Check(event: event, cgroup: cgroup)
            return Task(executorPreference: loop) {
                var check = first
                while !Task.isCancelled {
                    do { try await loop.sleep(for: settle) } catch { return }
                    if let found = check.next() { report(event, cgroup: cgroup, found: found, logger: logger) }
                }
            }
        }
        let notifications = try register(cgroup, for: event, loop: loop)
        // The side of the threshold usage is on; each crossing is one notification.
        var startsAbove = false
        if case .threshold(let bytes) = event, let current = cgroup.usage().current { startsAbove = current >= bytes }
        return Task(executorPreference: loop) {
            defer { notifications.close() }
            var above = startsAbove
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)
            defer { buffer.deallocate() }
            var count: UInt64 = 0
            while !Task.isCancelled {
                do {
                    guard try await notifications.read(into: buffer) == 8 else { continue }
                    var events = buffer.load(as: UInt64.self)
                    try await loop.sleep(for: settle)
                    if try notifications.tryRead(into: buffer) == 8 { events += buffer.load(as: UInt64.self) }
                    // Removing the cgroup also signals its events.
                    guard access("\(cgroup.directory)/cgroup.event_control", F_OK) == 0 else { return }
                    count += events
                    // The side is read again, not only flipped per notification: a crossing
                    // between registering and the first reading would otherwise invert every
                    // later report.
                    let usage = cgroup.usage()
                    if case .threshold(let bytes) = event, let current = usage.current {
                        above = current >= bytes
                    } else if events % 2 == 1 {
                        above.toggle()
                    }
                    // No kill count: v1 counts a kill in the victim's own cgroup, not here.
                    let found = Found(usage: usage, count: count, above: above)
                    report(event, cgroup: cgroup, found: found, logger: logger)
                } catch {
                    if !Task.isCancelled { logger.warning("memory events of cgroup no longer watched", metadata: ["cgroup": "\(cgroup.path)", "error": "\(error)"]) }
                    return
                }
            }
        }
    }

    /// What a watch found, to report.
    struct Found: Equatable {
        var usage: MemoryCgroup.Usage
        /// Events so far: threshold crossings, or OOMs.
        var count: UInt64
        /// Threshold: whether usage is above it now.
        var above = false
        /// OOM kills in the cgroup and its children so far (v2).
        var oomKills: UInt64?
    }

    /// v1: an eventfd the kernel signals at the event, registered through `cgroup.event_control`
    /// as `<eventfd> <fd of the watched file> [<threshold>]`. The kernel keeps the registration
    /// until the eventfd is closed or the cgroup removed; the watched file's fd is not needed
    /// after the write.
    private static func register(_ cgroup: MemoryCgroup, for event: Event, loop: EventLoop) throws(BridgeError) -> AsyncFD {
        let what = "memory events of \(cgroup.path)"
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

    /// The v2 decision, one reading at a time: a threshold is reported when usage crosses it
    /// (either way) since the last reading; an OOM when the count of OOMs at the cgroup's own
    /// limit grew (`memory.events.local`'s `oom`: `memory.events` also counts its children's,
    /// hit at their own limits).
    struct V2Check {
        let event: Event
        let cgroup: MemoryCgroup
        private var above = false
        private var ooms: UInt64 = 0
        private var count: UInt64 = 0

        /// Fails when the file to read is not there (no memory controller for the cgroup).
        init(event: Event, cgroup: MemoryCgroup) throws(BridgeError) {
            self.event = event
            self.cgroup = cgroup
            switch event {
            case .threshold(let bytes):
                guard let current = cgroup.usage().current else {
                    throw BridgeError(.fail, "memory events of \(cgroup.path): no memory.current (is the memory controller enabled?)")
                }
                above = current >= bytes
            case .outOfMemory:
                guard let counts = cgroup.outOfMemoryCounts(local: true) else {
                    throw BridgeError(.fail, "memory events of \(cgroup.path): no memory.events (is the memory controller enabled?)")
                }
                ooms = counts["oom"] ?? 0
            }
        }

        /// What to report after this reading, if anything.
        mutating func next() -> Found? {
            switch event {
            case .threshold(let bytes):
                guard let current = CgroupFile.number(cgroup.file(v1: "memory.usage_in_bytes", v2: "memory.current")),
                      (current >= bytes) != above else { return nil }
                above.toggle()
                count += 1
                return Found(usage: cgroup.usage(), count: count, above: above)
            case .outOfMemory:
                guard let counts = cgroup.outOfMemoryCounts(local: true), let now = counts["oom"], now > ooms else { return nil }
                count += now - ooms
                ooms = now
                return Found(usage: cgroup.usage(), count: count, oomKills: cgroup.outOfMemoryCounts(local: false)?["oom_kill"])
            }
        }
    }

    /// One log line: a threshold crossed upward is a warning (hcsshim's message and fields),
    /// back down a notice; an OOM is an error.
    private static func report(_ event: Event, cgroup: MemoryCgroup, found: Found, logger: Logger) {
        var metadata: Logger.Metadata = ["cgroup": "\(cgroup.path)", "count": "\(found.count)"]
        for (key, value) in found.usage.metadata { metadata[key] = "\(value)" }
        switch event {
        case .threshold(let bytes):
            metadata["thresholdBytes"] = "\(bytes)"
            if found.above {
                logger.warning("memory usage for cgroup exceeded threshold", metadata: metadata)
            } else {
                logger.notice("memory usage for cgroup fell back below threshold", metadata: metadata)
            }
        case .outOfMemory:
            if let kills = found.oomKills { metadata["oomKills"] = "\(kills)" }
            logger.error("cgroup out of memory: its limit was reached and the kernel's OOM killer ran", metadata: metadata)
        }
    }
}
