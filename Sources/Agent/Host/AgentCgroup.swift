import Bridge
import EventLoop
import Glibc
import Logging

/// The agent's own cgroup (`/gcs`, or `--gcs-cgroup`). The agent moves itself there at start,
/// so that its memory (and that of the processes it starts in the VM itself, which inherit
/// it) is accounted apart from the containers', and it logs a warning when that memory passes
/// `-gcs-mem-limit-bytes` (a threshold to report, not a limit: hcsshim's gcs does the same).
/// Only the memory controller's hierarchy is joined: it is the one watched.
public enum AgentCgroup {
    /// Moves this process into the cgroup at `path` and, when `threshold` is not 0, watches it.
    /// Returns the watch; nil when there is none. A failure is logged, not fatal: the agent
    /// serves without.
    public static func join(path: String, threshold: UInt64, root: String = "/sys/fs/cgroup",
                            loop: EventLoop, logger: Logger) -> Task<Void, Never>? {
        let cgroup = MemoryCgroup(path: path, root: root, isUnified: CgroupFile.isUnified(root: root))
        do {
            let controllerError = try cgroup.create(what: "agent cgroup")
            // "0": the writing process, all its threads.
            try ControlFile.write("0", to: "\(cgroup.directory)/cgroup.procs", what: "agent cgroup")
            if let controllerError { logger.warning("agent cgroup: no memory controller", metadata: ["error": "\(controllerError)"]) }
        } catch {
            logger.warning("agent cgroup not joined", metadata: ["cgroup": "\(cgroup.path)", "error": "\(error)"])
            return nil
        }
        guard threshold > 0 else { return nil }
        do {
            return try MemoryEventWatch.start(cgroup, for: .threshold(threshold), loop: loop, logger: logger)
        } catch {
            logger.warning("agent memory threshold not watched", metadata: ["cgroup": "\(cgroup.path)", "error": "\(error)"])
            return nil
        }
    }
}
