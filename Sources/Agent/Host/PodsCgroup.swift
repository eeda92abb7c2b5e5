import Bridge
import Glibc
import Shims
import Synchronization

/// The cgroup every container is placed under (`/pods`, or `--cgroup-parent`), limited to the
/// VM's RAM less a reserve (guest-behaviour §3.2 step 6 and §5), so that the containers
/// together can never take the memory the agent and the VM's own processes need. Set at
/// start, recomputed every 60 s (the host may hot-add memory) and on ModifySettings
/// `PodCgroupMemoryLimit`; the file is written only when the figure changes.
final class PodsCgroup: Sendable {
    /// The cgroup (its path, as in `linux.cgroupsPath`: `/pods`).
    let cgroup: MemoryCgroup
    /// Bytes kept out of the limit (`-root-mem-reserve-bytes`).
    let reserve: UInt64
    /// The limit last written.
    private let applied = Mutex<UInt64?>(nil)

    init(path: String, reserve: UInt64, root: String = "/sys/fs/cgroup") {
        cgroup = MemoryCgroup(path: path, root: root, isUnified: CgroupFile.isUnified(root: root))
        self.reserve = reserve
    }

    /// The cgroup's path (`/pods`).
    var path: String { cgroup.path }

    /// The file the limit goes to: `memory.max` (v2) or `memory.limit_in_bytes` (v1).
    var limitFile: String { cgroup.file(v1: "memory.limit_in_bytes", v2: "memory.max") }

    /// The limit last written, if any.
    var appliedLimit: UInt64? { applied.withLock { $0 } }

    /// RAM less the reserve, now.
    func computeLimit() throws(BridgeError) -> UInt64 {
        let total = shim_total_ram()
        guard total > 0 else { throw BridgeError(.fail, "sysinfo: \(String(cString: strerror(errno)))") }
        guard total > reserve else {
            throw BridgeError(.fail, "pods memory limit: the VM's \(total) bytes of RAM are not above the reserve of \(reserve)")
        }
        return total - reserve
    }

    /// Creates the cgroup if needed and writes the limit if it differs from the one last
    /// written. Returns the limit.
    /// The lock is not held across the writes: lowering a limit below what the containers use
    /// makes the kernel reclaim inside the write. Two refreshes at once write the same value.
    @discardableResult
    func refresh() throws(BridgeError) -> UInt64 {
        let limit = try computeLimit()
        if applied.withLock({ $0 == limit }) { return limit }
        let controllerError = try cgroup.create(what: "pods cgroup")
        do {
            try ControlFile.write("\(limit)", to: limitFile, what: "pods cgroup")
        } catch {
            // Most likely the memory controller could not be enabled for the cgroup: say why.
            guard let controllerError else { throw error }
            throw BridgeError(.fail, "\(error.message) (enabling the memory controller failed: \(controllerError.message))")
        }
        applied.withLock { $0 = limit }
        return limit
    }
}
