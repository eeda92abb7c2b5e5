import Glibc
import Shims

/// What to start: a program with its arguments, environment, working directory and stdio.
/// Used for runc invocations and for processes the agent runs directly in the VM.
public struct SpawnRequest: Sendable {
    public var path: String
    public var arguments: [String]
    public var environment: [String]
    public var workingDirectory: String?
    /// Become a session leader (processes with their own terminal, or detached from ours).
    public var newSession = false
    /// Open this tty as fds 0-2 (after `newSession`), making it the controlling terminal.
    public var controllingTTY: String?

    public init(path: String, arguments: [String], environment: [String] = [], workingDirectory: String? = nil) {
        self.path = path
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }
}

/// Starts child processes with vfork + execve (the way posix_spawn does, minus its per-call
/// child stack): never fork in a multithreaded program. The calling thread waits only until
/// the child has exec'd.
public enum Spawn {
    /// Spawns `request` with `stdio[i]` as the child's fd i (nil: /dev/null). The descriptors
    /// are borrowed: the caller keeps owning (and closes) them. Returns the child's pid.
    public static func start(_ request: SpawnRequest, stdio: [Int32?]) throws(SyscallError) -> pid_t {
        // A C string ends at its first NUL: an argument "a\0b" would silently run as "a". Go's
        // os.StartProcess refuses such a string with EINVAL; so does this.
        func hasNUL(_ s: String) -> Bool { s.utf8.contains(0) }
        if hasNUL(request.path) || request.arguments.contains(where: hasNUL) || request.environment.contains(where: hasNUL)
            || request.workingDirectory.map(hasNUL) == true || request.controllingTTY.map(hasNUL) == true {
            throw SyscallError("spawn(\(request.path)): a NUL byte in an argument, the environment or a path", errno: EINVAL)
        }
        var argv = request.arguments.map { strdup($0) }
        argv.append(nil)
        var envp = request.environment.map { strdup($0) }
        envp.append(nil)
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        let fds = stdio.map { $0 ?? -1 }
        let pid = fds.withUnsafeBufferPointer { fdBuffer in
            request.path.withCString { path in
                withOptionalCString(request.workingDirectory) { cwd in
                    withOptionalCString(request.controllingTTY) { tty in
                        shim_spawn(path, argv, envp, cwd, fdBuffer.baseAddress, Int32(fdBuffer.count),
                                   request.newSession ? 1 : 0, tty)
                    }
                }
            }
        }
        if pid < 0 { throw SyscallError("spawn(\(request.path))", errno: -pid) }
        return pid
    }

    private static func withOptionalCString<T>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> T) -> T {
        guard let s else { return body(nil) }
        return s.withCString { body($0) }
    }
}
