/// `ExecuteProcess` (§8.5): start a container's init, exec into a container, or run a process
/// directly in the utility VM. The parameters travel as a JSON document inside a string.
public struct ExecuteProcessRequest: BridgeRequest, Hashable {
    public typealias Response = ExecuteProcessResponse
    public static let identifier = MessageIdentifier.executeProcess
    public var base: RequestBase
    public var settings: ExecuteProcessSettings

    public init(base: RequestBase, settings: ExecuteProcessSettings) {
        self.base = base
        self.settings = settings
    }

    enum CodingKeys: String, CodingKey { case settings = "Settings" }

    public init(from decoder: any Decoder) throws {
        base = try RequestBase(from: decoder)
        settings = try decoder.container(keyedBy: CodingKeys.self).go(.settings, ExecuteProcessSettings())
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(settings, forKey: .settings)
    }

    /// Whether this runs outside any container (§8.5 dispatch rule 1).
    public func isExternal(_ parameters: ProcessParameters) -> Bool {
        parameters.createInUtilityVM || base.containerId == uvmContainerID
    }

    /// Decodes and validates the embedded parameters: invalid JSON is `0xC037010D`; an
    /// external process whose argv is empty (no `CommandArgs`, and a `CommandLine` that splits
    /// to nothing) is E_INVALIDARG (the Go guest indexes `args[0]` and crashes); so is an
    /// `OciProcess` without `args`.
    public func parameters() throws(BridgeError) -> ProcessParameters {
        var parameters: ProcessParameters
        do {
            parameters = try ProcessParameters(json: JSONValueParser.parse(settings.processParameters))
        } catch {
            throw .invalidJSON("ProcessParameters", error)
        }
        // A value of the wrong type is a decode failure in Go's guest (E_INVALIDJSON), whatever
        // the process's kind; a missing one, an invalid argument.
        if let process = parameters.ociProcess, !process.isNull {
            guard process.isObject else {
                throw BridgeError(.invalidJSON, "failed to unmarshal JSON in ProcessParameters: OciProcess is not an object")
            }
            do {
                try OCIShape.process.check(process, path: "Process")
            } catch {
                throw .invalidJSON("ProcessParameters", error)
            }
        }
        if isExternal(parameters) {
            if parameters.commandArgs.isEmpty {
                guard let words = CommandLineSplitter.split(parameters.commandLine) else {
                    throw BridgeError(.fail, "failed to parse command line string \"\(parameters.commandLine)\": invalid command line string")
                }
                parameters.commandArgs = words
            }
            if parameters.commandArgs.isEmpty {
                throw BridgeError(.invalidArgument, "process has an empty command line")
            }
        } else if let process = parameters.ociProcess {
            guard case .array(let args) = process["args"] ?? .null, !args.isEmpty else {
                throw BridgeError(.invalidArgument, "OciProcess has no args")
            }
        }
        return parameters
    }
}

/// `Settings` of ExecuteProcess.
public struct ExecuteProcessSettings: Codable, Sendable, Hashable {
    /// The embedded `ProcessParameters` document, verbatim.
    public var processParameters: String
    /// Always present toward Linux guests, possibly `{}`.
    public var vsockStdioRelaySettings: VsockStdioRelaySettings
    /// Windows-guest form; passed through if a host sends it.
    public var stdioRelaySettings: JSONValue?

    public init(processParameters: String = "", vsockStdioRelaySettings: VsockStdioRelaySettings = VsockStdioRelaySettings(),
                stdioRelaySettings: JSONValue? = nil) {
        self.processParameters = processParameters
        self.vsockStdioRelaySettings = vsockStdioRelaySettings
        self.stdioRelaySettings = stdioRelaySettings
    }

    enum CodingKeys: String, CodingKey {
        case processParameters = "ProcessParameters", stdioRelaySettings = "StdioRelaySettings"
        case vsockStdioRelaySettings = "VsockStdioRelaySettings"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        processParameters = try c.go(.processParameters, "")
        vsockStdioRelaySettings = try c.go(.vsockStdioRelaySettings, VsockStdioRelaySettings())
        stdioRelaySettings = try c.goOptional(.stdioRelaySettings)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(processParameters, forKey: .processParameters)
        try c.omitNil(stdioRelaySettings, .stdioRelaySettings)
        try c.encode(vsockStdioRelaySettings, forKey: .vsockStdioRelaySettings)
    }
}

