import Bridge
import EventLoop
import Glibc
import Logging
import Shims

/// The pod-wide directories under a sandbox root that workload containers mount from, and the
/// special mount sources the host leaves for the guest to resolve (guest-behaviour §4, §7.1
/// steps 6.9 and 7.4, §7.11 step 4). Kubernetes volumes shared by the containers of a pod
/// (`emptyDir`) arrive as `sandbox://<name>` (on the VM's disk) or `sandbox-tmp://<name>`
/// (in memory); hugepage volumes as `hugepages://2M/<name>`; a path of the VM itself as
/// `uvm://<path>`; a SCSI block device as a `blockdev://` destination.
enum SandboxMounts {
    static func mountsDirectory(_ root: String) -> String { "\(root)/sandboxMounts" }
    static func tmpfsDirectory(_ root: String) -> String { "\(root)/sandboxTmpfsMounts" }
    static func hugePagesDirectory(_ root: String) -> String { "\(root)/hugepages" }
    /// The only page size hcsshim allows for `hugepages://` sources.
    static let hugePageSize = "2M"

    /// Creates a new sandbox's shared directories (step 6.9): `sandboxMounts` and `hugepages`
    /// bind-mounted onto themselves, `sandboxTmpfsMounts` a tmpfs, all three `rshared` so a
    /// mount made in one later reaches the containers that mount it; `logs` open to all.
    static func create(root: String) throws {
        for directory in [mountsDirectory(root), hugePagesDirectory(root)] {
            try makeDirectory(directory, mode: 0o755)
            try check(shim_mount_bind(directory, directory), "mount(bind \(directory))")
            try check(shim_mount_make_rshared(directory), "mount(rshared \(directory))")
        }
        let tmpfs = tmpfsDirectory(root)
        try makeDirectory(tmpfs, mode: 0o755)
        if shim_mount_fs("tmpfs", tmpfs, "tmpfs", "") != 0 && errno != EBUSY {
            throw SyscallError("mount(tmpfs \(tmpfs))", errno: errno)
        }
        try check(shim_mount_make_rshared(tmpfs), "mount(rshared \(tmpfs))")
        try makeOpenDirectory("\(root)/logs")
    }

    /// Unmounts everything mounted at or below the three shared directories, deepest first,
    /// each as many times as it is stacked, and removes the mount points (§7.11 step 4).
    /// Failures are logged: the sandbox's deletion goes on.
    static func release(root: String, logger: Logger) {
        let points: [String]
        do { points = try mountPoints() } catch {
            logger.error("sandbox mounts not released: mount table unreadable", metadata: ["root": "\(root)", "error": "\(error)"])
            return
        }
        for directory in [mountsDirectory(root), tmpfsDirectory(root), hugePagesDirectory(root)] {
            let inside = points.filter { $0 == directory || $0.hasPrefix(directory + "/") }
            // Longest first: a mount below another goes before it.
            for point in Set(inside).sorted(by: { $0.count > $1.count }) {
                while shim_umount(point) == 0 {}
                if errno != EINVAL {
                    logger.error("sandbox mount not unmounted", metadata: ["path": "\(point)", "errno": "\(errno)"])
                    continue
                }
                if rmdir(point) != 0 && errno != ENOENT && errno != ENOTEMPTY {
                    logger.warning("sandbox mount point not removed", metadata: ["path": "\(point)", "errno": "\(errno)"])
                }
            }
        }
    }

    /// Rewrites a workload's special mount sources (step 7.4) against its pod's root; creates
    /// the shared directories (and hugetlbfs mounts) they name. A source that leaves its
    /// directory once cleaned (`sandbox://../x`) is an error, as is a `uvm://` path that does
    /// not exist or a `blockdev://` source that is no block device.
    static func resolveSources(_ spec: inout JSONValue, root: String) throws {
        guard case .array(var mounts)? = spec["mounts"] else { return }
        var deviceRules: [JSONValue] = []
        for index in mounts.indices {
            var mount = mounts[index]
            if case .string(let source)? = mount["source"] {
                if let sub = source.dropPrefix("sandbox://") {
                    mount.setMember(["source"], .string(try sharedDirectory(mountsDirectory(root), sub, source)))
                } else if let sub = source.dropPrefix("sandbox-tmp://") {
                    mount.setMember(["source"], .string(try sharedDirectory(tmpfsDirectory(root), sub, source)))
                } else if let sub = source.dropPrefix("hugepages://") {
                    mount.setMember(["source"], .string(try hugePages(root: root, sub, source)))
                } else if let path = source.dropPrefix("uvm://") {
                    var st = stat()
                    guard stat(path, &st) == 0 else {
                        throw BridgeError(.fail, "could not open uVM mount target \(path) of mount source \(source): \(SyscallError("stat", errno: errno))")
                    }
                    mount.setMember(["source"], .string(path))
                }
            }
            if case .string(let destination)? = mount["destination"], let stripped = destination.dropPrefix("blockdev://") {
                deviceRules.append(try blockDeviceRule(mount))
                mount.setMember(["destination"], .string(stripped))
            }
            mounts[index] = mount
        }
        spec.setMember(["mounts"], .array(mounts))
        if !deviceRules.isEmpty {
            let existing: [JSONValue] = { if case .array(let r)? = spec["linux"]?["resources"]?["devices"] { return r } else { return [] } }()
            spec.setMember(["linux", "resources", "devices"], .array(existing + deviceRules))
        }
    }

