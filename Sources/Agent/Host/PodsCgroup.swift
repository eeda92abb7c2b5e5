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
    /// The cgroup, as in `linux.cgroupsPath` (`/pods`).
    let path: String
    /// Bytes kept out of the limit (`-root-mem-reserve-bytes`).
    let reserve: UInt64
    /// The cgroupfs mount.
    let root: String
    /// The limit last written.
    private let applied = Mutex<UInt64?>(nil)

    init(path: String, reserve: UInt64, root: String = "/sys/fs/cgroup") {
        self.path = path.hasPrefix("/") ? path : "/" + path
        self.reserve = reserve
        self.root = root
        isUnified = ContainerStatistics(root: root).isUnified
    }

    /// Whether the cgroupfs is a unified (v2) hierarchy; else the memory controller is v1's.
    let isUnified: Bool

    /// The directory holding the cgroup's memory files.
    var memoryDirectory: String { isUnified ? root + path : "\(root)/memory\(path)" }

    /// The file the limit goes to: `memory.max` (v2) or `memory.limit_in_bytes` (v1).
    var limitFile: String { memoryDirectory + (isUnified ? "/memory.max" : "/memory.limit_in_bytes") }

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
        let controllerError = try create()
        do {
            try write("\(limit)", to: limitFile)
        } catch {
            // Most likely the memory controller could not be enabled for the cgroup: say why.
            guard let controllerError else { throw error }
            throw BridgeError(.fail, "\(error.message) (enabling the memory controller failed: \(controllerError.message))")
        }
        applied.withLock { $0 = limit }
        return limit
    }

    /// Makes the cgroup's directory. v2: the memory controller is enabled for it in every
    /// ancestor's `cgroup.subtree_control`. v1: hierarchical accounting is asked for at the
    /// root (`memory.use_hierarchy`, always on in recent kernels, where writing 1 is a no-op).
    /// Returns the error of enabling the memory controller (v2), if any: the limit write that
    /// follows reports it if it fails.
    private func create() throws(BridgeError) -> BridgeError? {
        var controllerError: BridgeError?
        if isUnified {
            var ancestor = root
            for component in path.split(separator: "/") {
                do { try write("+memory", to: "\(ancestor)/cgroup.subtree_control") } catch { controllerError = controllerError ?? error }
                ancestor += "/\(component)"
                try makeDirectory(ancestor)
            }
        } else {
            try? write("1", to: "\(root)/memory/memory.use_hierarchy")
            var directory = "\(root)/memory"
            for component in path.split(separator: "/") {
                directory += "/\(component)"
                try makeDirectory(directory)
            }
        }
        return controllerError
    }

    private func makeDirectory(_ directory: String) throws(BridgeError) {
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw BridgeError(.fail, "pods cgroup: mkdir \(directory): \(String(cString: strerror(errno)))")
        }
    }

    private func write(_ text: String, to file: String) throws(BridgeError) {
        try ControlFile.write(text, to: file, what: "pods cgroup")
    }
}
