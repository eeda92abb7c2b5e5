import Bridge
import EventLoop
import Glibc
import Shims

/// Processes run directly in the VM (ContainerId = the null GUID, or CreateInUtilityVM),
/// guest-behaviour §7.3: argv from CommandArgs (or the split CommandLine), exactly the given
/// environment, a bare program name resolved against the agent's PATH. Without a terminal the
/// host's connections become the child's fds 0-2 and the agent leaves the data path; with
/// `EmulateConsole` the agent opens a pty and relays it.
enum ExternalProcess {
    static func start(_ parameters: ProcessParameters, ports: VsockStdioRelaySettings, transport: any Transport,
                      reaper: Reaper, loop: EventLoop) async throws -> GuestProcess {
        let argv = parameters.commandArgs
        guard let program = argv.first else { throw BridgeError(.invalidArgument, "process has an empty command line") }
        let path = try resolve(program)
        var request = SpawnRequest(path: path, arguments: argv,
                                   environment: parameters.environment.keys.sorted().map { "\($0)=\(parameters.environment[$0]!)" },
                                   workingDirectory: parameters.workingDirectory.isEmpty ? nil : parameters.workingDirectory)
        // Every stream asked for is dialled (§6.1), stderr with a terminal too: its listener
        // gets a connection, closed at once (a terminal has no stderr of its own).
        let connections = try await StdioConnections.dial(transport, ports: ports, stdin: parameters.createStdInPipe,
                                                          stdout: parameters.createStdOutPipe, stderr: parameters.createStdErrPipe)
        let pid: pid_t
        let io: ProcessIO
        do {
            if parameters.emulateConsole {
                var master: Int32 = -1, slave: Int32 = -1
                var name = [CChar](repeating: 0, count: 128)
                guard shim_open_pty(&master, &slave, &name, name.count) == 0 else { throw SyscallError("open pty", errno: errno) }
                let masterFD = OwnedFD(adopting: master)
                let slaveFD = OwnedFD(adopting: slave)
                request.newSession = true
                request.controllingTTY = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                pid = try Spawn.start(request, stdio: [])
                slaveFD.close()
                do {
                    io = try ProcessIO.terminal(connections, master: masterFD, loop: loop)
                } catch {
                    // Not left running untracked (it could ignore the SIGHUP of its pty
                    // closing). No await since the spawn: still on the loop thread.
                    reaper.killUnclaimed(pid)
                    throw error
                }
            } else {
                pid = try Spawn.start(request, stdio: try connections.handOff())
                connections.closeAll()  // the child holds them now: the agent is out of the data path
                io = ProcessIO.direct(StdioConnections())
            }
        } catch {
            connections.closeAll()
            throw BridgeError(.fail, "starting \(program): \(error)")
        }
        // hcsshim reports -1 (4294967295) for a signalled external process.
        let process = GuestProcess(pid: pid, arguments: argv, io: io, signalledCode: { _ in UInt32.max })
        await process.start(reaper: reaper, loop: loop)
        return process
    }

    /// `program` if it contains a slash (not checked here: execve's error is reported from the
    /// spawn, as Go's exec does, without a path lookup per process), else the first match in
    /// the agent's PATH that is an executable file, as Go's exec.LookPath (which hcsshim's guest
    /// uses through exec.Command): a directory of that name is skipped; a match through a
    /// relative entry (an empty one is ".") is refused with Go's ErrDot, as it names a file
    /// relative to the agent's directory, not the process's.
    /// `searchPath`: the PATH to search (the agent's own when nil).
    static func resolve(_ program: String, searchPath: String? = nil) throws(BridgeError) -> String {
        if program.contains("/") { return program }
        let path = searchPath ?? getenv("PATH").map { String(cString: $0) } ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        // filepath.SplitList: no entries for an empty PATH, else every entry, empty ones too.
        for dir in path.isEmpty ? [] : path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = dir.isEmpty ? program : "\(dir)/\(program)"
            var info = stat()
            guard stat(candidate, &info) == 0, info.st_mode & S_IFMT != S_IFDIR, access(candidate, X_OK) == 0 else { continue }
            guard dir.hasPrefix("/") else {
                throw BridgeError(.fail, "exec: \"\(program)\": cannot run executable found relative to current directory")
            }
            return candidate
        }
        throw BridgeError(.fail, "exec: \"\(program)\": executable file not found in $PATH")
    }
}