    // MARK: Pieces

    /// `<directory>/<sub>`, cleaned and still inside `directory`, created (0777) if missing.
    private static func sharedDirectory(_ directory: String, _ sub: String, _ source: String) throws -> String {
        let path = cleanPath(directory + "/" + sub)
        guard path.hasPrefix(directory + "/") else {
            throw BridgeError(.fail, "mount path \(path) for mount \(source) is not within the sandbox's directory \(directory)")
        }
        try makeOpenDirectory(path)
        return path
    }

    /// `hugepages://<size>/<sub>`: a hugetlbfs of that page size at `<root>/hugepages/<size>/<sub>`,
    /// mounted when the directory is new.
    private static func hugePages(root: String, _ sub: String, _ source: String) throws -> String {
        let directory = hugePagesDirectory(root)
        let size = String(sub.prefix { $0 != "/" })
        guard size == hugePageSize else {
            throw BridgeError(.fail, "mount \(source): only \(hugePageSize) hugepages are supported, not '\(size)'")
        }
        let path = cleanPath(directory + "/" + sub)
        guard path.hasPrefix(directory + "/") else {
            throw BridgeError(.fail, "mount path \(path) for mount \(source) is not within the sandbox's hugepages directory")
        }
        var st = stat()
        if stat(path, &st) != 0 {
            try makeOpenDirectory(path)
            try check(shim_mount_fs("none", path, "hugetlbfs", "pagesize=\(size)"), "mount(hugetlbfs \(path))")
        }
        return path
    }

    /// The device-cgroup rule that lets the container use the block device a `blockdev://`
    /// mount's source links to: `rwm`, or `r` for a read-only mount.
    private static func blockDeviceRule(_ mount: JSONValue) throws -> JSONValue {
        guard case .string(let link)? = mount["source"] else { throw BridgeError(.fail, "blockdev mount without a source") }
        let options: [JSONValue] = { if case .array(let o)? = mount["options"] { return o } else { return [] } }()
        let access = options.contains(.string("ro")) ? "r" : "rwm"
        var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(link, &target, target.count - 1)
        guard n > 0 else { throw BridgeError(.fail, "failed to readlink \(link): \(SyscallError("readlink", errno: errno))") }
        let device = String(decoding: target[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let node = try DeviceNode(path: device)
        return .object([("allow", .bool(true)), ("type", .string(String(node.type))), ("major", .int(node.major)),
                        ("minor", .int(node.minor)), ("access", .string(access))])
    }

    /// mkdir -p, each new directory 0777 whatever the umask (the containers' users may differ).
    private static func makeOpenDirectory(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 { return }
        try makeDirectory(path, mode: 0o777)
        _ = chmod(path, 0o777)
    }

    private static func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws {
        if rc != 0 { throw SyscallError(operation(), errno: errno) }
    }

    /// Every mount point of this mount namespace, from `/proc/self/mountinfo` (field 5,
    /// octal escapes decoded).
    static func mountPoints() throws -> [String] {
        let text = try readFile("/proc/self/mountinfo")
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 5)
            return fields.count > 4 ? unescapeMountField(fields[4]) : nil
        }
    }

    static func unescapeMountField(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Go's `filepath.Clean` for absolute paths: no empty, `.` or `..` components (`..` at the
/// root stays at the root).
func cleanPath(_ path: String) -> String {
    var parts: [Substring] = []
    for component in path.split(separator: "/", omittingEmptySubsequences: true) {
        switch component {
        case ".": continue
        case "..": if !parts.isEmpty { parts.removeLast() }
        default: parts.append(component)
        }
    }
    return "/" + parts.joined(separator: "/")
}

extension String {
    /// The rest of the string after `prefix`, or nil when it does not start with it.
    func dropPrefix(_ prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
