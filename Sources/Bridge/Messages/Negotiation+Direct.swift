/// Direct (parser/writer) coding of protocol negotiation, mirroring the `Codable` forms in
/// Negotiation.swift. Every connection starts with it, so with this the guest answers
/// negotiation (and then the hot requests) without touching FoundationEssentials' coders:
/// their code stays out of an idle agent's memory.

extension NegotiateProtocolRequest: DirectJSONDecodable, DirectJSONEncodable {
    public init(json: JSONValue) throws {
        base = try RequestBase(json: json)
        let f = try JSONFields(json, what: "NegotiateProtocol")
        minimumVersion = try f.uint32("MinimumVersion")
        maximumVersion = try f.uint32("MaximumVersion")
    }

    public var jsonValue: JSONValue {
        base.jsonValue.appending([("MinimumVersion", .int(Int64(minimumVersion))), ("MaximumVersion", .int(Int64(maximumVersion)))])
    }
}

extension NegotiateProtocolResponse: DirectJSONEncodable {
    public var jsonValue: JSONValue {
        base.jsonValue.appending([("Version", .int(Int64(version))), ("Capabilities", capabilities.jsonValue)])
    }
}

extension GcsCapabilities {
    var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        for (key, flag) in [("SendHostCreateMessage", sendHostCreateMessage), ("SendHostStartMessage", sendHostStartMessage),
                            ("HvSocketConfigOnStartup", hvSocketConfigOnStartup),
                            ("SendLifecycleNotifications", sendLifecycleNotifications),
                            ("ModifyServiceSettingsSupported", modifyServiceSettingsSupported)] where flag {
            members.append((key, .bool(true)))
        }
        if !supportedSchemaVersions.isEmpty {
            members.append(("SupportedSchemaVersions", .array(supportedSchemaVersions.map(\.jsonValue))))
        }
        if !runtimeOsType.isEmpty { members.append(("RuntimeOsType", .string(runtimeOsType))) }
        // A struct in Go: omitempty has no effect, the object is always present.
        members.append(("GuestDefinedCapabilities", guestDefinedCapabilities.jsonValue))
        return .object(members)
    }
}

extension SchemaVersion {
    var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if major != 0 { members.append(("Major", .int(Int64(major)))) }
        if minor != 0 { members.append(("Minor", .int(Int64(minor)))) }
        return .object(members)
    }
}

extension GuestDefinedCapabilities {
    var jsonValue: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        for (key, flag) in [("NamespaceAddRequestSupported", namespaceAddRequestSupported), ("SignalProcessSupported", signalProcessSupported),
                            ("DumpStacksSupported", dumpStacksSupported), ("DeleteContainerStateSupported", deleteContainerStateSupported)]
            where flag {
            members.append((key, .bool(true)))
        }
        return .object(members)
    }
}
