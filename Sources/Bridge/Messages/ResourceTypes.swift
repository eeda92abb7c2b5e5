/// Settings of each ModifySettings resource type (§8.10), with the host's exact field names and
/// `omitempty` rules so that absent keys mean zero (SCSI controller 0 / LUN 0, VPMem device 0).

/// `MappedVirtualDisk`: a SCSI disk to mount (or, with `BlockDev`, to symlink).
public struct MappedVirtualDisk: Codable, Sendable, Hashable {
    public var mountPath = ""
    public var lun: UInt8 = 0
    public var controller: UInt8 = 0
    public var partition: UInt64 = 0
    public var readOnly = false
    public var encrypted = false
    public var options: [String] = []
    public var blockDev = false
    public var verityInfo: JSONValue?
    public var ensureFilesystem = false
    public var filesystem = ""

    public init() {}

    enum CodingKeys: String, CodingKey {
        case mountPath = "MountPath", lun = "Lun", controller = "Controller", partition = "Partition"
        case readOnly = "ReadOnly", encrypted = "Encrypted", options = "Options", blockDev = "BlockDev"
        case verityInfo = "VerityInfo", ensureFilesystem = "EnsureFilesystem", filesystem = "Filesystem"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mountPath = try c.go(.mountPath, "")
        lun = try c.go(.lun, 0)
        controller = try c.go(.controller, 0)
        partition = try c.go(.partition, 0)
        readOnly = try c.go(.readOnly, false)
        encrypted = try c.go(.encrypted, false)
        options = try c.go(.options, [])
        blockDev = try c.go(.blockDev, false)
        verityInfo = try c.goOptional(.verityInfo)
        ensureFilesystem = try c.go(.ensureFilesystem, false)
        filesystem = try c.go(.filesystem, "")
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(mountPath, .mountPath)
        try c.omitEmpty(lun, .lun)
        try c.omitEmpty(controller, .controller)
        try c.omitEmpty(partition, .partition)
        try c.omitEmpty(readOnly, .readOnly)
        try c.omitEmpty(encrypted, .encrypted)
        try c.omitEmpty(options, .options)
        try c.omitEmpty(blockDev, .blockDev)
        try c.omitNil(verityInfo, .verityInfo)
        try c.omitEmpty(ensureFilesystem, .ensureFilesystem)
        try c.omitEmpty(filesystem, .filesystem)
    }
}

/// `SCSIDevice`: guest-side unplug (Remove only).
public struct SCSIDevice: Codable, Sendable, Hashable {
    public var controller: UInt8 = 0
    public var lun: UInt8 = 0

    public init(controller: UInt8 = 0, lun: UInt8 = 0) {
        self.controller = controller
        self.lun = lun
    }

    enum CodingKeys: String, CodingKey { case controller = "Controller", lun = "Lun" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        controller = try c.go(.controller, 0)
        lun = try c.go(.lun, 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(controller, .controller)
        try c.omitEmpty(lun, .lun)
    }
}

/// `VPMemDevice`: a read-only layer on a virtual persistent-memory device, whole or packed.
public struct MappedVPMemDevice: Codable, Sendable, Hashable {
    public var deviceNumber: UInt32 = 0
    public var mountPath = ""
    public var mappingInfo: VPMemMappingInfo?
    public var verityInfo: JSONValue?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case deviceNumber = "DeviceNumber", mountPath = "MountPath", mappingInfo = "MappingInfo", verityInfo = "VerityInfo"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        deviceNumber = try c.go(.deviceNumber, 0)
        mountPath = try c.go(.mountPath, "")
        mappingInfo = try c.goOptional(.mappingInfo)
        verityInfo = try c.goOptional(.verityInfo)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(deviceNumber, .deviceNumber)
        try c.omitEmpty(mountPath, .mountPath)
        try c.omitNil(mappingInfo, .mappingInfo)
        try c.omitNil(verityInfo, .verityInfo)
    }
}

/// The byte range of a packed VPMem layer.
public struct VPMemMappingInfo: Codable, Sendable, Hashable {
    public var deviceOffsetInBytes: UInt64 = 0
    public var deviceSizeInBytes: UInt64 = 0

    public init(deviceOffsetInBytes: UInt64 = 0, deviceSizeInBytes: UInt64 = 0) {
        self.deviceOffsetInBytes = deviceOffsetInBytes
        self.deviceSizeInBytes = deviceSizeInBytes
    }

    enum CodingKeys: String, CodingKey { case deviceOffsetInBytes = "DeviceOffsetInBytes", deviceSizeInBytes = "DeviceSizeInBytes" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        deviceOffsetInBytes = try c.go(.deviceOffsetInBytes, 0)
        deviceSizeInBytes = try c.go(.deviceSizeInBytes, 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(deviceOffsetInBytes, .deviceOffsetInBytes)
        try c.omitEmpty(deviceSizeInBytes, .deviceSizeInBytes)
    }
}

/// `CombinedLayers`: the overlay root filesystem. Note the key `ContainerID` (capital D).
public struct CombinedLayers: Codable, Sendable, Hashable {
    public var containerID = ""
    public var containerRootPath = ""
    public var layers: [Layer] = []
    public var scratchPath = ""

    public init() {}

    /// One lower layer; only `Path` is used by the guest.
    public struct Layer: Codable, Sendable, Hashable {
        public var id = ""
        public var path = ""
        public var pathType = ""
        public var cache = ""

