import EventLoop
import Glibc
import Shims

/// mkdir -p with `mode` for every directory it creates.
func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, mode) != 0 && errno != EEXIST {
            throw SyscallError("mkdir(\(current))", errno: errno)
        }
    }
}

/// rm -rf without following symlinks or crossing into other filesystems. Returns the first
/// failure (nil once the tree is gone, or if it never existed); cleanup paths that can only
/// log ignore it. A mount left inside the tree (a container's overlay rootfs the host has not
/// removed yet, a bind of some other directory) keeps its contents, and is the failure
/// reported (EBUSY, as removing a mount point fails): deleting through it would destroy files
/// that are not the tree's.
@discardableResult
func removeTree(_ path: String) -> SyscallError? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return errno == ENOENT ? nil : SyscallError("lstat(\(path))", errno: errno) }
    return removeTree(path, st, device: st.st_dev)
}

private func removeTree(_ path: String, _ st: stat, device: dev_t) -> SyscallError? {
    guard st.st_dev == device else { return SyscallError("remove \(path): another filesystem is mounted there", errno: EBUSY) }
    var first: SyscallError?
    if (st.st_mode & S_IFMT) == S_IFDIR {
        for name in LocalDirectory.entries(path) {
            let child = "\(path)/\(name)"
            var childStat = stat()
            if lstat(child, &childStat) == 0 {
                let failure = removeTree(child, childStat, device: device)
                first = first ?? failure
            } else if errno != ENOENT {
                first = first ?? SyscallError("lstat(\(child))", errno: errno)
            }
        }
        if rmdir(path) != 0 && errno != ENOENT { first = first ?? SyscallError("rmdir(\(path))", errno: errno) }
    } else if unlink(path) != 0 && errno != ENOENT {
        first = first ?? SyscallError("unlink(\(path))", errno: errno)
    }
    return first
}

/// `removeTree` of each path in turn, on a thread of its own: a container's tree can hold tens
/// of thousands of files (its writable layer), and the loop thread serves every request and
/// relay meanwhile. Returns the first failure.
@discardableResult
func removeTreeOffLoop(_ paths: [String]) async -> SyscallError? {
    let paths = paths.filter { !$0.isEmpty }
    guard !paths.isEmpty else { return nil }
    return await BlockingWork.run {
        var first: SyscallError?
        for path in paths {
            let failure = removeTree(path)
            first = first ?? failure
        }
        return first
    }
}

/// Names in a directory (no `.`/`..`); empty when it cannot be read.
enum LocalDirectory {
    static func entries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// Reads a file of a container's root filesystem, `path` (such as `etc/passwd`) resolved
/// inside `root` as the container would see it: a symlink such as `/etc/passwd -> /dev/zero`
/// or `../../..` cannot reach the VM's own files. Only a regular file is opened (a FIFO would
/// block the loop thread for good, a device's open have effects), and at most `limit` bytes are
/// read (Go reads any size; 16 MiB is far beyond any real passwd file): the container's content
/// is not trusted.
func readContainerFile(root: String, _ path: String, limit: Int = 16 << 20) throws -> String {
    let fd = shim_open_in_root(root, path)
    guard fd >= 0 else {
        throw SyscallError(errno == EINVAL ? "\(root) / \(path): not a regular file" : "open(\(root) / \(path))", errno: errno)
    }
    defer { close(fd) }
    return try readToEnd(fd, name: "\(root) / \(path)", limit: limit)
}
