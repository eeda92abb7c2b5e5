/// `NegotiateProtocol` (§7): the first request on every connection.
public struct NegotiateProtocolRequest: BridgeRequest, Hashable {
    public typealias Response = NegotiateProtocolResponse
    public static let identifier = MessageIdentifier.negotiateProtocol
    public var base: RequestBase
    public var minimumVersion: UInt32
    public var maximumVersion: UInt32

    public init(base: RequestBase = RequestBase(containerId: ""), minimumVersion: UInt32 = 4, maximumVersion: UInt32 = 4) {
        self.base = base
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
    }

    enum CodingKeys: String, CodingKey { case minimumVersion = "MinimumVersion", maximumVersion = "MaximumVersion" }

    public init(from decoder: any Decoder) throws {
        base = try RequestBase(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        minimumVersion = try c.go(.minimumVersion, 0)
        maximumVersion = try c.go(.maximumVersion, 0)
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(minimumVersion, forKey: .minimumVersion)
        try c.encode(maximumVersion, forKey: .maximumVersion)
    }
}

/// The negotiation answer: version 4 and the guest's capabilities.
public struct NegotiateProtocolResponse: BridgeResponse, Hashable {
    public var base: ResponseBase
    public var version: UInt32
    public var capabilities: GcsCapabilities

    public init(base: ResponseBase = ResponseBase(), version: UInt32 = 4, capabilities: GcsCapabilities = GcsCapabilities()) {
        self.base = base
        self.version = version
        self.capabilities = capabilities
    }

    enum CodingKeys: String, CodingKey { case version = "Version", capabilities = "Capabilities" }

    public init(from decoder: any Decoder) throws {
        base = try ResponseBase(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.go(.version, 0)
        capabilities = try c.go(.capabilities, GcsCapabilities(runtimeOsType: "", supportedSchemaVersions: []))
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(capabilities, forKey: .capabilities)
    }
}

/// What the guest tells the host it can do (§7.3). `RuntimeOsType` must be "Linux" and
/// `GuestDefinedCapabilities` must always be present.
public struct GcsCapabilities: Codable, Sendable, Hashable {
    public var sendHostCreateMessage: Bool
    public var sendHostStartMessage: Bool
    public var hvSocketConfigOnStartup: Bool
    /// Host-side only; never emitted by the Linux guest.
    public var sendLifecycleNotifications: Bool
    /// Host-side only; Windows guests.
    public var modifyServiceSettingsSupported: Bool
    public var supportedSchemaVersions: [SchemaVersion]
    public var runtimeOsType: String
    public var guestDefinedCapabilities: GuestDefinedCapabilities

    public init(runtimeOsType: String = "Linux",
                supportedSchemaVersions: [SchemaVersion] = [SchemaVersion(major: 2, minor: 1)],
                guestDefinedCapabilities: GuestDefinedCapabilities = GuestDefinedCapabilities()) {
        sendHostCreateMessage = false
        sendHostStartMessage = false
        hvSocketConfigOnStartup = false
        sendLifecycleNotifications = false
        modifyServiceSettingsSupported = false
        self.supportedSchemaVersions = supportedSchemaVersions
        self.runtimeOsType = runtimeOsType
        self.guestDefinedCapabilities = guestDefinedCapabilities
    }

