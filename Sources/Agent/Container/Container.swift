import Bridge
import EventLoop
import FoundationEssentials
import Glibc
import Logging
import Synchronization

/// Why a container's init ended, as the exit notification reports it.
public enum ContainerExitType: String, Sendable {
    case unexpected = "UnexpectedExit"
    case graceful = "GracefulExit"
    case forced = "ForcedExit"
}

/// One OCI container run by runc: its bundle, its runc state, its init process and the
/// processes exec'd into it. All of its control-plane state lives in this actor.
public actor Container {
    public enum Status: String, Sendable { case created, running, stopped }

    public let id: String
    public let bundle: String
    /// The container's writable layer (upper and work directories of its overlay), when the
    /// host named one (`ScratchDirPath`): outside the bundle in hcsshim's shared-scratch and
    /// shim v2 layouts, on a disk that outlives the container.
    let scratchDirectory: String
    let runDirectory: String
    let spec: JSONValue
    let runc: Runc
    let reaper: Reaper
    let loop: EventLoop
    let logger: Logger
    /// The ActivityId of the Create request, echoed in the exit notification.
    let activityID: String

    public private(set) var status: Status = .created
    public private(set) var exitType: ContainerExitType = .unexpected
    public private(set) var initPID: pid_t = 0
    private var initProcess: GuestProcess?
    /// Re-dials the init's output after a host reconnect; stopped by a shutdown or a delete, not
    /// by a signal, as in Go's guest (and abandoned on its own, see `StdioRedial`).
    private var initStdioRedial: StdioRedial?
    private var processes: [pid_t: GuestProcess] = [:]
    private var prepared: PreparedInitIO?
    private var processCounter = 0
    /// Set when DeleteContainerState begins: a start or exec that was waiting (dialling the
    /// host's stdio) must not go on in a container that is going away.
    private var deleted = false

    /// The init's stdio made at Create (the ports arrive only with the start request).
    enum PreparedInitIO {
        case pipes(stdin: OwnedFDBox, stdout: OwnedFDBox, stderr: OwnedFDBox)
        case terminal(OwnedFDBox)
    }

    init(id: String, bundle: String, scratchDirectory: String = "", runDirectory: String, spec: JSONValue, runc: Runc, reaper: Reaper,
         loop: EventLoop, logger: Logger, activityID: String, execStdio: AgentConfiguration.ExecStdio = .relay,
         userFromName: Bool = false, teeLog: TeeLog.Location? = nil) {
        self.execStdio = execStdio
        self.teeLog = teeLog
        self.userFromName = userFromName
        self.id = id
        self.bundle = bundle
        self.scratchDirectory = scratchDirectory
        self.runDirectory = runDirectory
        self.spec = spec
        self.runc = runc
        self.reaper = reaper
        self.loop = loop
        self.logger = logger
        self.activityID = activityID
    }

    /// The spec named its user: execs that name none run as the user it resolved to.
    let userFromName: Bool
    /// Where the init's output is also written (hcsshim's tee log); execs' is not, as in Go.
    let teeLog: TeeLog.Location?

    /// How exec'd processes without a terminal get their stdio (AgentConfiguration.execStdio).
    let execStdio: AgentConfiguration.ExecStdio

    var usesTerminal: Bool { spec["process"]?["terminal"] == .bool(true) }

    /// `runc create` with the init's stdio prepared (pipes, or a pty through the console socket).
    func create() async throws {
        try makeDirectory(runDirectory, mode: 0o700)
        let files = try processFiles(console: usesTerminal)
        if usesTerminal {
            let (pid, master) = try await ConsoleSocket.receivingMaster(path: files.consoleSocket!, loop: loop) {
                try await runc.create(id: id, bundle: bundle, files: files, stdio: [nil, nil, nil])
            }
            initPID = pid
            do { prepared = .terminal(try master.get()) } catch {
                await undoCreate()
                throw error
            }
        } else {
            let stdin = try BoxedPipe(), stdout = try BoxedPipe(), stderr = try BoxedPipe()
            initPID = try await runc.create(id: id, bundle: bundle, files: files,
                                            stdio: [stdin.read.rawValue, stdout.write.rawValue, stderr.write.rawValue])
            // The init holds its ends now (the other ends close with the boxes); keep ours.
            prepared = .pipes(stdin: stdin.write, stdout: stdout.read, stderr: stderr.read)
        }
        do {
            try finishProcessFiles(files, pid: initPID)
            try writeFile("\(runDirectory)/initpid", Array("\(initPID)".utf8))
        } catch {
            await undoCreate()
            throw error
        }
    }

    /// After `runc create` succeeded and a later step failed: the container must not stay
    /// behind in runc's state (its init blocked, its cgroup made) with nobody knowing of it.
    private func undoCreate() async {
        do { try await runc.delete(id: id, force: true) } catch {
            logger.warning("runc delete after a failed create", metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    /// An exec runc started whose set-up then failed: not left running untracked.
    private func killUntracked(_ pid: pid_t) {
        guard reaper.killUnclaimed(pid) else { return }
        logger.warning("exec set-up failed after runc started the process: killed", metadata: ["id": "\(id)", "pid": "\(pid)"])
    }

    /// Starts the init (ExecuteProcess without OciProcess): wires stdio, `runc start`. Its
    /// stdout and stderr are re-dialled through `redial` when the host's end goes away (see
    /// `initStdioRedial` for what ends that).
    func startInit(_ connections: StdioConnections, ports: VsockStdioRelaySettings, redial: StdioRedial,
                   onExit: @escaping @Sendable (ContainerNotification) async -> Void) async throws -> pid_t {
        guard !deleted else {
            connections.closeAll()
            throw BridgeError(.systemNotFound, "container \(id) was deleted")
        }
        guard status == .created, let prepared else {
            connections.closeAll()
            throw BridgeError(.invalidState, "container \(id) is already started")
        }
        // Opened before anything is taken: a start that fails here can be asked again.
        let tee: TeeFile?
        do { tee = try openTeeLog() } catch { connections.closeAll(); throw error }
        self.prepared = nil
        let io: ProcessIO
        do {
            switch prepared {
            case .terminal(let master):
                io = try ProcessIO.terminal(connections, master: master.take(), loop: loop, redial: redial.dialer(port: ports.stdOut),
                                            tee: tee)
            case .pipes(let stdin, let stdout, let stderr):
                io = ProcessIO.pipes(connections,
                                     stdinWrite: try AsyncFD(stdin.take(), loop: loop),
                                     stdoutRead: try AsyncFD(stdout.take(), loop: loop),
                                     stderrRead: try AsyncFD(stderr.take(), loop: loop),
                                     redial: (redial.dialer(port: ports.stdOut), redial.dialer(port: ports.stdErr)), tee: tee)
            }
            initStdioRedial = redial
        } catch {
            connections.closeAll()  // the host's listeners are not left connected to nothing
            throw error
        }
        let process = GuestProcess(pid: initPID, arguments: Self.arguments(of: spec["process"]), io: io,
                                   signalledCode: { 128 + UInt32($0) })
        initProcess = process
        // Strong: the monitor keeps the container until the init's exit is handled and its
        // notification sent (or dropped by a delete; a container whose init is never waited for
        // and never deleted keeps it, as Go's guest keeps its waiting goroutine).
        // Without a pid namespace of its own, the container's other processes would outlive
        // the init (and hold its output open): kill them, as the namespace's end would
        // (guest-behaviour §7.4).
        let killOthers: (@Sendable () async -> Void)? = Self.ownsPidNamespace(spec) ? nil : { @Sendable [runc, id, logger] in
            do { try await runc.kill(id: id, signal: SIGKILL, all: true) } catch {
                logger.info("runc kill --all after the init's exit", metadata: ["id": "\(id)", "error": "\(error)"])
            }
        }
        // The notification goes out once the host has been told the init's exit code, as Go's
        // guest does (§7.6): hcsshim's shim, told of the container's exit first, kills the init
        // or records exit code 1 for it.
        await process.start(reaper: reaper, loop: loop, onReaped: killOthers, onExit: { [id, logger, tee] code in
            // The output is drained by now: the tee log has all of it, or says why not.
            if let error = tee?.error {
                logger.warning("container output not all copied to its tee log", metadata: ["id": "\(id)", "error": "\(error)"])
            }
            tee?.close()
            let notification = await self.initExited()
            logger.debug("container init exited; notification waits for the exit code to be answered",
                         metadata: ["id": "\(id)", "code": "\(code)"])
            // A container deleted before anyone asked for its exit gets no notification (Go's
            // guest never sends one then, and hcsshim's host fails the bridge on a notification
            // for a container it has closed).
            guard await process.exitAnswered() else {
                logger.debug("no exit notification: the container was deleted", metadata: ["id": "\(id)"])
                return
            }
            await onExit(notification)
        })
        do {
            try await runc.start(id: id, log: "\(bundle)/runc.log")
        } catch {
            // guest-behaviour §7.3: the host's connections close on a failed start. The init,
            // still blocked in runc's exec FIFO, is killed; its reaping ends the monitor.
            _ = try? await runc.kill(id: id, signal: SIGKILL)
            process.abortIO()
            removeTree(runDirectory)
            throw error
        }
        // The init may already have exited and been reported while `runc start` ran.
        if status == .created { status = .running }
        return initPID
    }

    private func initExited() -> ContainerNotification {
        status = .stopped
        var base = RequestBase(containerId: id)
        base.activityId = activityID
        return ContainerNotification(base: base, type: exitType.rawValue)
    }

    /// `runc exec` of an OCI process (ExecuteProcess with OciProcess), into a running container
    /// or a created one (its namespaces exist; runc execs there, as for Go's guest). A stopped
    /// container is E_FAIL with runc's own words, what Go's guest answers after `runc exec`.
    func exec(process ociProcess: JSONValue, connections: StdioConnections) async throws -> pid_t {
        guard !deleted, status != .stopped else {
            connections.closeAll()
            throw deleted ? BridgeError(.systemNotFound, "container \(id) was deleted")
                          : BridgeError(.fail, "container \(id): cannot exec in a stopped container")
        }
        let terminal = ociProcess["terminal"] == .bool(true)
        let pid: pid_t
        let io: ProcessIO
        // Set once runc has started the process: a later failure must not leave it running untracked.
        var launched: pid_t?
        // The process's directory under the run directory, once made: removed if the exec fails.
        var processDirectory: String?
        do {
            var ociProcess = ociProcess
            try inheritFromContainer(&ociProcess)
            let files = try processFiles(console: terminal)
            let directory = files.pidFile.deletingLastComponent
            processDirectory = directory
            let processPath = "\(directory)/process.json"
            try writeFile(processPath, Array(try ContainerPreparation.specEncoder().encode(ociProcess)))
            if terminal {
                let (started, master) = try await ConsoleSocket.receivingMaster(path: files.consoleSocket!, loop: loop) {
                    try await runc.exec(id: id, processJSON: processPath, files: files, stdio: [nil, nil, nil])
                }
                pid = started
                launched = pid
                io = try ProcessIO.terminal(connections, master: try master.get().take(), loop: loop)
            } else if execStdio == .passThrough {
                // The process holds the host's connections itself; streams not asked for are /dev/null.
                pid = try await runc.exec(id: id, processJSON: processPath, files: files, stdio: try connections.handOff())
                launched = pid
                connections.closeAll()
                io = ProcessIO.direct(StdioConnections())
            } else {
                // Streams the host did not ask for are /dev/null for exec'd processes.
                let stdin = connections.stdin != nil ? try BoxedPipe() : nil
                let stdout = connections.stdout != nil ? try BoxedPipe() : nil
                let stderr = connections.stderr != nil ? try BoxedPipe() : nil
                pid = try await runc.exec(id: id, processJSON: processPath, files: files,
                                          stdio: [stdin?.read.rawValue, stdout?.write.rawValue, stderr?.write.rawValue])
                launched = pid
                io = ProcessIO.pipes(connections,
                                     stdinWrite: try stdin.map { try AsyncFD($0.write.take(), loop: loop) },
                                     stdoutRead: try stdout.map { try AsyncFD($0.read.take(), loop: loop) },
                                     stderrRead: try stderr.map { try AsyncFD($0.read.take(), loop: loop) })
            }
            processDirectory = try finishProcessFiles(files, pid: pid)
            // Deleted while runc ran: runc delete --force has killed the container's processes,
            // or will not see this one; either way it must not join a container that is gone.
            if deleted { throw BridgeError(.systemNotFound, "container \(id) was deleted") }
        } catch {
            // Whichever step failed: the host's connections close (closing twice is harmless),
            // and a process runc started is not left running untracked.
            connections.closeAll()
            if let launched { killUntracked(launched) }
            if let processDirectory { removeTree(processDirectory) }
            throw error
        }
        let process = GuestProcess(pid: pid, arguments: Self.arguments(of: ociProcess), io: io, signalledCode: { 128 + UInt32($0) })
        processes[pid] = process
        await process.start(reaper: reaper, loop: loop)
        return pid
    }

    /// What an exec takes from its container (§7.3): the container's resource limits, as the Go
    /// guest copies them; its user, its own `username` resolved against the container's rootfs,
    /// or, when it names none and the container's spec named one, the container's resolved user.
    private func inheritFromContainer(_ process: inout JSONValue) throws {
        if let limits = spec["process"]?["rlimits"] { process.setMember(["rlimits"], limits) } else { process.removeMember("rlimits") }
        if try UserResolution.apply(to: &process, rootfs: ContainerPreparation.rootfsPath(spec, bundle: bundle)) { return }
        if userFromName, let uid = spec["process"]?["user"]?["uid"], let gid = spec["process"]?["user"]?["gid"] {
            process.setMember(["user", "uid"], uid)
            process.setMember(["user", "gid"], gid)
        }
    }

    /// The process `pid` of this container (init or exec), or ERROR_NOT_FOUND.
    func process(_ pid: UInt32) throws -> GuestProcess {
        if pid == UInt32(initPID), let initProcess { return initProcess }
        if let key = pid_t(exactly: pid), let process = processes[key] { return process }
        throw BridgeError(.notFound, "process \(pid) not found in container \(id)")
    }

    /// Takes back an exited process `forget` dropped, whose exit code the host has not been
    /// told after all (its answer found no connection), unless its pid is in use again.
    func remember(_ process: GuestProcess) {
        if !deleted, processes[process.pid] == nil { processes[process.pid] = process }
    }

    /// Drops an exec'd process whose exit was waited for, and its directory
    /// (`<run directory>/<pid>`): a later wait or signal for the pid is ERROR_NOT_FOUND. The
    /// init stays until the container is deleted; a record that is not `process` any more (the
    /// pid was reused by a newer exec) stays.
    func forget(_ process: GuestProcess) {
        guard process.pid != initPID, let known = processes[process.pid], known === process else { return }
        processes.removeValue(forKey: process.pid)
        removeTree("\(runDirectory)/\(process.pid)")
    }

    /// SignalProcess; SIGTERM/SIGKILL to the init set the exit type the notification reports.
    /// A signal leaves the init's stdio re-dial running, as in Go's guest (whose
    /// `containerProcess.Kill` does not stop it; a shutdown and a delete do): kubelet stops a
    /// pod with a SIGTERM here, and an init still shutting down gracefully through a live
    /// migration must get its output to the host, not an EPIPE. A host that has stopped
    /// listening for good while its bridge is up is handled by the re-dial's grace.
    func signal(pid: UInt32, signal: Int32) throws {
        let target = try process(pid)
        try target.signal(signal)
        if pid == UInt32(initPID) {
            if signal == SIGTERM { exitType = .graceful } else if signal == SIGKILL { exitType = .forced }
        }
    }

    /// ShutdownGraceful / ShutdownForced: `runc kill` with SIGTERM or SIGKILL; does not wait.
    /// The exit type is set before the kill: the init can exit, and its notification go out,
    /// while `runc kill` is still running (this actor is free during the await). A kill that
    /// fails puts the previous type back; an init already reaped (it exited on its own and its
    /// output is still draining) keeps its type.
    func shutdown(forced: Bool) async throws {
        // As Go's guest: the host that shuts it down reads no more. Also when `runc kill` fails
        // (the init has exited already, its output perhaps held by a re-dial).
        defer { initStdioRedial?.stop() }
        let previous = exitType, requested: ContainerExitType = forced ? .forced : .graceful
        if initProcess?.reaped.load(ordering: .acquiring) != true { exitType = requested }
        do {
            try await runc.kill(id: id, signal: forced ? SIGKILL : SIGTERM)
        } catch {
            if exitType == requested && status != .stopped { exitType = previous }
            throw error
        }
    }

    /// DeleteContainerState (§7.11 steps 5 and 7): `runc delete`, then the agent's run
    /// directory, the scratch directory and the bundle, removed off the loop thread. Throws the
    /// first failure (step 9), e.g. a mount still inside the bundle; the container is
    /// forgotten all the same.
    func delete() async throws {
        deleted = true
        initStdioRedial?.stop()
        initProcess?.abandonExitAnswer()
        var firstError: (any Error)?
        // Forced once the init's start has begun: `runc start` may be running right now, and
        // an unforced delete refuses a container that is running.
        let force = status == .running || (status == .created && initProcess != nil)
        do { try await runc.delete(id: id, force: force) } catch { firstError = error }
        processes.removeAll()
        if let removal = await removeTreeOffLoop([runDirectory, scratchDirectory, bundle]) {
            firstError = firstError ?? removal
        }
        if let firstError { throw firstError }
    }

    /// The container's pids (GetProperties ProcessList): runc's list of its cgroup, and the
    /// exec'd processes not yet reaped that it lacks (§7.9: an exited process leaves its cgroup
    /// before its parent has reaped it).
    func processList() async throws -> [Int64] {
        var pids = try await runc.processes(id: id)
        let listed = Set(pids)
        for pid in processes.keys.sorted() where !listed.contains(Int64(pid)) {
            if processes[pid]?.reaped.load(ordering: .acquiring) == false { pids.append(Int64(pid)) }
        }
        return pids
    }

    /// Lines for DumpStacks.
    func describe() async -> String {
        var text = "container \(id) \(status.rawValue) init=\(initPID) exit-type=\(exitType.rawValue) bundle=\(bundle)"
        if let initProcess { text += "\n" + initProcess.describe() }
        for process in processes.values.sorted(by: { $0.pid < $1.pid }) { text += "\n" + process.describe() }
        return text
    }

    // MARK: Files

    private func processFiles(console: Bool) throws -> Runc.ProcessFiles {
        processCounter += 1
        let directory = "\(runDirectory)/new-\(processCounter)"
        try makeDirectory(directory, mode: 0o700)
        return Runc.ProcessFiles(log: "\(bundle)/runc.log", pidFile: "\(directory)/pid",
                                 consoleSocket: console ? "\(directory)/master.sock" : nil)
    }
}
