import Bridge
import EventLoop
import Glibc

/// What of `Container` needs none of its private state: its per-process files, its tee log,
/// `runc update`, and the spec readings its requests share. Kept apart so that the actor's
/// file holds its lifecycle.
extension Container {
    /// Renames the per-process directory to the pid, as hcsshim's layout has it.
    /// A directory already there for the pid is an earlier process's whose exit was never
    /// waited for (the pid was reused): it gives way, or this one would stay `new-N` for good.
    /// Returns where the directory is now (a rename that failed leaves it where it was).
    @discardableResult
    func finishProcessFiles(_ files: Runc.ProcessFiles, pid: pid_t) throws -> String {
        let directory = files.pidFile.deletingLastComponent, renamed = "\(runDirectory)/\(pid)"
        if rename(directory, renamed) == 0 { return renamed }
        guard errno == EEXIST || errno == ENOTEMPTY else { return directory }
        removeTree(renamed)
        return rename(directory, renamed) == 0 ? renamed : directory
    }

    /// Applies new resource limits, an OCI `LinuxResources` object (ModifySettings
    /// `ContainerConstraints`), with `runc update`; runc's error reaches the host as usual.
    func update(resources: JSONValue) async throws {
        var json: [UInt8] = []
        resources.write(to: &json)
        try await runc.update(id: id, resources: json)
    }

    /// The init's tee log (`TeeLog`), opened for appending; nil when the spec asks for none.
    func openTeeLog() throws -> TeeFile? {
        guard let teeLog else { return nil }
        do { return try TeeFile(directory: teeLog.directory, path: teeLog.path) } catch {
            throw BridgeError(.fail, "container \(id): failed to open log file: \(error)")
        }
    }

    /// Whether the spec gives the container a pid namespace of its own: a `pid` entry that
    /// does not join an existing one by path.
    static func ownsPidNamespace(_ spec: JSONValue) -> Bool {
        guard case .array(let namespaces)? = spec["linux"]?["namespaces"] else { return false }
        return namespaces.contains { namespace in
            guard namespace["type"] == .string("pid") else { return false }
            if case .string(let path)? = namespace["path"], !path.isEmpty { return false }
            return true
        }
    }

    /// The string arguments of an OCI process (`args`), or none when it names no array.
    static func arguments(of process: JSONValue?) -> [String] {
        guard case .array(let items)? = process?["args"] else { return [] }
        return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }
}
