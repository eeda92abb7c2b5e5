/// `Create` (§8.2): the container configuration travels as a JSON document inside a string.
public struct CreateContainerRequest: BridgeRequest, Hashable {
    public typealias Response = CreateContainerResponse
    public static let identifier = MessageIdentifier.create
    public var base: RequestBase
    /// The embedded `VMHostedContainerSettingsV2` document, verbatim.
    public var containerConfig: String

    public init(base: RequestBase, containerConfig: String) {
        self.base = base
        self.containerConfig = containerConfig
    }

    /// Builds the request from typed settings (host side).
    public init(base: RequestBase, settings: ContainerSettings) throws {
        self.init(base: base, containerConfig: settings.jsonValue.serialized())
    }

    enum CodingKeys: String, CodingKey { case containerConfig = "ContainerConfig" }

    public init(from decoder: any Decoder) throws {
        base = try RequestBase(from: decoder)
        containerConfig = try decoder.container(keyedBy: CodingKeys.self).go(.containerConfig, "")
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(containerConfig, forKey: .containerConfig)
    }

    /// Decodes and validates the embedded settings: invalid JSON or a schema below 2.1 is
    /// `0xC037010D`; an OCI spec without `process`, `root` or `linux` is rejected with
    /// E_INVALIDARG (the Go guest dereferences them unchecked and crashes).
    public func settings() throws(BridgeError) -> ContainerSettings {
        let settings: ContainerSettings
        do {
            settings = try ContainerSettings(json: JSONValueParser.parse(containerConfig))
        } catch {
            throw .invalidJSON("ContainerConfig", error)
        }
        if settings.schemaVersion < SchemaVersion(major: 2, minor: 1) {
            throw BridgeError(.invalidJSON, "invalid schema version: {\(settings.schemaVersion.major) \(settings.schemaVersion.minor)}")
        }
        // A value of the wrong type is a decode failure in Go's guest (E_INVALIDJSON); a missing
        // one, an invalid argument (Go's guest crashes on it).
        guard let spec = settings.ociSpecification, !spec.isNull else {
            throw BridgeError(.invalidArgument, "ContainerConfig has no OciSpecification")
        }
        guard spec.isObject else {
            throw BridgeError(.invalidJSON, "failed to unmarshal JSON in ContainerConfig: OciSpecification is not an object")
        }
        let fields = ["process", "root", "linux"]
        if let field = fields.first(where: { spec[$0].map { !$0.isNull && !$0.isObject } ?? false }) {
            throw BridgeError(.invalidJSON, "failed to unmarshal JSON in ContainerConfig: OciSpecification.\(field) is not an object")
        }
        if let field = fields.first(where: { spec[$0]?.isNull ?? true }) {
            throw BridgeError(.invalidArgument, "OciSpecification.\(field) is missing")
        }
        do {
            try OCIShape.spec.check(spec, path: "Spec")
        } catch {
            throw .invalidJSON("ContainerConfig", error)
        }
        return settings
    }
}

/// The embedded `ContainerConfig` document (`VMHostedContainerSettingsV2`). The OCI spec is
/// kept as a lossless JSON value: the guest rewrites a few fields and hands the rest to runc.
public struct ContainerSettings: Codable, Sendable, Hashable {
    public var schemaVersion: SchemaVersion
    public var ociBundlePath: String
    public var ociSpecification: JSONValue?
    public var scratchDirPath: String

    public init(schemaVersion: SchemaVersion = SchemaVersion(major: 2, minor: 1), ociBundlePath: String,
                ociSpecification: JSONValue?, scratchDirPath: String) {
        self.schemaVersion = schemaVersion
        self.ociBundlePath = ociBundlePath
        self.ociSpecification = ociSpecification
        self.scratchDirPath = scratchDirPath
    }

    /// From a parsed document (the fast path for the embedded string).
    public init(json: JSONValue) throws {
        let f = try JSONFields(json, what: "ContainerConfig")
        let version = try JSONFields(f.value("SchemaVersion") ?? .null, what: "SchemaVersion")
        schemaVersion = SchemaVersion(major: try version.uint32("Major"), minor: try version.uint32("Minor"))
        ociBundlePath = try f.string("OciBundlePath")
        ociSpecification = f.value("OciSpecification")
        scratchDirPath = try f.string("ScratchDirPath")
    }

    /// The document as a JSON value (Go's field order and omitempty rules).
    public var jsonValue: JSONValue {
        var version: [(key: String, value: JSONValue)] = []
        if schemaVersion.major != 0 { version.append(("Major", .int(Int64(schemaVersion.major)))) }
        if schemaVersion.minor != 0 { version.append(("Minor", .int(Int64(schemaVersion.minor)))) }
        var members: [(key: String, value: JSONValue)] = [("SchemaVersion", .object(version))]
        if !ociBundlePath.isEmpty { members.append(("OciBundlePath", .string(ociBundlePath))) }
        if let ociSpecification { members.append(("OciSpecification", ociSpecification)) }
        members.append(("ScratchDirPath", .string(scratchDirPath)))
        return .object(members)
    }

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "SchemaVersion", ociBundlePath = "OciBundlePath"
        case ociSpecification = "OciSpecification", scratchDirPath = "ScratchDirPath"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try c.go(.schemaVersion, SchemaVersion(major: 0, minor: 0))
        ociBundlePath = try c.go(.ociBundlePath, "")
        let spec = try c.goOptional(.ociSpecification, as: JSONValue.self)
        ociSpecification = spec?.isNull == true ? nil : spec
        scratchDirPath = try c.go(.scratchDirPath, "")
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.omitEmpty(ociBundlePath, .ociBundlePath)
        try c.omitNil(ociSpecification, .ociSpecification)
        try c.encode(scratchDirPath, forKey: .scratchDirPath)
    }
}

