/// Direct (parser/writer) coding of the process messages, the bridge's hot path. Each mirrors
/// the type's `Codable` implementation in ProcessMessages.swift; GoldenTests check both agree.

extension ExecuteProcessRequest: DirectJSONDecodable, DirectJSONEncodable {
    public init(json: JSONValue) throws {
        base = try RequestBase(json: json)
        let f = try JSONFields(json, what: "ExecuteProcess")
        settings = try f.value("Settings").map(ExecuteProcessSettings.init(json:)) ?? ExecuteProcessSettings()
    }

    public var jsonValue: JSONValue { base.jsonValue.appending([("Settings", settings.jsonValue)]) }
}

extension ExecuteProcessSettings {
    init(json: JSONValue) throws {
        let f = try JSONFields(json, what: "Settings")
        processParameters = try f.string("ProcessParameters")
        vsockStdioRelaySettings = try f.value("VsockStdioRelaySettings").map(VsockStdioRelaySettings.init(json:)) ?? VsockStdioRelaySettings()
        stdioRelaySettings = f.value("StdioRelaySettings")
    }

    var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("ProcessParameters", .string(processParameters))]
        if let stdioRelaySettings { members.append(("StdioRelaySettings", stdioRelaySettings)) }
        members.append(("VsockStdioRelaySettings", vsockStdioRelaySettings.jsonValue))
        return .object(members)
    }
}

extension VsockStdioRelaySettings {
    init(json: JSONValue) throws {
        let f = try JSONFields(json, what: "VsockStdioRelaySettings")
        stdIn = try f.uint32("StdIn")
        stdOut = try f.uint32("StdOut")
        stdErr = try f.uint32("StdErr")
    }

    var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if stdIn != 0 { members.append(("StdIn", .int(Int64(stdIn)))) }
        if stdOut != 0 { members.append(("StdOut", .int(Int64(stdOut)))) }
        if stdErr != 0 { members.append(("StdErr", .int(Int64(stdErr)))) }
        return .object(members)
    }
}

extension ProcessParameters: DirectJSONEncodable {
    /// The document the host embeds in `Settings.ProcessParameters` (omit-empty fields left
    /// out; `Environment` in key order, as Go writes maps).
    public var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if !commandLine.isEmpty { members.append(("CommandLine", .string(commandLine))) }
        if !commandArgs.isEmpty { members.append(("CommandArgs", .array(commandArgs.map { .string($0) }))) }
        if !workingDirectory.isEmpty { members.append(("WorkingDirectory", .string(workingDirectory))) }
        if !environment.isEmpty {
            members.append(("Environment", .object(environment.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        for (key, flag) in [("EmulateConsole", emulateConsole), ("CreateStdInPipe", createStdInPipe), ("CreateStdOutPipe", createStdOutPipe),
                            ("CreateStdErrPipe", createStdErrPipe), ("CreateInUtilityVM", createInUtilityVM)] where flag {
            members.append((key, .bool(true)))
        }
        if let ociProcess { members.append(("OciProcess", ociProcess)) }
        return .object(members)
    }
}

extension ExecuteProcessResponse: DirectJSONDecodable, DirectJSONEncodable {
    public init(json: JSONValue) throws {
        base = try ResponseBase(json: json)
        processId = try JSONFields(json, what: "response").uint32("ProcessId")
    }

    public var jsonValue: JSONValue { base.jsonValue.appending([("ProcessId", .int(Int64(processId)))]) }
}

extension WaitForProcessRequest: DirectJSONDecodable, DirectJSONEncodable {
    public init(json: JSONValue) throws {
        base = try RequestBase(json: json)
        let f = try JSONFields(json, what: "WaitForProcess")
        processId = try f.uint32("ProcessId")
        timeoutInMs = try f.uint32("TimeoutInMs")
    }

    public var jsonValue: JSONValue {
        base.jsonValue.appending([("ProcessId", .int(Int64(processId))), ("TimeoutInMs", .int(Int64(timeoutInMs)))])
    }
}

extension WaitForProcessResponse: DirectJSONDecodable, DirectJSONEncodable {
    public init(json: JSONValue) throws {
        base = try ResponseBase(json: json)
        exitCode = try JSONFields(json, what: "response").uint32("ExitCode")
    }

    public var jsonValue: JSONValue { base.jsonValue.appending([("ExitCode", .int(Int64(exitCode)))]) }
}

extension SignalProcessRequest: DirectJSONDecodable, DirectJSONEncodable {
    public init(json: JSONValue) throws {
        base = try RequestBase(json: json)
        let f = try JSONFields(json, what: "SignalProcess")
        processId = try f.uint32("ProcessId")
        options = try f.value("Options").map { SignalProcessOptions(signal: try JSONFields($0, what: "Options").int32("Signal")) }
    }

    public var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("ProcessId", .int(Int64(processId)))]
        if let options { members.append(("Options", .object(options.signal == 0 ? [] : [("Signal", .int(Int64(options.signal)))]))) }
        return base.jsonValue.appending(members)
    }
}

extension ResizeConsoleRequest: DirectJSONDecodable, DirectJSONEncodable {
    public init(json: JSONValue) throws {
        base = try RequestBase(json: json)
        let f = try JSONFields(json, what: "ResizeConsole")
        processId = try f.uint32("ProcessId")
        height = try f.integer("Height")
        width = try f.integer("Width")
    }

    public var jsonValue: JSONValue {
        base.jsonValue.appending([("ProcessId", .int(Int64(processId))), ("Height", .int(Int64(height))), ("Width", .int(Int64(width)))])
    }
}