/// Host vsock ports for each stdio stream; 0 (omitted) = not provided.
public struct VsockStdioRelaySettings: Codable, Sendable, Hashable {
    public var stdIn: UInt32
    public var stdOut: UInt32
    public var stdErr: UInt32

    public init(stdIn: UInt32 = 0, stdOut: UInt32 = 0, stdErr: UInt32 = 0) {
        self.stdIn = stdIn
        self.stdOut = stdOut
        self.stdErr = stdErr
    }

    enum CodingKeys: String, CodingKey { case stdIn = "StdIn", stdOut = "StdOut", stdErr = "StdErr" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stdIn = try c.go(.stdIn, 0)
        stdOut = try c.go(.stdOut, 0)
        stdErr = try c.go(.stdErr, 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(stdIn, .stdIn)
        try c.omitEmpty(stdOut, .stdOut)
        try c.omitEmpty(stdErr, .stdErr)
    }
}

/// The embedded `ProcessParameters` document: the union of what the host sends and the guest
/// reads. `OciProcess` is an OCI `process` object, kept losslessly.
public struct ProcessParameters: Codable, Sendable, Hashable {
    public var commandLine: String = ""
    public var commandArgs: [String] = []
    public var workingDirectory: String = ""
    public var environment: [String: String] = [:]
    public var emulateConsole = false
    public var createStdInPipe = false
    public var createStdOutPipe = false
    public var createStdErrPipe = false
    public var createInUtilityVM = false
    public var ociProcess: JSONValue?

    public init() {}

    /// From a parsed document (the fast path for the embedded string).
    public init(json: JSONValue) throws {
        let f = try JSONFields(json, what: "ProcessParameters")
        commandLine = try f.string("CommandLine")
        commandArgs = try f.strings("CommandArgs")
        workingDirectory = try f.string("WorkingDirectory")
        environment = try f.stringMap("Environment")
        emulateConsole = try f.bool("EmulateConsole")
        createStdInPipe = try f.bool("CreateStdInPipe")
        createStdOutPipe = try f.bool("CreateStdOutPipe")
        createStdErrPipe = try f.bool("CreateStdErrPipe")
        createInUtilityVM = try f.bool("CreateInUtilityVM")
        ociProcess = f.value("OciProcess")
    }

    enum CodingKeys: String, CodingKey {
        case commandLine = "CommandLine", commandArgs = "CommandArgs", workingDirectory = "WorkingDirectory"
        case environment = "Environment", emulateConsole = "EmulateConsole", createStdInPipe = "CreateStdInPipe"
        case createStdOutPipe = "CreateStdOutPipe", createStdErrPipe = "CreateStdErrPipe"
        case createInUtilityVM = "CreateInUtilityVM", ociProcess = "OciProcess"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        commandLine = try c.go(.commandLine, "")
        commandArgs = try c.go(.commandArgs, [])
        workingDirectory = try c.go(.workingDirectory, "")
        environment = try c.go(.environment, [:])
        emulateConsole = try c.go(.emulateConsole, false)
        createStdInPipe = try c.go(.createStdInPipe, false)
        createStdOutPipe = try c.go(.createStdOutPipe, false)
        createStdErrPipe = try c.go(.createStdErrPipe, false)
        createInUtilityVM = try c.go(.createInUtilityVM, false)
        let process = try c.goOptional(.ociProcess, as: JSONValue.self)
        ociProcess = process?.isNull == true ? nil : process
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(commandLine, .commandLine)
        try c.omitEmpty(commandArgs, .commandArgs)
        try c.omitEmpty(workingDirectory, .workingDirectory)
        try c.omitEmpty(environment, .environment)
        try c.omitEmpty(emulateConsole, .emulateConsole)
        try c.omitEmpty(createStdInPipe, .createStdInPipe)
        try c.omitEmpty(createStdOutPipe, .createStdOutPipe)
        try c.omitEmpty(createStdErrPipe, .createStdErrPipe)
        try c.omitEmpty(createInUtilityVM, .createInUtilityVM)
        try c.omitNil(ociProcess, .ociProcess)
    }
}

/// The pid of the started process.
public struct ExecuteProcessResponse: BridgeResponse, Hashable {
    public var base: ResponseBase
    public var processId: UInt32

    public init(base: ResponseBase = ResponseBase(), processId: UInt32 = 0) {
        self.base = base
        self.processId = processId
    }

    enum CodingKeys: String, CodingKey { case processId = "ProcessId" }