        public init(path: String) { self.path = path }

        enum CodingKeys: String, CodingKey { case id = "Id", path = "Path", pathType = "PathType", cache = "Cache" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.go(.id, "")
            path = try c.go(.path, "")
            pathType = try c.go(.pathType, "")
            cache = try c.go(.cache, "")
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.omitEmpty(id, .id)
            try c.omitEmpty(path, .path)
            try c.omitEmpty(pathType, .pathType)
            try c.omitEmpty(cache, .cache)
        }
    }

    enum CodingKeys: String, CodingKey {
        case containerID = "ContainerID", containerRootPath = "ContainerRootPath", layers = "Layers", scratchPath = "ScratchPath"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        containerID = try c.go(.containerID, "")
        containerRootPath = try c.go(.containerRootPath, "")
        layers = try c.go(.layers, [])
        scratchPath = try c.go(.scratchPath, "")
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(containerID, .containerID)
        try c.omitEmpty(containerRootPath, .containerRootPath)
        try c.omitEmpty(layers, .layers)
        try c.omitEmpty(scratchPath, .scratchPath)
    }
}

/// `MappedDirectory`: a Plan9 share from the host.
public struct MappedDirectory: Codable, Sendable, Hashable {
    public var mountPath = ""
    public var port: Int32 = 0
    public var shareName = ""
    public var readOnly = false

    public init() {}

    enum CodingKeys: String, CodingKey { case mountPath = "MountPath", port = "Port", shareName = "ShareName", readOnly = "ReadOnly" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mountPath = try c.go(.mountPath, "")
        port = try c.go(.port, 0)
        shareName = try c.go(.shareName, "")
        readOnly = try c.go(.readOnly, false)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(mountPath, .mountPath)
        try c.omitEmpty(port, .port)
        try c.omitEmpty(shareName, .shareName)
        try c.omitEmpty(readOnly, .readOnly)
    }
}

/// `ContainerConstraints`: new OCI `LinuxResources` for a container (passed to runc update).
/// `Windows` is always present in what the host sends (a Go struct).
public struct ContainerConstraints: Codable, Sendable, Hashable {
    public var windows: JSONValue = .emptyObject
    public var linux: JSONValue = .emptyObject

    public init(windows: JSONValue = .emptyObject, linux: JSONValue = .emptyObject) {
        self.windows = windows
        self.linux = linux
    }

    enum CodingKeys: String, CodingKey { case windows = "Windows", linux = "Linux" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        windows = try c.go(.windows, .emptyObject)
        linux = try c.go(.linux, .emptyObject)
        // Go decodes it into runtime-spec's LinuxResources: a field of the wrong type is invalid JSON.
        try OCIShape.linuxResources.check(linux, path: "LinuxResources", codingPath: c.codingPath + [CodingKeys.linux])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(windows, forKey: .windows)
        try c.encode(linux, forKey: .linux)
    }
}

/// `VPCIDevice`: wait for an assigned PCI device to appear.
public struct MappedVPCIDevice: Codable, Sendable, Hashable {
    public var vmBusGUID = ""
    public init(vmBusGUID: String = "") { self.vmBusGUID = vmBusGUID }
    enum CodingKeys: String, CodingKey { case vmBusGUID = "VMBusGUID" }
    public init(from decoder: any Decoder) throws {
        vmBusGUID = try decoder.container(keyedBy: CodingKeys.self).go(.vmBusGUID, "")
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(vmBusGUID, .vmBusGUID)
    }
}

/// `SecurityPolicy` (confidential UVMs).
public struct ConfidentialOptions: Codable, Sendable, Hashable {
    public var enforcerType = ""
    public var encodedSecurityPolicy = ""
    public var encodedUVMReference = ""
    public var encodedUVMHashEnvelopeReference = ""

    public init() {}

    enum CodingKeys: String, CodingKey {
        case enforcerType = "EnforcerType", encodedSecurityPolicy = "EncodedSecurityPolicy"
        case encodedUVMReference = "EncodedUVMReference", encodedUVMHashEnvelopeReference = "EncodedUVMHashEnvelopeReference"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enforcerType = try c.go(.enforcerType, "")
        encodedSecurityPolicy = try c.go(.encodedSecurityPolicy, "")
        encodedUVMReference = try c.go(.encodedUVMReference, "")
        encodedUVMHashEnvelopeReference = try c.go(.encodedUVMHashEnvelopeReference, "")
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(enforcerType, .enforcerType)
        try c.omitEmpty(encodedSecurityPolicy, .encodedSecurityPolicy)
        try c.omitEmpty(encodedUVMReference, .encodedUVMReference)
        try c.omitEmpty(encodedUVMHashEnvelopeReference, .encodedUVMHashEnvelopeReference)
    }
}

/// `SecurityPolicyFragment` (confidential UVMs).
public struct SecurityPolicyFragment: Codable, Sendable, Hashable {
    public var fragment = ""
    public var mediaType = ""

    public init(fragment: String = "", mediaType: String = "") {
        self.fragment = fragment
        self.mediaType = mediaType
    }

    enum CodingKeys: String, CodingKey { case fragment = "Fragment", mediaType = "MediaType" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        fragment = try c.go(.fragment, "")
        mediaType = try c.go(.mediaType, "")
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(fragment, .fragment)
        try c.omitEmpty(mediaType, .mediaType)
    }
}
