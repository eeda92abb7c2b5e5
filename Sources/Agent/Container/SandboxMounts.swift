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
        if shim_mount_fs("tmpfs", tmpfs, "tmpfs", "") != 0 {
            let error = errno
            if error != EBUSY { throw SyscallError("mount(tmpfs \(tmpfs))", errno: error) }
        }
        try check(shim_mount_make_rshared(tmpfs), "mount(rshared \(tmpfs))")
        _ = try makeOpenDirectory("\(root)/logs", below: root, source: "logs")
    }

    /// Unmounts everything mounted at or below the three shared directories, the latest mount
    /// first (`/proc/self/mountinfo` order reversed: a mount made over another goes before it),
    /// and removes the mount points, deepest first (§7.11 step 4). Failures are logged: the
    /// sandbox's deletion goes on.
    static func release(root: String, logger: Logger) {
        let points: [String]
        do { points = try mountPoints() } catch {
            logger.error("sandbox mounts not released: mount table unreadable", metadata: ["root": "\(root)", "error": "\(error)"])
            return
        }
        let directories = [mountsDirectory(root), tmpfsDirectory(root), hugePagesDirectory(root)]
        let inside = points.filter { point in directories.contains { point == $0 || point.hasPrefix($0 + "/") } }
        for point in inside.reversed() where shim_umount(point) != 0 {
            let error = errno
            // EINVAL: no longer a mount point (a stacked twin or a parent took it along).
            if error != EINVAL && error != ENOENT {
                logger.error("sandbox mount not unmounted", metadata: ["path": "\(point)", "error": "\(String(cString: strerror(error)))"])
            }
        }
        for point in Set(inside).sorted(by: { $0.count > $1.count }) where rmdir(point) != 0 {
            let error = errno
            if error != ENOENT && error != ENOTEMPTY {
                logger.warning("sandbox mount point not removed", metadata: ["path": "\(point)", "error": "\(String(cString: strerror(error)))"])
            }
        }
    }

    /// Rewrites a workload's special mount sources (step 7.4) against its pod's root, in
    /// Go's order (shared volumes, hugepages, block devices, VM paths), creating the shared
    /// directories (and hugetlbfs mounts) they name. A source that leaves its directory, by
    /// `..` or through a symlink a container left in a shared volume, is an error, as is a
    /// `uvm://` path that does not exist or a `blockdev://` source that is no device.
    static func resolveSources(_ spec: inout JSONValue, root: String) throws {
        guard case .array(var mounts)? = spec["mounts"] else { return }
        func rewriteSources(_ prefix: String, _ resolve: (String, String) throws -> String) rethrows {
            for index in mounts.indices {
                guard case .string(let source)? = mounts[index]["source"], let rest = source.dropPrefix(prefix) else { continue }
                mounts[index].setMember(["source"], .string(try resolve(rest, source)))
            }
        }
        try rewriteSources("sandbox://") { try sharedDirectory(mountsDirectory(root), $0, $1) }
        try rewriteSources("sandbox-tmp://") { try sharedDirectory(tmpfsDirectory(root), $0, $1) }
        try rewriteSources("hugepages://") { try hugePages(root: root, $0, $1) }
        var deviceRules: [JSONValue] = []
        for index in mounts.indices {
            guard case .string(let destination)? = mounts[index]["destination"], let stripped = destination.dropPrefix("blockdev://") else { continue }
            deviceRules.append(try blockDeviceRule(mounts[index]))
            mounts[index].setMember(["destination"], .string(stripped))
        }
        try rewriteSources("uvm://") { path, source in
            var st = stat()
            guard stat(path, &st) == 0 else {
                let error = errno
                throw BridgeError(.fail, "could not open uVM mount target \(path) of mount source \(source): \(SyscallError("stat", errno: error))")
            }
            return path
        }
        spec.setMember(["mounts"], .array(mounts))
        if !deviceRules.isEmpty {
            let existing: [JSONValue] = { if case .array(let r)? = spec["linux"]?["resources"]?["devices"] { return r } else { return [] } }()
            spec.setMember(["linux", "resources", "devices"], .array(existing + deviceRules))
        }
    }

    // MARK: Pieces

    /// `<directory>/<sub>`, cleaned and still inside `directory`, created (each level 0777)
    /// where missing, with no symlink on the way.
    private static func sharedDirectory(_ directory: String, _ sub: String, _ source: String) throws -> String {
        let path = cleanPath(directory + "/" + sub)
        guard path == directory || path.hasPrefix(directory + "/") else {
            throw BridgeError(.fail, "mount path \(path) for mount \(source) is not within the sandbox's directory \(directory)")
        }
        _ = try makeOpenDirectory(path, below: directory, source: source)
        return path
    }

    /// `hugepages://<size>/<sub>`: a hugetlbfs of that page size at `<root>/hugepages/<size>/<sub>`,
    /// mounted when the directory is new (and removed again if the mount fails).
    private static func hugePages(root: String, _ sub: String, _ source: String) throws -> String {
        let directory = hugePagesDirectory(root)
        let size = String(sub.prefix { $0 != "/" })
        guard size == hugePageSize else {
            throw BridgeError(.fail, "mount \(source): only \(hugePageSize) hugepages are supported, not '\(size)'")
        }
        let path = cleanPath(directory + "/" + sub)
        guard path.hasPrefix(directory + "/\(size)/") else {
            throw BridgeError(.fail, "mount path \(path) for mount \(source) is not within the sandbox's directory \(directory)/\(size)")
        }
        let created = try makeOpenDirectory(path, below: directory, source: source)
        if created.contains(path) && shim_mount_fs("none", path, "hugetlbfs", "pagesize=\(size)") != 0 {
            let error = errno
            for made in created.reversed() { rmdir(made) }
            throw BridgeError(.fail, "mount \(source): hugetlbfs at \(path): \(SyscallError("mount", errno: error))")
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
        guard n > 0 else {
            let error = errno
            throw BridgeError(.fail, "failed to readlink \(link): \(SyscallError("readlink", errno: error))")
        }
        let device = String(decoding: target[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let node = try DeviceNode(path: device)
        return .object([("allow", .bool(true)), ("type", .string(String(node.type))), ("major", .int(node.major)),
                        ("minor", .int(node.minor)), ("access", .string(access))])
    }

    /// mkdir -p of `path` below `base` (which exists), each new level 0777 whatever the umask
    /// (the containers' users may differ). A level that exists must be a directory and not a
    /// symlink: a container may have left one in a shared volume, pointing anywhere in the VM,
    /// or swap one in while this runs. So the walk goes from directory descriptor to directory
    /// descriptor (`mkdirat`, then `openat` with O_NOFOLLOW, `fchmod` on what was opened), never
    /// by path. Returns the directories it made, outermost first.
    static func makeOpenDirectory(_ path: String, below base: String, source: String) throws -> [String] {
        var parent = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { throw BridgeError(.fail, "mount \(source): \(SyscallError("open(\(base))", errno: errno))") }
        defer { close(parent) }
        var current = base, created: [String] = []
        for component in path.dropFirst(base.count).split(separator: "/") {
            current += "/" + component
            let name = String(component)
            let made = mkdirat(parent, name, 0o777) == 0
            guard made || errno == EEXIST else {
                throw BridgeError(.fail, "mount \(source): \(SyscallError("mkdir(\(current))", errno: errno))")
            }
            let level = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard level >= 0 else {
                let error = errno
                if error == ELOOP || error == ENOTDIR {
                    throw BridgeError(.fail, "mount \(source): \(current) is a symlink or not a directory")
                }
                throw BridgeError(.fail, "mount \(source): \(SyscallError("open(\(current))", errno: error))")
            }
            close(parent)
            parent = level
            if made {
                guard fchmod(level, 0o777) == 0 else {
                    throw BridgeError(.fail, "mount \(source): \(SyscallError("chmod(\(current))", errno: errno))")
                }
                created.append(current)
            }
        }
        return created
    }

    private static func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws {
        guard rc != 0 else { return }
        let error = errno
        throw SyscallError(operation(), errno: error)
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
    /// The path without its last component ("/a/b/c" -> "/a/b").
    var deletingLastComponent: String {
        guard let slash = lastIndex(of: "/") else { return "." }
        return slash == startIndex ? "/" : String(self[..<slash])
    }

    /// The rest of the string after `prefix`, or nil when it does not start with it.
    func dropPrefix(_ prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
