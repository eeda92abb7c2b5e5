import Bridge
import EventLoop
import Glibc

/// A minimal container image for local runs: Debian's static busybox copied into a rootfs with
/// one symlink per applet, and an OCI spec for it in the shape hcsshim sends.
public enum Busybox {
    public static let binary = "/bin/busybox"

    /// Creates `<directory>/rootfs` with busybox installed; returns the rootfs path.
    public static func makeRootfs(in directory: String) throws -> String {
        let rootfs = "\(directory)/rootfs"
        try LocalGuest.makeDirectories(directory)
        for dir in ["", "/bin", "/proc", "/sys", "/dev", "/tmp", "/etc", "/root"] {
            if mkdir(rootfs + dir, 0o755) != 0 && errno != EEXIST { throw SyscallError("mkdir(\(rootfs + dir))", errno: errno) }
        }
        try copyFile(binary, to: "\(rootfs)/bin/busybox", mode: 0o755)
        for applet in ["sh", "echo", "cat", "uname", "ls", "sleep", "stty", "true", "false", "printf", "head", "dd", "env", "id", "kill", "wc", "yes", "tr", "seq"] {
            _ = symlink("busybox", "\(rootfs)/bin/\(applet)")
        }
        try writeText("\(rootfs)/etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/tmp:/bin/sh\n")
        try writeText("\(rootfs)/etc/group", "root:x:0:\nstaff:x:50:\napp:x:1000:\n")
        return rootfs
    }

    /// An OCI runtime spec for a busybox container (namespaces, default mounts), in the JSON
    /// shape of `runc spec`, with `args` as the init process.
    public static func spec(rootfs: String, args: [String], terminal: Bool = false, hostname: String = "") -> JSONValue {
        let mounts: [JSONValue] = [
            mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
            mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
            mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        ]
        let namespaces: [JSONValue] = ["pid", "ipc", "uts", "mount"].map { .object([("type", .string($0))]) }
        return .object([
            ("ociVersion", .string("1.0.2")),
            ("process", .object([
                ("terminal", .bool(terminal)),
                ("user", .object([("uid", .int(0)), ("gid", .int(0))])),
                ("args", .array(args.map { .string($0) })),
                ("env", .array([.string("PATH=/bin"), .string("TERM=xterm")])),
                ("cwd", .string("/")),
                ("noNewPrivileges", .bool(true)),
            ])),
            ("root", .object([("path", .string(rootfs)), ("readonly", .bool(false))])),
            ("hostname", .string(hostname)),
            ("mounts", .array(mounts)),
            ("linux", .object([
                ("namespaces", .array(namespaces)),
                ("maskedPaths", .array(["/proc/kcore", "/proc/keys", "/proc/timer_list"].map { .string($0) })),
                ("readonlyPaths", .array(["/proc/sys", "/proc/sysrq-trigger"].map { .string($0) })),
            ])),
        ])
    }

    /// An OCI process for `runc exec` (ExecuteProcess's `OciProcess`).
    public static func process(args: [String], terminal: Bool = false) -> JSONValue {
        .object([
            ("terminal", .bool(terminal)),
            ("user", .object([("uid", .int(0)), ("gid", .int(0))])),
            ("args", .array(args.map { .string($0) })),
            ("env", .array([.string("PATH=/bin"), .string("TERM=xterm")])),
            ("cwd", .string("/")),
        ])
    }

    private static func mount(_ destination: String, _ type: String, _ source: String, _ options: [String]) -> JSONValue {
        .object([("destination", .string(destination)), ("type", .string(type)), ("source", .string(source)),
                 ("options", .array(options.map { .string($0) }))])
    }

    static func copyFile(_ from: String, to: String, mode: mode_t) throws {
        let input = open(from, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw SyscallError("open(\(from))", errno: errno) }
        defer { close(input) }
        let output = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard output >= 0 else { throw SyscallError("open(\(to))", errno: errno) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw SyscallError("read(\(from))", errno: errno) }
            if n == 0 { return }
            var offset = 0
            while offset < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + offset, n - offset) }
                if w < 0 { if errno == EINTR { continue }; throw SyscallError("write(\(to))", errno: errno) }
                offset += w
            }
        }
    }

    static func writeText(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SyscallError("open(\(path))", errno: errno) }
        defer { close(fd) }
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }
}
