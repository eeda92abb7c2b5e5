import Bridge
import EventLoop
import FoundationEssentials
import Glibc
import Logging
import Synchronization

/// A real `gcs` process on this machine, driven over the Unix-socket transport the way hcsshim
/// drives the agent over vsock: we listen on the bridge port, start gcs, accept its dial and
/// negotiate. Used by the demo, the end-to-end tests and the benchmarks.
public final class LocalGuest: Sendable {
    /// The current bridge connection's client (replaced by `reconnect()`).
    public var client: BridgeClient { connection.withLock { $0.client } }
    private let connection: Mutex<(client: BridgeClient, reader: Task<Void, Never>)>
    public let workDirectory: String
    public let prefix: String
    /// The agent's `--cgroup-parent` (`/swift-gcs-<our pid>-<instance>`).
    public let cgroupParent: String
    public let pid: pid_t
    let loop: EventLoop
    private let nextPort = Atomic<UInt32>(0x4000_0001)
    private let child: ChildProcess

    /// Starts `gcsBinary` with its state under `workDirectory` and negotiates protocol v4.
    /// `configuration`: the host's bridge settings (a traced gcs needs a longer request timeout).
    /// `launcher`: a command that execs gcs as its last arguments (e.g. `prlimit --nofile=…`),
    /// so that gcs keeps its pid; none by default.
    public static func start(gcsBinary: String, workDirectory: String, logLevel: String = "info", extraArguments: [String] = [],
                             launcher: [String] = [],
                             configuration: BridgeClient.Configuration = BridgeClient.Configuration(),
                             loop: EventLoop = .shared, logger: Logger) async throws -> LocalGuest {
        try makeDirectories(workDirectory)
        let instance = instances.add(1, ordering: .relaxed).newValue
        let prefix = try socketDirectory(for: workDirectory, instance: instance) + "/vsock"
        let cgroupParent = "/swift-gcs-\(getpid())-\(instance)"
        let listener = try UnixListener(path: "\(prefix)_\(0x4000_0000)", loop: loop)
        defer { listener.close() }
        // A start that fails leaves no socket directory behind (stop() removes it otherwise).
        var started = false
        defer {
            if !started {
                listener.close()
                _ = unlink("\(prefix)_\(0x4000_0000)")
                removeSocketDirectory(prefix: prefix, workDirectory: workDirectory)
            }
        }
        // No time sync: the local machine is no utility VM (a test may turn it on again).
        let arguments = [gcsBinary, "-loglevel", logLevel, "-logfile", "\(workDirectory)/gcs.log", "-v4", "-disable-time-sync",
                         // Never power off the machine a local host runs on.
                         "--vm-shutdown", "exit",
                         "--transport", "unix:\(prefix)", "--run-directory", "\(workDirectory)/gcsrunc",
                         "--runc-root", "\(workDirectory)/runc", "--cgroup-parent", cgroupParent,
                         "--gcs-cgroup", agentCgroup(beside: cgroupParent)] + extraArguments
        var request = SpawnRequest(path: launcher.first ?? gcsBinary, arguments: launcher + arguments,
                                   environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        request.newSession = true
        let pid = try Spawn.start(request, stdio: [nil, nil, nil])
        let child = try ChildProcess(pid: pid, loop: loop)
        // gcs dials, or exits (a flag it does not know, a failed start): then say why, rather
        // than wait for a connection that cannot come.
        let connection = try await withThrowingTaskGroup(of: AsyncFD?.self) { group in
            group.addTask { try await listener.accept() }
            group.addTask { _ = try await child.wait(); return nil }  // reaps only if gcs ends first
            defer { group.cancelAll() }
            guard let first = try await group.next(), let connection = first else {
                let log = (try? String(decoding: HostFiles.read("\(workDirectory)/gcs.log"), as: UTF8.self)) ?? ""
                throw LocalGuestError(description: "gcs exited before dialling the bridge; its log: \(log.suffix(2000))")
            }
            return connection
        }
        let client = BridgeClient(connection: connection, configuration: configuration, logger: logger)
        let reader = Task(executorPreference: loop) { _ = await client.run() }
        let guest = LocalGuest(client: client, workDirectory: workDirectory, prefix: prefix, cgroupParent: cgroupParent, pid: pid, loop: loop, reader: reader, child: child)
        started = true  // from here on, stopping the guest removes what the start made
        do {
            _ = try await client.send(NegotiateProtocolRequest())
        } catch {
            _ = try? await guest.waitForExit(signal: SIGKILL)  // no gcs left running untracked
            throw error
        }
        return guest
    }

    private init(client: BridgeClient, workDirectory: String, prefix: String, cgroupParent: String, pid: pid_t, loop: EventLoop,
                 reader: Task<Void, Never>, child: ChildProcess) {
        self.connection = Mutex((client, reader))
        self.cgroupParent = cgroupParent
        self.workDirectory = workDirectory
        self.prefix = prefix
        self.pid = pid
        self.loop = loop
        self.child = child
    }

    /// Simulates the host going away and coming back: `whileDisconnected` runs after the old
    /// connection is closed; then the agent's re-dial is accepted and negotiated afresh.
    public func reconnect(logger: Logger, whileDisconnected: () async throws -> Void = {}) async throws {
        let listener = try UnixListener(path: "\(prefix)_\(0x4000_0000)", loop: loop)
        defer { listener.close() }
        let (old, oldReader) = connection.withLock { ($0.client, $0.reader) }
        old.close()
        await oldReader.value
        try await whileDisconnected()
        let socket = try await listener.accept()
        var configuration = BridgeClient.Configuration()
        configuration.adoptedContainers = old.trackedContainers
        configuration.firstID = old.nextID  // the old connection's requests may still be answered (`adopt`)
        let client = BridgeClient(connection: socket, configuration: configuration, logger: logger)
        let reader = Task(executorPreference: loop) { _ = await client.run() }
        connection.withLock { $0 = (client, reader) }
        _ = try await client.send(NegotiateProtocolRequest())
    }

    /// Listens on fresh stdio ports for the streams asked for; the guest dials them.
    public func stdioListeners(stdin: Bool, stdout: Bool, stderr: Bool) throws -> StdioListeners {
        func listen(_ wanted: Bool) throws -> (UInt32, UnixListener)? {
            guard wanted else { return nil }
            let port = nextPort.add(1, ordering: .relaxed).oldValue
            return (port, try UnixListener(path: "\(prefix)_\(port)", loop: loop))
        }
        return StdioListeners(stdin: try listen(stdin), stdout: try listen(stdout), stderr: try listen(stderr))
    }

    /// Stops gcs (SIGTERM) and waits for it; closes the bridge.
    public func stop() async throws -> ExitStatus {
        try await waitForExit(signal: SIGTERM)
    }

    /// Waits for gcs to exit, after sending it `signal` if given (without one: it exits on its
    /// own, as after the host shuts the VM down); closes the bridge and removes what the
    /// guest's start made.
    public func waitForExit(signal: Int32? = nil) async throws -> ExitStatus {
        if let status = exitStatus.withLock({ $0 }) { return status }  // stopped already
        let (client, reader) = connection.withLock { ($0.client, $0.reader) }
        client.close()
        if let signal { try? child.signal(signal) }
        let status = try await child.wait()
        exitStatus.withLock { $0 = status }
        await reader.value
        removeCgroupParents()
        Self.removeSocketDirectory(prefix: prefix, workDirectory: workDirectory)
        return status
    }

    /// Removes the directory of the port sockets (`prefix` is `<directory>/vsock`) when it is
    /// one of its own, not the work directory, with any socket a test's listener left in it.
    static func removeSocketDirectory(prefix: String, workDirectory: String) {
        let sockets = String(prefix.dropLast("/vsock".count))
        if sockets != workDirectory { HostFiles.removeTree(sockets) }
    }

    /// Where the port sockets live: a fresh directory on tmpfs (/dev/shm) when there is one,
    /// since binding and unlinking a socket per stdio stream on a disk filesystem costs an
    /// inode allocation each (the host side of the transport is then as cheap as vsock's);
    /// else `workDirectory`.
    static func socketDirectory(for workDirectory: String, instance: Int) throws -> String {
        var info = stat()
        guard stat("/dev/shm", &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return workDirectory }
        let directory = "/dev/shm/gcs-host-\(getpid())-\(instance)"
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { return workDirectory }
        return directory
    }

    /// Numbers the guests this process starts: each gets its own socket directory and cgroup
    /// parent, so guests running side by side (parallel tests) never share or remove each
    /// other's containers.
    private static let instances = Atomic<Int>(0)
    /// gcs's exit, once waited for (its pidfd is gone then).
    private let exitStatus = Mutex<ExitStatus?>(nil)

    /// The agent's own cgroup (`--gcs-cgroup`): the containers' parent's name with `-agent`.
    public var agentCgroup: String { Self.agentCgroup(beside: cgroupParent) }

    private static func agentCgroup(beside cgroupParent: String) -> String { "\(cgroupParent)-agent" }

    /// The agent was given `--cgroup-parent /swift-gcs-<our pid>-<instance>` and a cgroup of its
    /// own beside it: kill what is still running in them (containers outlive gcs by design, and
    /// a failed test may leave some) and remove the directories from every hierarchy, so runs
    /// leave no trace.
    func removeCgroupParents() {
        for name in [cgroupParent.dropFirst(), agentCgroup.dropFirst()] {
            if access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0 { Self.killAndRemove("/sys/fs/cgroup/\(name)"); continue }
            for controller in Self.entries("/sys/fs/cgroup") where !controller.hasPrefix(".") {
                Self.killAndRemove("/sys/fs/cgroup/\(controller)/\(name)")
            }
        }
    }

    /// SIGKILLs every process in the cgroup tree at `path`, then removes the tree, children
    /// first (a cgroup can go once its processes have exited; they are given up to a second).
    static func killAndRemove(_ path: String) {
        guard access(path, F_OK) == 0 else { return }
        for child in entries(path) {
            var info = stat()
            if stat("\(path)/\(child)", &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { killAndRemove("\(path)/\(child)") }
        }
        if let procs = try? HostFiles.read("\(path)/cgroup.procs") {
            for line in String(decoding: procs, as: UTF8.self).split(separator: "\n") {
                if let pid = pid_t(line) { Glibc.kill(pid, SIGKILL) }
            }
        }
        var attempts = 0
        while rmdir(path) != 0 && errno == EBUSY && attempts < 100 {
            attempts += 1
            usleep(10_000)
        }
    }

    static func entries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Kills gcs at once (tests of an agent that goes away).
    public func kill() { try? child.signal(SIGKILL) }

    /// Reads the agent's log (for test failure messages).
    public func log() -> String {
        (try? String(decoding: HostFiles.read("\(workDirectory)/gcs.log"), as: UTF8.self)) ?? ""
    }

    static func makeDirectories(_ path: String) throws {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST { throw SyscallError("mkdir(\(current))", errno: errno) }
        }
    }
}

/// The host's listening sockets for one process's stdio, by port.
public struct StdioListeners: Sendable {
    public let stdin: (port: UInt32, listener: UnixListener)?
    public let stdout: (port: UInt32, listener: UnixListener)?
    public let stderr: (port: UInt32, listener: UnixListener)?

