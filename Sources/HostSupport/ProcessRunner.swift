import Bridge
import EventLoop
import FoundationEssentials

/// What a process run through the bridge produced.
public struct ProcessResult: Sendable {
    public var pid: UInt32
    public var exitCode: UInt32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs processes through a `LocalGuest` the way hcsshim's shim does: listen on stdio ports,
/// ExecuteProcess, accept the guest's dials, pump the streams, WaitForProcess.
extension LocalGuest {
    /// Where a process runs.
    public enum Target: Sendable {
        /// Directly in the VM (the null GUID).
        case utilityVM
        /// A container's init (ExecuteProcess without OciProcess) — the spec gave its args.
        case containerInit(String)
        /// An exec in a running container.
        case exec(String, JSONValue)
    }

    /// Starts a process; returns its pid and the host ends of its stdio.
    public func start(_ target: Target, args: [String] = [], stdin: Bool = false, stdout: Bool = true, stderr: Bool = true,
                      terminal: Bool = false, environment: [String: String] = [:]) async throws -> (pid: UInt32, stdio: HostStdio) {
        let listeners = try stdioListeners(stdin: stdin, stdout: stdout, stderr: stderr && !terminal)
        defer { listeners.close() }
        var parameters = ProcessParameters()
        parameters.createStdInPipe = stdin
        parameters.createStdOutPipe = stdout
        parameters.createStdErrPipe = stderr && !terminal
        parameters.emulateConsole = terminal
        let containerID: String
        switch target {
        case .utilityVM:
            containerID = uvmContainerID
            parameters.commandArgs = args
            parameters.environment = environment.isEmpty ? ["PATH": "/usr/bin:/bin"] : environment
        case .containerInit(let id):
            containerID = id
        case .exec(let id, let process):
            containerID = id
            parameters.ociProcess = process
        }
        let request = listeners.executeProcess(in: containerID, parameters)
        if listeners.stdin == nil && listeners.stdout == nil && listeners.stderr == nil {
            return (try await client.send(request).processId, HostStdio(stdin: nil, stdout: nil, stderr: nil))
        }
        async let inConn = listeners.stdin?.listener.accept()
        async let outConn = listeners.stdout?.listener.accept()
        async let errConn = listeners.stderr?.listener.accept()
        let response: ExecuteProcessResponse
        do {
            response = try await client.send(request)
        } catch {
            listeners.close()
            _ = try? await (inConn, outConn, errConn)
            throw error
        }
        let stdio = HostStdio(stdin: try await inConn, stdout: try await outConn, stderr: try await errConn)
        return (response.processId, stdio)
    }

    /// Runs a process to completion: writes `input` (then EOF) to its stdin, collects its output.
    public func run(_ target: Target, args: [String] = [], input: [UInt8]? = nil, terminal: Bool = false,
                    environment: [String: String] = [:]) async throws -> ProcessResult {
        let (pid, stdio) = try await start(target, args: args, stdin: input != nil, terminal: terminal, environment: environment)
        let containerID: String
        switch target {
        case .utilityVM: containerID = uvmContainerID
        case .containerInit(let id), .exec(let id, _): containerID = id
        }
        async let exit = client.send(WaitForProcessRequest(base: RequestBase(containerId: containerID), processId: pid))
        if let input, let conn = stdio.stdin {
            try await conn.writeAll(input)
            try conn.shutdownWrite()
        }
        async let out = stdio.stdout?.readToEnd() ?? []
        async let err = stdio.stderr?.readToEnd() ?? []
        let (stdout, stderr) = try await (out, err)
        stdio.close()  // the guest waits for this (clean-close handshake) before reporting the exit
        let code = try await exit.exitCode
        return ProcessResult(pid: pid, exitCode: code, stdout: stdout, stderr: stderr)
    }

    /// Creates a container from `spec` with its bundle under the work directory (or at `bundle`),
    /// and `scratch` as its ScratchDirPath.
    public func createContainer(id: String, spec: JSONValue, bundle: String? = nil, scratch: String = "") async throws {
        let settings = ContainerSettings(ociBundlePath: bundle ?? "\(workDirectory)/bundles/\(id)", ociSpecification: spec, scratchDirPath: scratch)
        _ = try await client.send(try CreateContainerRequest(base: RequestBase(containerId: id), settings: settings))
    }
}

/// The host ends of one process's stdio connections.
public struct HostStdio: Sendable {
    public let stdin: AsyncFD?
    public let stdout: AsyncFD?
    public let stderr: AsyncFD?

    public func close() {
        stdin?.close()
        stdout?.close()
        stderr?.close()
    }
}
