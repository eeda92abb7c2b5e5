import Bridge

/// hcsshim's tee log: a container's init output, copied into a file of its pod's log directory
/// (`<sandbox root>/logs`) besides going to the host, and that directory mounted into containers
/// that ask for it, so one container can read another's output inside the VM (Go's guest:
/// `hcsv2/uvm.go`, `CreateContainer`; `container.go`, `Start`).
enum TeeLog {
    /// The file, relative to the pod's log directory (`dir/a.log`).
    static let pathAnnotation = "io.microsoft.container.lcow.tee-log-path"
    /// Where the pod's log directory is bind-mounted in the container.
    static let directoryMountAnnotation = "io.microsoft.container.lcow.tee-log-dir-mount"

    /// Where a container's tee log goes: its pod's log directory and the path below it.
    struct Location: Sendable, Equatable {
        var directory: String
        var path: String
    }

    /// Applies both annotations to the spec of a container whose pod root is `root`, for every
    /// kind of container, as Go's guest does: the directory mount is added to the spec (the
    /// directory made if missing), and the tee log's parent directories are made (each new
    /// level 0777, no symlink on the way). Returns where the tee log goes, or nil.
    static func prepare(_ spec: inout JSONValue, root: String, id: String) throws -> Location? {
        let annotations = spec["annotations"]
        let logs = cleanPath(root + "/logs")
        var location: Location?
        if case .string(let path)? = annotations?[pathAnnotation], !path.isEmpty {
            let full = cleanPath(logs + "/" + path)
            guard full.hasPrefix(logs + "/") else {
                throw BridgeError(.fail, "container \(id): log path \(full) is not within the sandbox's log directory \(logs)")
            }
            _ = try SandboxMounts.makeOpenDirectory(full.deletingLastComponent, below: cleanPath(root), source: "tee log \(path)")
            location = Location(directory: logs, path: String(full.dropFirst(logs.count + 1)))
        }
        if case .string(let destination)? = annotations?[directoryMountAnnotation], !destination.isEmpty {
            _ = try SandboxMounts.makeOpenDirectory(logs, below: cleanPath(root), source: "tee log directory")
            var mounts: [JSONValue] = { if case .array(let m)? = spec["mounts"] { return m } else { return [] } }()
            mounts.append(.object([("destination", .string(destination)), ("type", .string("bind")),
                                   ("source", .string(logs)), ("options", .array([.string("bind")]))]))
            spec.setMember(["mounts"], .array(mounts))
        }
        return location
    }
}
