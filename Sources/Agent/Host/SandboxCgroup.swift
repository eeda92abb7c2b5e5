import Bridge
import Glibc
import Logging

/// The cgroup of one pod, `/pods/<sandboxId>` (guest-behaviour §5, §7.1 step 6.10, §7.11
/// step 8): the parent of the sandbox container's and its workloads' cgroups, made when the
/// sandbox is created with the sandbox spec's `linux.resources` (so the pod as a whole is held
/// to them), and removed with the sandbox. runc would make the directory on its own, without
/// limits, and never remove it: a VM that runs pods for weeks would collect one per pod in
/// every hierarchy.
struct SandboxCgroup {
    /// As in `linux.cgroupsPath`: `/pods/<sandboxId>`.
    let path: String
    let root: String
    let isUnified: Bool

    init(path: String, root: String = "/sys/fs/cgroup") {
        self.path = path
        self.root = root
        isUnified = CgroupFile.isUnified(root: root)
    }

    /// One control file to write: in which v1 hierarchy, under which name, what.
    struct Setting: Equatable {
        var controller: String
        var file: String
        var value: String
    }

    /// The files that OCI `resources` become: memory limit, swap and reservation, CPU shares, quota
    /// and period, cpuset, pids, and on v2 the `unified` map as given. What it cannot apply
    /// (hugepage limits, block I/O, network classes: the host clears them for Linux pods) is
    /// returned by name, to be logged.
    func settings(for resources: JSONValue) -> (settings: [Setting], ignored: [String]) {
        var settings: [Setting] = [], ignored: [String] = []
        func add(_ controller: String, v1: String, v2: String, _ value: String) {
            settings.append(Setting(controller: controller, file: isUnified ? v2 : v1, value: value))
        }
        func integer(_ value: JSONValue?) -> Int64? {
            switch value {
            case .int(let i)?: return i
            case .uint(let u)?: return u > UInt64(Int64.max) ? Int64.max : Int64(u)
            default: return nil
            }
        }
        let memory = resources["memory"], cpu = resources["cpu"]
        if let limit = integer(memory?["limit"]) {
            add("memory", v1: "memory.limit_in_bytes", v2: "memory.max", limit < 0 ? (isUnified ? "max" : "-1") : "\(limit)")
        }
        if let swap = integer(memory?["swap"]) {
            // OCI's swap is memory plus swap. v1 writes it as is (after the limit, which it
            // must not be below); v2 limits swap alone, so the memory limit is taken off.
            let limit = integer(memory?["limit"]) ?? -1
            if !isUnified {
                settings.append(Setting(controller: "memory", file: "memory.memsw.limit_in_bytes", value: swap < 0 ? "-1" : "\(swap)"))
            } else if swap < 0 {
                settings.append(Setting(controller: "memory", file: "memory.swap.max", value: "max"))
            } else if limit > 0 && swap >= limit {
                settings.append(Setting(controller: "memory", file: "memory.swap.max", value: "\(swap - limit)"))
            } else {
                ignored.append("memory.swap")
            }
        }
        if let reservation = integer(memory?["reservation"]) {
            add("memory", v1: "memory.soft_limit_in_bytes", v2: "memory.low", reservation < 0 ? (isUnified ? "max" : "-1") : "\(reservation)")
        }
        if let shares = integer(cpu?["shares"]), shares > 0 {
            // The v2 weight of v1 shares, as runc converts them (guest-behaviour §5).
            add("cpu", v1: "cpu.shares", v2: "cpu.weight", isUnified ? "\(1 + ((max(shares, 2) - 2) * 9999) / 262142)" : "\(shares)")
        }
        let quota = integer(cpu?["quota"]), period = integer(cpu?["period"])
        if quota != nil || period != nil {
            if isUnified {
                let quotaText = quota.map { $0 > 0 ? "\($0)" : "max" } ?? "max"
                settings.append(Setting(controller: "cpu", file: "cpu.max", value: "\(quotaText) \(period.map { $0 > 0 ? $0 : 100_000 } ?? 100_000)"))
            } else {
                // The period first: a quota is checked against the period in place.
                if let period, period > 0 { settings.append(Setting(controller: "cpu", file: "cpu.cfs_period_us", value: "\(period)")) }
                if let quota { settings.append(Setting(controller: "cpu", file: "cpu.cfs_quota_us", value: quota > 0 ? "\(quota)" : "-1")) }
            }
        }
        if case .string(let cpus)? = cpu?["cpus"], !cpus.isEmpty { add("cpuset", v1: "cpuset.cpus", v2: "cpuset.cpus", cpus) }
        if case .string(let mems)? = cpu?["mems"], !mems.isEmpty { add("cpuset", v1: "cpuset.mems", v2: "cpuset.mems", mems) }
        if let pids = integer(resources["pids"]?["limit"]) { add("pids", v1: "pids.max", v2: "pids.max", pids > 0 ? "\(pids)" : "max") }
        if isUnified, case .object(let unified)? = resources["unified"] {
            for (file, value) in unified {
                guard case .string(let text) = value, !file.contains("/") else { ignored.append("unified.\(file)"); continue }
                settings.append(Setting(controller: String(file.prefix { $0 != "." }), file: file, value: text))
            }
        }
        for key in ["hugepageLimits", "blockIO", "network", "rdma"] where resources[key] != nil && resources[key] != .null {
            if case .array(let a)? = resources[key], a.isEmpty { continue }
            if case .object(let o)? = resources[key], o.isEmpty { continue }
            ignored.append(key)
        }
        return (settings, ignored)
    }

