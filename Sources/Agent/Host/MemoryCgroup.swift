import Bridge
import Glibc

/// One cgroup as the memory controller sees it, on a unified (v2) or a v1 cgroupfs: where its
/// memory files are, how it is made, and what it uses. The containers' parent (`PodsCgroup`)
/// and the agent's own cgroup (`AgentCgroup`) are both one of these.
struct MemoryCgroup: Sendable {
    /// The cgroup, as in `linux.cgroupsPath` (`/pods`).
    let path: String
    /// The cgroupfs mount.
    let root: String
    /// Whether the cgroupfs is a unified (v2) hierarchy; else the memory controller is v1's.
    let isUnified: Bool

    init(path: String, root: String, isUnified: Bool) {
        self.path = path.hasPrefix("/") ? path : "/" + path
        self.root = root
        self.isUnified = isUnified
    }

    /// The directory holding the cgroup's memory files.
    var directory: String { isUnified ? root + path : "\(root)/memory\(path)" }

    /// The path of one of its files, named for v1 and for v2.
    func file(v1: String, v2: String) -> String { "\(directory)/\(isUnified ? v2 : v1)" }

    /// What the cgroup uses and may use, in bytes (nil: the file could not be read).
    struct Usage: Sendable, Equatable {
        var current: UInt64?
        /// The most it has used (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
        var peak: UInt64?
        /// nil when unlimited or unknown.
        var limit: UInt64?

        /// For a log line.
        var metadata: [String: String] {
            func text(_ value: UInt64?) -> String { value.map { "\($0)" } ?? "unknown" }
            return ["memoryUsage": text(current), "memoryUsageMax": text(peak), "memoryUsageLimit": limit.map { "\($0)" } ?? "none"]
        }
    }

    /// Reads its usage, peak and limit.
    func usage() -> Usage {
        let limit = CgroupFile.number(file(v1: "memory.limit_in_bytes", v2: "memory.max"))
        // v1 reports "no limit" as the largest page-aligned 63-bit value, v2 as "max".
        return Usage(current: CgroupFile.number(file(v1: "memory.usage_in_bytes", v2: "memory.current")),
                     peak: CgroupFile.number(file(v1: "memory.max_usage_in_bytes", v2: "memory.peak")),
                     limit: limit.flatMap { $0 >= 1 << 62 ? nil : $0 })
    }

    /// Its OOM counters: v1 `memory.oom_control` (`oom_kill`, `under_oom`); v2 `memory.events`
    /// (`oom`, `oom_kill`; these include the cgroup's children), or with `local`
    /// `memory.events.local` (this cgroup's own limit only) where the kernel has it.
    func outOfMemoryCounts(local: Bool) -> [String: UInt64]? {
        let path: String
        if !isUnified {
            path = file(v1: "memory.oom_control", v2: "")
        } else if local && access("\(directory)/memory.events.local", F_OK) == 0 {
            path = "\(directory)/memory.events.local"
        } else {
            path = "\(directory)/memory.events"
        }
        guard access(path, R_OK) == 0 else { return nil }
        return CgroupFile.keyValues(path)
    }

    /// Makes the cgroup's directory and its ancestors. v2: the memory controller is enabled for
    /// it in every ancestor's `cgroup.subtree_control`. v1: hierarchical accounting is asked for
    /// at the root (`memory.use_hierarchy`, always on in recent kernels, where writing 1 is a
    /// no-op). Returns the error of enabling the memory controller (v2), if any: a write of a
    /// memory file that then fails should report it.
    func create(what: String) throws(BridgeError) -> BridgeError? {
        var controllerError: BridgeError?
        if isUnified {
            var ancestor = root
            for component in path.split(separator: "/") {
                do {
                    try ControlFile.write("+memory", to: "\(ancestor)/cgroup.subtree_control", what: what)
                } catch {
                    controllerError = controllerError ?? error
                }
                ancestor += "/\(component)"
                try makeCgroupDirectory(ancestor, what: what)
            }
        } else {
            try? ControlFile.write("1", to: "\(root)/memory/memory.use_hierarchy", what: what)
            var directory = "\(root)/memory"
            for component in path.split(separator: "/") {
                directory += "/\(component)"
                try makeCgroupDirectory(directory, what: what)
            }
        }
        return controllerError
    }

    private func makeCgroupDirectory(_ directory: String, what: String) throws(BridgeError) {
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw BridgeError(.fail, "\(what): mkdir \(directory): \(String(cString: strerror(errno)))")
        }
    }
}