    enum CodingKeys: String, CodingKey {
        case sendHostCreateMessage = "SendHostCreateMessage", sendHostStartMessage = "SendHostStartMessage"
        case hvSocketConfigOnStartup = "HvSocketConfigOnStartup"
        case sendLifecycleNotifications = "SendLifecycleNotifications"
        case modifyServiceSettingsSupported = "ModifyServiceSettingsSupported"
        case supportedSchemaVersions = "SupportedSchemaVersions", runtimeOsType = "RuntimeOsType"
        case guestDefinedCapabilities = "GuestDefinedCapabilities"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sendHostCreateMessage = try c.go(.sendHostCreateMessage, false)
        sendHostStartMessage = try c.go(.sendHostStartMessage, false)
        hvSocketConfigOnStartup = try c.go(.hvSocketConfigOnStartup, false)
        sendLifecycleNotifications = try c.go(.sendLifecycleNotifications, false)
        modifyServiceSettingsSupported = try c.go(.modifyServiceSettingsSupported, false)
        supportedSchemaVersions = try c.go(.supportedSchemaVersions, [])
        runtimeOsType = try c.go(.runtimeOsType, "")
        guestDefinedCapabilities = try c.go(.guestDefinedCapabilities, GuestDefinedCapabilities.none)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(sendHostCreateMessage, .sendHostCreateMessage)
        try c.omitEmpty(sendHostStartMessage, .sendHostStartMessage)
        try c.omitEmpty(hvSocketConfigOnStartup, .hvSocketConfigOnStartup)
        try c.omitEmpty(sendLifecycleNotifications, .sendLifecycleNotifications)
        try c.omitEmpty(modifyServiceSettingsSupported, .modifyServiceSettingsSupported)
        try c.omitEmpty(supportedSchemaVersions, .supportedSchemaVersions)
        try c.omitEmpty(runtimeOsType, .runtimeOsType)
        // A struct in Go: omitempty has no effect, the object is always present.
        try c.encode(guestDefinedCapabilities, forKey: .guestDefinedCapabilities)
    }
}

/// `{"Major":…,"Minor":…}`, both omitempty.
public struct SchemaVersion: Codable, Sendable, Hashable, Comparable {
    public var major: UInt32
    public var minor: UInt32

    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    enum CodingKeys: String, CodingKey { case major = "Major", minor = "Minor" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        major = try c.go(.major, 0)
        minor = try c.go(.minor, 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(major, .major)
        try c.omitEmpty(minor, .minor)
    }

    public static func < (a: SchemaVersion, b: SchemaVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }
}

/// Linux guest capabilities (§7.3); each flag changes what the host sends, so the agent must
/// report only what it implements.
public struct GuestDefinedCapabilities: Codable, Sendable, Hashable {
    public var namespaceAddRequestSupported: Bool
    public var signalProcessSupported: Bool
    public var dumpStacksSupported: Bool
    public var deleteContainerStateSupported: Bool

    public init(namespaceAddRequestSupported: Bool = true, signalProcessSupported: Bool = true,
                dumpStacksSupported: Bool = true, deleteContainerStateSupported: Bool = true) {
        self.namespaceAddRequestSupported = namespaceAddRequestSupported
        self.signalProcessSupported = signalProcessSupported
        self.dumpStacksSupported = dumpStacksSupported
        self.deleteContainerStateSupported = deleteContainerStateSupported
    }

    /// All flags false (encodes as `{}`).
    public static let none = GuestDefinedCapabilities(namespaceAddRequestSupported: false, signalProcessSupported: false,
                                                      dumpStacksSupported: false, deleteContainerStateSupported: false)

    enum CodingKeys: String, CodingKey {
        case namespaceAddRequestSupported = "NamespaceAddRequestSupported"
        case signalProcessSupported = "SignalProcessSupported"
        case dumpStacksSupported = "DumpStacksSupported"
        case deleteContainerStateSupported = "DeleteContainerStateSupported"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        namespaceAddRequestSupported = try c.go(.namespaceAddRequestSupported, false)
        signalProcessSupported = try c.go(.signalProcessSupported, false)
        dumpStacksSupported = try c.go(.dumpStacksSupported, false)
        deleteContainerStateSupported = try c.go(.deleteContainerStateSupported, false)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(namespaceAddRequestSupported, .namespaceAddRequestSupported)
        try c.omitEmpty(signalProcessSupported, .signalProcessSupported)
        try c.omitEmpty(dumpStacksSupported, .dumpStacksSupported)
        try c.omitEmpty(deleteContainerStateSupported, .deleteContainerStateSupported)
    }
}
