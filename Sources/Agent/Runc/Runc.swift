import Bridge
import EventLoop
import Glibc
import Logging

/// Drives runc, the OCI runtime, for container lifecycle (guest-behaviour §10). Every call
/// spawns runc without blocking the loop (posix_spawn; the exit comes from the agent's single
/// `Reaper`), collects its stdout and stderr through the loop, and maps failures to HRESULTs.
public struct Runc: Sendable {
    /// The runc binary.
    public var binary: String
    /// runc's state root (`--root`); nil uses runc's default (/run/runc).
    public var root: String?
    let reaper: Reaper
    let loop: EventLoop

    public init(binary: String = "/usr/sbin/runc", root: String? = nil, reaper: Reaper, loop: EventLoop = .shared) {
        self.binary = binary
        self.root = root
        self.reaper = reaper
        self.loop = loop
    }

    /// What one runc run produced.
    struct Output {
        var status: ExitStatus
        var stdout: [UInt8]
        var stderr: String
    }

    /// Where a create or exec puts runc's log, pid file and console socket.
    public struct ProcessFiles: Sendable {
        public var log: String
        public var pidFile: String
        public var consoleSocket: String?
    }

    private func globalArguments(log: String?) -> [String] {
        var args = ["runc"]
        if let root { args += ["--root", root] }
        if let log { args += ["--log", log, "--log-format", "json"] }
        return args
    }

    /// `runc create`: the container's init is started (stopped before the user process) with
    /// `stdio` as its fds 0-2 (nil: /dev/null; ignored with a console socket). Returns its pid.
    public func create(id: String, bundle: String, files: ProcessFiles, stdio: [Int32?]) async throws -> pid_t {
        var args = globalArguments(log: files.log) + ["create", "-b", bundle, "--no-pivot", "--pid-file", files.pidFile]
        if let socket = files.consoleSocket { args += ["--console-socket", socket] }
        args.append(id)
        try await runChecked(args, stdio: stdio, log: files.log, captureStderr: false)
        do { return try readPID(files.pidFile) } catch {
            // runc made the container: without its pid nobody could manage it, so it goes.
            try? await delete(id: id, force: true)
            throw error
        }
    }

    /// `runc start`: runs the user process of a created container.
    public func start(id: String, log: String) async throws {
        try await runChecked(globalArguments(log: log) + ["start", id], stdio: [nil, nil, nil], log: log)
    }

    /// `runc exec -d`: starts `processJSON` (an OCI process) in the container; returns its pid.
    public func exec(id: String, processJSON: String, files: ProcessFiles, stdio: [Int32?]) async throws -> pid_t {
        var args = globalArguments(log: files.log) + ["exec", "-d", "--process", processJSON, "--pid-file", files.pidFile]
        if let socket = files.consoleSocket { args += ["--console-socket", socket] }
        args.append(id)
        try await runChecked(args, stdio: stdio, log: files.log, captureStderr: false)
        return try readPID(files.pidFile)
    }

    /// `runc kill [--all] <id> <signal>`.
    public func kill(id: String, signal: Int32, all: Bool = false) async throws {
        var args = globalArguments(log: nil) + ["kill"]
        if all { args.append("--all") }
        args += [id, String(signal)]
        try await runChecked(args, stdio: [nil, nil, nil], log: nil)
    }

    /// `runc delete [--force] <id>`.
    public func delete(id: String, force: Bool = false) async throws {
        var args = globalArguments(log: nil) + ["delete"]
        if force { args.append("--force") }
        args.append(id)
        try await runChecked(args, stdio: [nil, nil, nil], log: nil)
    }

    /// `runc ps -f json <id>`: the pids of the container's processes.
    public func processes(id: String) async throws -> [Int64] {
        let output = try await runChecked(globalArguments(log: nil) + ["ps", "-f", "json", id], stdio: [nil, nil, nil], log: nil, captureStdout: true)
        return Self.parsePIDArray(output.stdout)
    }

    /// `runc update --resources - <id>` with `resources` (OCI LinuxResources JSON) on stdin.
    public func update(id: String, resources: [UInt8]) async throws {
        let pipe = try Pipes.make(nonBlocking: false)
        let input = try AsyncFD(pipe.second, loop: loop)
        let readEnd = pipe.first
        async let written: Void = { try await input.writeAll(resources); input.close() }()
        let args = globalArguments(log: nil) + ["update", "--resources", "-", id]
        let result: Result<Output, any Error>
        do { result = .success(try await run(args, stdio: [readEnd.rawValue, nil, nil], captureStdout: false, captureStderr: true)) } catch { result = .failure(error) }
        readEnd.close()
        try? await written
        try check(try result.get(), log: nil)
    }

    // MARK: Running runc

    @discardableResult
    private func runChecked(_ args: [String], stdio: [Int32?], log: String?, captureStdout: Bool = false,
                            captureStderr: Bool = true) async throws -> Output {
        // The log is the container's, shared by all its invocations (§10): only what this one
        // appended explains its failure, not an older error or a concurrent exec's.
        var logStart = stat()
        let appendedFrom = log.map { stat($0, &logStart) == 0 ? logStart.st_size : 0 } ?? 0
        let output = try await run(args, stdio: stdio, captureStdout: captureStdout, captureStderr: captureStderr)
        try check(output, log: log, from: appendedFrom)
        return output
    }