/// The Create answer. `SelectedProtocolVersion` is always emitted (as 0).
public struct CreateContainerResponse: BridgeResponse, Hashable {
    public var base: ResponseBase
    public var selectedVersion: String
    public var selectedProtocolVersion: UInt32

    public init(base: ResponseBase = ResponseBase(), selectedVersion: String = "", selectedProtocolVersion: UInt32 = 0) {
        self.base = base
        self.selectedVersion = selectedVersion
        self.selectedProtocolVersion = selectedProtocolVersion
    }

    enum CodingKeys: String, CodingKey { case selectedVersion = "SelectedVersion", selectedProtocolVersion = "SelectedProtocolVersion" }

    public init(from decoder: any Decoder) throws {
        base = try ResponseBase(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        selectedVersion = try c.go(.selectedVersion, "")
        selectedProtocolVersion = try c.go(.selectedProtocolVersion, 0)
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(selectedVersion, .selectedVersion)
        try c.encode(selectedProtocolVersion, forKey: .selectedProtocolVersion)
    }
}

/// `Start` (§8.1): a no-op for Linux containers.
public struct StartContainerRequest: BaseOnlyRequest, Hashable {
    public typealias Response = EmptyResponse
    public static let identifier = MessageIdentifier.start
    public var base: RequestBase
    public init(base: RequestBase) { self.base = base }
}

/// `ShutdownGraceful` (§8.3): SIGTERM to the container init; UVM ID = power off, no answer.
public struct ShutdownGracefulRequest: BaseOnlyRequest, Hashable {
    public typealias Response = EmptyResponse
    public static let identifier = MessageIdentifier.shutdownGraceful
    public var base: RequestBase
    public init(base: RequestBase) { self.base = base }
}

/// `ShutdownForced` (§8.3): SIGKILL to the container init; UVM ID = power off, no answer.
public struct ShutdownForcedRequest: BaseOnlyRequest, Hashable {
    public typealias Response = EmptyResponse
    public static let identifier = MessageIdentifier.shutdownForced
    public var base: RequestBase
    public init(base: RequestBase) { self.base = base }
}

/// `DeleteContainerState` (§8.11).
public struct DeleteContainerStateRequest: BaseOnlyRequest, Hashable {
    public typealias Response = EmptyResponse
    public static let identifier = MessageIdentifier.deleteContainerState
    public var base: RequestBase
    public init(base: RequestBase) { self.base = base }
}

/// `UpdateContainer` (§8.12): defined by the host, not implemented by Linux guests (E_NOTIMPL).
/// Here so tests and tools can send it.
public struct UpdateContainerRequest: BaseOnlyRequest, Hashable {
    public typealias Response = EmptyResponse
    public static let identifier = MessageIdentifier.updateContainer
    public var base: RequestBase
    public init(base: RequestBase) { self.base = base }
}

/// `DumpStacks` (§8.8).
public struct DumpStacksRequest: BaseOnlyRequest, Hashable {
    public typealias Response = DumpStacksResponse
    public static let identifier = MessageIdentifier.dumpStacks
    public var base: RequestBase
    public init(base: RequestBase) { self.base = base }
}

/// The stack dump: free-form text, cut to fit the host's 64 KiB message limit.
public struct DumpStacksResponse: BridgeResponse, Hashable {
    public var base: ResponseBase
    public var guestStacks: String

    public init(base: ResponseBase = ResponseBase(), guestStacks: String = "") {
        self.base = base
        self.guestStacks = guestStacks
    }

    enum CodingKeys: String, CodingKey { case guestStacks = "GuestStacks" }

    public init(from decoder: any Decoder) throws {
        base = try ResponseBase(from: decoder)
        guestStacks = try decoder.container(keyedBy: CodingKeys.self).go(.guestStacks, "")
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(guestStacks, forKey: .guestStacks)
    }

    public func shrunk(by excess: Int) -> DumpStacksResponse {
        var copy = self
        copy.guestStacks = TextBudget.truncate(guestStacks, toEncodedBytes: TextBudget.encodedCount(guestStacks) - excess)
        return copy
    }
}

/// The container exit notification (`0x30100101`, §9), sent with header ID 0.
public struct ContainerNotification: Codable, Sendable, Hashable {
    public var base: RequestBase
    /// `UnexpectedExit`, `GracefulExit` or `ForcedExit` from the Linux guest.
    public var type: String
    /// Always `None` from the Linux guest.
    public var operation: String
    public var result: HResult
    /// Omitted when empty; if present the host requires it to contain valid JSON.
    public var resultInfo: String

    public init(base: RequestBase, type: String = "UnexpectedExit", operation: String = "None",
                result: HResult = .ok, resultInfo: String = "") {
        self.base = base
        self.type = type
        self.operation = operation
        self.result = result
        self.resultInfo = resultInfo
    }

    enum CodingKeys: String, CodingKey {
        case type = "Type", operation = "Operation", result = "Result", resultInfo = "ResultInfo"
    }

    public init(from decoder: any Decoder) throws {
        base = try RequestBase(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.go(.type, "")
        operation = try c.go(.operation, "")
        result = try c.go(.result, .ok)
        resultInfo = try c.go(.resultInfo, "")
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encode(operation, forKey: .operation)
        try c.encode(result, forKey: .result)
        try c.omitEmpty(resultInfo, .resultInfo)
    }
}
