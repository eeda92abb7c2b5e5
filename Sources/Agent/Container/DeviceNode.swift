import Bridge
import EventLoop
import Glibc
import Shims

/// A device node of the VM as an OCI spec names it (`linux.devices`) and allows it
/// (`linux.resources.devices`): what the host cannot know and the guest reads from `/dev`
/// (guest-behaviour §7.1 steps 7.4 and 7.6).
struct DeviceNode: Equatable {
    var path: String
    /// `c` or `b`.
    var type: Character
    var major: Int64
    var minor: Int64
    var uid: UInt32
    var gid: UInt32

    /// The node at `path` (not followed); an error for anything but a character or block device.
    init(path: String) throws {
        var type: CChar = 0
        var major: Int64 = 0, minor: Int64 = 0
        var mode: UInt32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        guard shim_device_numbers(path, &type, &major, &minor, &mode, &uid, &gid) == 0 else {
            let error = errno
            throw BridgeError(.fail, "\(path) is not a usable device node: \(SyscallError("lstat", errno: error))")
        }
        self.path = path
        self.type = Character(UnicodeScalar(UInt8(bitPattern: type)))
        self.major = major
        self.minor = minor
        self.uid = uid
        self.gid = gid
    }

    /// The `linux.devices` entry runc creates the node from. No `fileMode`, as Go's guest
    /// writes none: runc makes the node 0666, so a container's non-root users can use the
    /// devices it was given even where the VM's node is 0660.
    var specEntry: JSONValue {
        .object([("path", .string(path)), ("type", .string(String(type))), ("major", .int(major)), ("minor", .int(minor)),
                 ("uid", .uint(UInt64(uid))), ("gid", .uint(UInt64(gid)))])
    }

    /// The `linux.resources.devices` rule that lets the container use it.
    func allowRule(access: String = "rwm") -> JSONValue {
        .object([("allow", .bool(true)), ("type", .string(String(type))), ("major", .int(major)), ("minor", .int(minor)),
                 ("access", .string(access))])
    }

    /// Every character and block device under `directory`, as runc's `HostDevices` lists them:
    /// `pts`, `shm`, `fd`, `mqueue` and the container managers' private directories are skipped,
    /// and so is `console`.
    static func all(under directory: String = "/dev") -> [DeviceNode] {
        var nodes: [DeviceNode] = []
        for name in LocalDirectory.entries(directory).sorted() {
            let path = "\(directory)/\(name)"
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                if !["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"].contains(name) { nodes += all(under: path) }
                continue
            }
            // Anything but a character or block device is refused by the initialiser.
            if name != "console", let node = try? DeviceNode(path: path) { nodes.append(node) }
        }
        return nodes
    }
}