    private func check(_ output: Output, log: String?, from offset: off_t = 0) throws {
        guard output.status != .exited(0) else { return }
        let logText = log.flatMap { try? readFile($0, from: offset) }
        let message = RuncErrorMapping.message(log: logText, stderr: output.stderr)
        throw BridgeError(RuncErrorMapping.hresult(for: message), "runc: \(message)")
    }

    /// Spawns runc; stderr and stdout come back through pipes when asked (otherwise stdio as
    /// given). create and exec must not capture: the container process inherits the stdio runc
    /// was given, so a capture pipe would never see EOF; their errors come from `--log`.
    private func run(_ args: [String], stdio: [Int32?], captureStdout: Bool, captureStderr: Bool) async throws -> Output {
        let errPipe = try Pipes.make()
        // The optional stdout pipe is held as raw descriptors: the write end is closed right
        // after the spawn, the read end handed to an AsyncFD.
        var outFDs: (read: Int32, write: Int32)?
        if captureStdout {
            let pipe = try Pipes.make()
            outFDs = (pipe.first.release(), pipe.second.release())
        }
        var fds = stdio
        while fds.count < 3 { fds.append(nil) }
        if captureStderr { fds[2] = errPipe.second.rawValue }
        if let outFDs { fds[1] = outFDs.write }
        let request = SpawnRequest(path: binary, arguments: args, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        let pid: pid_t
        do {
            pid = try Spawn.start(request, stdio: fds)
        } catch {
            if let outFDs { Glibc.close(outFDs.read); Glibc.close(outFDs.write) }
            throw error
        }
        errPipe.second.close()
        if let outFDs { Glibc.close(outFDs.write) }
        // Should watching a pipe fail (epoll out of memory), runc's exit is still claimed: with
        // its pipes' read ends closed it ends at its first write (EPIPE).
        let errReader: AsyncFD
        do {
            errReader = try AsyncFD(errPipe.first, loop: loop)
        } catch {
            if let outFDs { Glibc.close(outFDs.read) }
            _ = await reaper.wait(pid: pid)
            throw error
        }
        let stdoutReader: AsyncFD?
        do {
            stdoutReader = try outFDs.map { try AsyncFD(OwnedFD(adopting: $0.read), loop: loop) }
        } catch {
            errReader.close()
            _ = await reaper.wait(pid: pid)
            throw error
        }
        // Read to the end whatever runc writes: a runc blocked on a full pipe would never exit.
        async let errBytes = errReader.drainToEnd(keepingAtMost: 1 << 20)
        async let outBytes = stdoutReader?.drainToEnd(keepingAtMost: 16 << 20) ?? ([], 0)
        let status = await reaper.wait(pid: pid)
        let (errKept, errDiscarded) = (try? await errBytes) ?? ([], 0)
        let (stdout, outDiscarded) = (try? await outBytes) ?? ([], 0)
        errReader.close()
        stdoutReader?.close()
        var stderr = String(decoding: errKept, as: UTF8.self)
        if errDiscarded > 0 { stderr += " [\(errDiscarded) more bytes not kept]" }
        if outDiscarded > 0 {
            throw BridgeError(.fail, "runc \(args.joined(separator: " ").prefix(200)) wrote more than \(16 << 20) bytes to stdout (\(outDiscarded) not read)")
        }
        return Output(status: status, stdout: stdout, stderr: stderr)
    }

    private func readPID(_ path: String) throws -> pid_t {
        let text = try readFile(path).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = pid_t(text), pid > 0 else {
            throw BridgeError(.fail, "runc wrote an invalid pid file \(path): \(text)")
        }
        return pid
    }

    static func parsePIDArray(_ bytes: [UInt8]) -> [Int64] {
        var pids: [Int64] = []
        var current: Int64?
        for b in bytes {
            if b >= 0x30 && b <= 0x39 {
                current = (current ?? 0) * 10 + Int64(b - 0x30)
            } else if let c = current {
                pids.append(c)
                current = nil
            }
        }
        if let c = current { pids.append(c) }
        return pids
    }
}

/// Reads a small file into a String (control-path helper), from byte `offset` on.
func readFile(_ path: String, from offset: off_t = 0) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SyscallError("open(\(path))", errno: errno) }
    defer { close(fd) }
    if offset > 0, lseek(fd, offset, SEEK_SET) < 0 { throw SyscallError("lseek(\(path))", errno: errno) }
    return try readToEnd(fd, name: path)
}

/// Reads `fd` to its end as text; more than `limit` bytes is an error (EFBIG).
func readToEnd(_ fd: Int32, name: String, limit: Int = .max) throws -> String {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16 << 10)
    while true {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; throw SyscallError("read(\(name))", errno: errno) }
        if n == 0 { break }
        guard bytes.count + n <= limit else { throw SyscallError("\(name): larger than \(limit) bytes", errno: EFBIG) }
        bytes += buffer[..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes `bytes` to `path` (created or truncated, mode `mode`).
func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw SyscallError("open(\(path))", errno: errno) }
    defer { close(fd) }
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 { if errno == EINTR { continue }; throw SyscallError("write(\(path))", errno: errno) }
        offset += n
    }
}
