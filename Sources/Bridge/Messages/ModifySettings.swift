/// `ModifySettings` (§8.10): add/remove/update a UVM resource (disks, layers, shares, NICs,
/// policy) or a container's resource limits. `Request` is a nested object whose `Settings`
/// shape depends on `ResourceType`.
public struct ModifySettingsRequest: BridgeRequest, Hashable {
    public typealias Response = EmptyResponse
    public static let identifier = MessageIdentifier.modifySettings
    public var base: RequestBase
    public var request: ModificationRequest

    public init(base: RequestBase, request: ModificationRequest) {
        self.base = base
        self.request = request
    }

    enum CodingKeys: String, CodingKey { case request = "Request" }

    /// An absent or `null` `Request` does not decode (0xC037010D), as in Go's guest, which
    /// unmarshals the envelope from `Request`'s raw bytes: there are none.
    public init(from decoder: any Decoder) throws {
        base = try RequestBase(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard c.contains(.request), try !c.decodeNil(forKey: .request) else {
            throw DecodingError.valueNotFound(ModificationRequest.self, DecodingError.Context(
                codingPath: c.codingPath + [CodingKeys.request], debugDescription: "ModifySettings has no Request"))
        }
        request = try c.decode(ModificationRequest.self, forKey: .request)
    }

    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(request, forKey: .request)
    }

    /// Rejects what the Go guest rejects before acting: an unknown `ResourceType` (E_FAIL,
    /// `invalid ResourceType '<x>'`).
    public func validate() throws(BridgeError) {
        if case .unknown = request.settings {
            throw BridgeError(.fail, "invalid ResourceType '\(request.resourceType)'")
        }
    }
}

/// The modification envelope: `RequestType`, `ResourceType`, `Settings` (host key order).
public struct ModificationRequest: Codable, Sendable, Hashable {
    /// As sent; "" means "Add" (see `effectiveRequestType`).
    public var requestType: String
    public var resourceType: String
    public var settings: ResourceSettings

    public init(requestType: String = "", resourceType: String = "", settings: ResourceSettings = .unknown(nil)) {
        self.requestType = requestType
        self.resourceType = resourceType
        self.settings = settings
    }

    /// `requestType`, with absent/empty meaning "Add" as the guest interprets it.
    public var effectiveRequestType: String { requestType.isEmpty ? "Add" : requestType }

    enum CodingKeys: String, CodingKey { case requestType = "RequestType", resourceType = "ResourceType", settings = "Settings" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requestType = try c.go(.requestType, "")
        resourceType = try c.go(.resourceType, "")
        settings = try ResourceSettings.decode(resourceType: resourceType, from: c, key: .settings)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(requestType, .requestType)
        try c.omitEmpty(resourceType, .resourceType)
        try settings.encode(into: &c, key: .settings)
    }
}

/// `Settings` decoded by `ResourceType`. Unknown resource types keep their raw settings so
/// the request still decodes and the error can be reported with the right HRESULT.
public enum ResourceSettings: Sendable, Hashable {
    case mappedVirtualDisk(MappedVirtualDisk)
    case scsiDevice(SCSIDevice)
    case vpmemDevice(MappedVPMemDevice)
    case combinedLayers(CombinedLayers)
    case mappedDirectory(MappedDirectory)
    case network(NetworkAdapter)
    case containerConstraints(ContainerConstraints)
    case podCgroupMemoryLimit
    case vpciDevice(MappedVPCIDevice)
    case securityPolicy(ConfidentialOptions)
    case securityPolicyFragment(SecurityPolicyFragment)
    /// A resource type this guest does not know; the raw settings, if any.
    case unknown(JSONValue?)

    static func decode<K: CodingKey>(resourceType: String, from c: KeyedDecodingContainer<K>, key: K) throws -> ResourceSettings {
        func settings<T: Decodable>(_ type: T.Type, _ fallback: @autoclosure () -> T) throws -> T {
            // Go decodes `Settings` into a json.RawMessage behind an interface, then that into
            // the type. No `Settings`, or `null` (which sets the interface to nil and leaves the
            // raw message empty), is "unexpected end of JSON input": no `runc update` with nothing.
            guard c.contains(key), try !c.decodeNil(forKey: key) else {
                throw DecodingError.valueNotFound(T.self, .init(codingPath: c.codingPath + [key],
                                                                debugDescription: "no Settings for \(resourceType): unexpected end of JSON input"))
            }
            return try c.go(key, fallback())
        }
        switch resourceType {
        case "MappedVirtualDisk": return .mappedVirtualDisk(try settings(MappedVirtualDisk.self, MappedVirtualDisk()))
        case "SCSIDevice": return .scsiDevice(try settings(SCSIDevice.self, SCSIDevice()))
        case "VPMemDevice": return .vpmemDevice(try settings(MappedVPMemDevice.self, MappedVPMemDevice()))
        case "CombinedLayers": return .combinedLayers(try settings(CombinedLayers.self, CombinedLayers()))
        case "MappedDirectory": return .mappedDirectory(try settings(MappedDirectory.self, MappedDirectory()))
        case "Network": return .network(try settings(NetworkAdapter.self, NetworkAdapter()))
        case "ContainerConstraints": return .containerConstraints(try settings(ContainerConstraints.self, ContainerConstraints()))
        case "PodCgroupMemoryLimit": return .podCgroupMemoryLimit
        case "VPCIDevice": return .vpciDevice(try settings(MappedVPCIDevice.self, MappedVPCIDevice()))
        case "SecurityPolicy": return .securityPolicy(try settings(ConfidentialOptions.self, ConfidentialOptions()))
        case "SecurityPolicyFragment": return .securityPolicyFragment(try settings(SecurityPolicyFragment.self, SecurityPolicyFragment()))
        default:
            return .unknown(try c.goOptional(key, as: JSONValue.self))
        }
    }

    func encode<K: CodingKey>(into c: inout KeyedEncodingContainer<K>, key: K) throws {
        switch self {
        case .podCgroupMemoryLimit: break
        case .mappedVirtualDisk(let s): try c.encode(s, forKey: key)
        case .scsiDevice(let s): try c.encode(s, forKey: key)
        case .vpmemDevice(let s): try c.encode(s, forKey: key)
        case .combinedLayers(let s): try c.encode(s, forKey: key)
        case .mappedDirectory(let s): try c.encode(s, forKey: key)
        case .network(let s): try c.encode(s, forKey: key)
        case .containerConstraints(let s): try c.encode(s, forKey: key)
        case .vpciDevice(let s): try c.encode(s, forKey: key)
        case .securityPolicy(let s): try c.encode(s, forKey: key)
        case .securityPolicyFragment(let s): try c.encode(s, forKey: key)
        case .unknown(let raw): try c.omitNil(raw, key)
        }
    }
}