    public init(from decoder: any Decoder) throws {
        base = try ResponseBase(from: decoder)
        processId = try decoder.container(keyedBy: CodingKeys.self).go(.processId, 0)
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(processId, forKey: .processId)
    }
}

/// `WaitForProcess` (§8.4): answered when the process exits or the timeout elapses.
public struct WaitForProcessRequest: BridgeRequest, Hashable {
    public typealias Response = WaitForProcessResponse
    public static let identifier = MessageIdentifier.waitForProcess
    /// `TimeoutInMs` meaning "no timeout".
    public static let infinite: UInt32 = .max
    public var base: RequestBase
    public var processId: UInt32
    public var timeoutInMs: UInt32

    public init(base: RequestBase, processId: UInt32, timeoutInMs: UInt32 = WaitForProcessRequest.infinite) {
        self.base = base
        self.processId = processId
        self.timeoutInMs = timeoutInMs
    }

    enum CodingKeys: String, CodingKey { case processId = "ProcessId", timeoutInMs = "TimeoutInMs" }

    public init(from decoder: any Decoder) throws {
        base = try RequestBase(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        processId = try c.go(.processId, 0)
        timeoutInMs = try c.go(.timeoutInMs, 0)
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(processId, forKey: .processId)
        try c.encode(timeoutInMs, forKey: .timeoutInMs)
    }
}

/// The exit code (uint32: -1 is sent as 4294967295).
public struct WaitForProcessResponse: BridgeResponse, Hashable {
    public var base: ResponseBase
    public var exitCode: UInt32

    public init(base: ResponseBase = ResponseBase(), exitCode: UInt32 = 0) {
        self.base = base
        self.exitCode = exitCode
    }

    enum CodingKeys: String, CodingKey { case exitCode = "ExitCode" }

    public init(from decoder: any Decoder) throws {
        base = try ResponseBase(from: decoder)
        exitCode = try decoder.container(keyedBy: CodingKeys.self).go(.exitCode, 0)
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(exitCode, forKey: .exitCode)
    }
}

/// `SignalProcess` (§8.6). No options, `null`, `{}` or signal 0 all mean SIGKILL.
public struct SignalProcessRequest: BridgeRequest, Hashable {
    public typealias Response = EmptyResponse
    public static let identifier = MessageIdentifier.signalProcess
    public var base: RequestBase
    public var processId: UInt32
    public var options: SignalProcessOptions?

    public init(base: RequestBase, processId: UInt32, options: SignalProcessOptions? = nil) {
        self.base = base
        self.processId = processId
        self.options = options
    }

    /// The signal to deliver.
    public var signal: Int32 {
        let s = options?.signal ?? 0
        return s == 0 ? 9 : s
    }

    enum CodingKeys: String, CodingKey { case processId = "ProcessId", options = "Options" }

    public init(from decoder: any Decoder) throws {
        base = try RequestBase(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        processId = try c.go(.processId, 0)
        options = try c.goOptional(.options)
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(processId, forKey: .processId)
        try c.omitNil(options, .options)
    }
}

/// `{"Signal": n}`, omitempty.
public struct SignalProcessOptions: Codable, Sendable, Hashable {
    public var signal: Int32
    public init(signal: Int32) { self.signal = signal }
    enum CodingKeys: String, CodingKey { case signal = "Signal" }
    public init(from decoder: any Decoder) throws {
        signal = try decoder.container(keyedBy: CodingKeys.self).go(.signal, 0)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(signal, .signal)
    }
}

/// `ResizeConsole` (§8.7).
public struct ResizeConsoleRequest: BridgeRequest, Hashable {
    public typealias Response = EmptyResponse
    public static let identifier = MessageIdentifier.resizeConsole
    public var base: RequestBase
    public var processId: UInt32
    public var height: UInt16
    public var width: UInt16

    public init(base: RequestBase, processId: UInt32, height: UInt16, width: UInt16) {
        self.base = base
        self.processId = processId
        self.height = height
        self.width = width
    }

    enum CodingKeys: String, CodingKey { case processId = "ProcessId", height = "Height", width = "Width" }

    public init(from decoder: any Decoder) throws {
        base = try RequestBase(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        processId = try c.go(.processId, 0)
        height = try c.go(.height, 0)
        width = try c.go(.width, 0)
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(processId, forKey: .processId)
        try c.encode(height, forKey: .height)
        try c.encode(width, forKey: .width)
    }
}