    /// The `VsockStdioRelaySettings` to send in ExecuteProcess.
    public var settings: VsockStdioRelaySettings {
        VsockStdioRelaySettings(stdIn: stdin?.port ?? 0, stdOut: stdout?.port ?? 0, stdErr: stderr?.port ?? 0)
    }

    /// An ExecuteProcess of `parameters` in container `containerID`, its stdio on these ports.
    public func executeProcess(in containerID: String, _ parameters: ProcessParameters) -> ExecuteProcessRequest {
        ExecuteProcessRequest(base: RequestBase(containerId: containerID),
                              settings: ExecuteProcessSettings(processParameters: BridgeJSON.embed(parameters), vsockStdioRelaySettings: settings))
    }

    public func close() {
        stdin?.listener.close()
        stdout?.listener.close()
        stderr?.listener.close()
    }
}

/// Small-file helpers for the host side (logs, generated bundle files).
public enum HostFiles {
    /// rm -rf, without following symlinks; what cannot be removed is left (cleanup paths).
    public static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { unlink(path); return }
        for name in LocalGuest.entries(path) { removeTree("\(path)/\(name)") }
        rmdir(path)
    }

    /// The whole content of `path`.
    public static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SyscallError("open(\(path))", errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return bytes }
            bytes += buffer[..<n]
        }
    }
}

/// Why a local gcs could not be started.
public struct LocalGuestError: Error, CustomStringConvertible {
    public var description: String
}
