/// `Network` ModifySettings: a NIC to configure inside an HNS namespace's network namespace
/// (§8.10). Its own file because it is the largest settings shape.
public struct NetworkAdapter: Codable, Sendable, Hashable {
    public var namespaceID = ""
    public var id = ""
    public var macAddress = ""
    public var dnsSuffix = ""
    public var dnsServerList = ""
    public var encapOverhead: UInt16 = 0
    public var vpciAssigned = false
    public var ipConfigs: [IPConfig] = []
    public var routes: [Route] = []
    public var policyBasedRouting = false
    public var enableLowMetric = false

    public init() {}

    /// A static address.
    public struct IPConfig: Codable, Sendable, Hashable {
        public var ipAddress = ""
        public var prefixLength: UInt8 = 0

        public init(ipAddress: String, prefixLength: UInt8) {
            self.ipAddress = ipAddress
            self.prefixLength = prefixLength
        }

        enum CodingKeys: String, CodingKey { case ipAddress = "IPAddress", prefixLength = "PrefixLength" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            ipAddress = try c.go(.ipAddress, "")
            prefixLength = try c.go(.prefixLength, 0)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.omitEmpty(ipAddress, .ipAddress)
            try c.omitEmpty(prefixLength, .prefixLength)
        }
    }

    /// A route.
    public struct Route: Codable, Sendable, Hashable {
        public var nextHop = ""
        public var destinationPrefix = ""
        public var metric: UInt16 = 0

        public init(nextHop: String, destinationPrefix: String, metric: UInt16 = 0) {
            self.nextHop = nextHop
            self.destinationPrefix = destinationPrefix
            self.metric = metric
        }

        enum CodingKeys: String, CodingKey { case nextHop = "NextHop", destinationPrefix = "DestinationPrefix", metric = "Metric" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            nextHop = try c.go(.nextHop, "")
            destinationPrefix = try c.go(.destinationPrefix, "")
            metric = try c.go(.metric, 0)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.omitEmpty(nextHop, .nextHop)
            try c.omitEmpty(destinationPrefix, .destinationPrefix)
            try c.omitEmpty(metric, .metric)
        }
    }

    enum CodingKeys: String, CodingKey {
        case namespaceID = "NamespaceID", id = "ID", macAddress = "MacAddress", dnsSuffix = "DNSSuffix"
        case dnsServerList = "DNSServerList", encapOverhead = "EncapOverhead", vpciAssigned = "VPCIAssigned"
        case ipConfigs = "IPConfigs", routes = "Routes", policyBasedRouting = "PolicyBasedRouting"
        case enableLowMetric = "EnableLowMetric"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        namespaceID = try c.go(.namespaceID, "")
        id = try c.go(.id, "")
        macAddress = try c.go(.macAddress, "")
        dnsSuffix = try c.go(.dnsSuffix, "")
        dnsServerList = try c.go(.dnsServerList, "")
        encapOverhead = try c.go(.encapOverhead, 0)
        vpciAssigned = try c.go(.vpciAssigned, false)
        ipConfigs = try c.go(.ipConfigs, [])
        routes = try c.go(.routes, [])
        policyBasedRouting = try c.go(.policyBasedRouting, false)
        enableLowMetric = try c.go(.enableLowMetric, false)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.omitEmpty(namespaceID, .namespaceID)
        try c.omitEmpty(id, .id)
        try c.omitEmpty(macAddress, .macAddress)
        try c.omitEmpty(dnsSuffix, .dnsSuffix)
        try c.omitEmpty(dnsServerList, .dnsServerList)
        try c.omitEmpty(encapOverhead, .encapOverhead)
        try c.omitEmpty(vpciAssigned, .vpciAssigned)
        try c.omitEmpty(ipConfigs, .ipConfigs)
        try c.omitEmpty(routes, .routes)
        try c.omitEmpty(policyBasedRouting, .policyBasedRouting)
        try c.omitEmpty(enableLowMetric, .enableLowMetric)
    }
}