    /// Makes the cgroup and applies `resources`. On v1 the directory is made in each
    /// hierarchy written to (runc makes the others); on v2 the controllers needed are enabled
    /// down the tree first. A write the kernel refuses fails the create with the file's name.
    func create(resources: JSONValue?, logger: Logger) throws {
        let (settings, ignored) = resources.map { self.settings(for: $0) } ?? ([], [])
        if !ignored.isEmpty {
            logger.warning("pod cgroup: resources not applied", metadata: ["cgroup": "\(path)", "resources": "\(ignored.joined(separator: ","))"])
        }
        if isUnified {
            var ancestor = root
            let controllers = Set(settings.map(\.controller)).sorted()
            for component in path.split(separator: "/") {
                for controller in controllers {
                    try? ControlFile.write("+\(controller)", to: "\(ancestor)/cgroup.subtree_control", what: "pod cgroup")
                }
                ancestor += "/\(component)"
                try makeDirectory(ancestor)
            }
            for setting in settings { try ControlFile.write(setting.value, to: "\(ancestor)/\(setting.file)", what: "pod cgroup \(path)") }
        } else {
            for setting in settings {
                let directory = "\(root)/\(setting.controller)\(path)"
                if setting.controller == "cpuset" { try makeV1CpusetDirectory() } else { try makeDirectory(directory) }
                try ControlFile.write(setting.value, to: "\(directory)/\(setting.file)", what: "pod cgroup \(path)")
            }
        }
    }

    /// v1 cpuset: a new cgroup starts with no CPUs and no memory nodes, and may only be given a
    /// subset of its parent's, so a cgroup made under a new `/pods` could take none. Each
    /// directory on the way gets its parent's where it has none yet, as containerd's cgroup1
    /// cpuset code (which Go's guest uses) does, before anything is written below it.
    private func makeV1CpusetDirectory() throws {
        var parent = "\(root)/cpuset"
        for component in path.split(separator: "/") {
            let child = "\(parent)/\(component)"
            try makeDirectory(child)
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let own = (try? readFile("\(child)/\(file)"))?.trimmingCharacters(in: .whitespacesAndNewlines)
                guard own?.isEmpty == true,
                      let inherited = (try? readFile("\(parent)/\(file)"))?.trimmingCharacters(in: .whitespacesAndNewlines),
                      !inherited.isEmpty else { continue }
                try ControlFile.write(inherited, to: "\(child)/\(file)", what: "pod cgroup \(path)")
            }
            parent = child
        }
    }

    /// Removes the cgroup from every hierarchy it is in; true when it is gone from all. Its
    /// containers' cgroups must be gone first (runc delete removes them): while one is left
    /// the removal fails, and the caller tries again later.
    @discardableResult
    func remove(logger: Logger) -> Bool {
        let directories = isUnified ? [root + path] : LocalDirectory.entries(root).map { "\(root)/\($0)\(path)" }
        var removed = true
        for directory in directories where rmdir(directory) != 0 {
            let error = errno
            if error == ENOENT || error == ENOTDIR { continue }
            removed = false
            logger.info("pod cgroup not removed yet", metadata: ["cgroup": "\(directory)", "error": "\(String(cString: strerror(error)))"])
        }
        return removed
    }
}
