import Bridge
import FoundationEssentials
import Glibc

/// Which of hcsshim's container kinds a Create is for (bridge-protocol §8.2), from the spec's
/// `io.kubernetes.cri.container-type` annotation.
public enum ContainerKind: Sendable, Equatable {
    case sandbox
    case workload(sandboxID: String)
    case standalone

    static let typeAnnotation = "io.kubernetes.cri.container-type"
    static let sandboxAnnotation = "io.kubernetes.cri.sandbox-id"
    /// A virtual pod (several pods in one VM, hcsshim's "virtual pods"): its id, on every
    /// container of the pod.
    static let virtualPodAnnotation = "io.microsoft.cri.virtual-pod-id"

    init(spec: JSONValue, id: String) throws {
        let annotations = spec["annotations"]
        let virtualPod = Self.virtualPod(of: spec)
        // As Go's guest: the container whose id is the virtual pod's is its sandbox, whatever
        // its type says, and the pod's workloads belong to it whatever sandbox id they name.
        if let virtualPod, virtualPod == id {
            self = .sandbox
            return
        }
        switch annotations?[Self.typeAnnotation] {
        case nil, .null?: self = .standalone
        case .string("sandbox")?:
            if let virtualPod {
                throw BridgeError(.fail, "sandbox container \(id) of virtual pod \(virtualPod) must have the pod's id")
            }
            self = .sandbox
        case .string("container")?:
            if let virtualPod {
                self = .workload(sandboxID: virtualPod)
                return
            }
            guard case .string(let sandbox)? = annotations?[Self.sandboxAnnotation], !sandbox.isEmpty else {
                throw BridgeError(.fail, "workload container \(id) has no \(Self.sandboxAnnotation) annotation")
            }
            self = .workload(sandboxID: sandbox)
        case let other?:
            throw BridgeError(.fail, "unsupported \(Self.typeAnnotation) \(other) for container \(id)")
        }
    }

    /// The spec's virtual pod id, if it names one.
    static func virtualPod(of spec: JSONValue) -> String? {
        if case .string(let id)? = spec["annotations"]?[virtualPodAnnotation], !id.isEmpty { return id }
        return nil
    }
}

/// Turns the host's OCI spec into the one runc gets and writes the bundle, per guest-behaviour
/// §7.1 for the three kinds: the sandbox root with `hostname`, `hosts` and `resolv.conf`
/// (sandbox and standalone), their bind mounts into the container (workload and standalone),
/// a sandbox's shared directories and the special mount sources of its workloads
/// (`SandboxMounts`), hcsshim's annotations (`SpecAnnotations`), `linux.cgroupsPath` under the
/// pod, the `windows` section removed.
enum ContainerPreparation {
    struct Prepared {
        var spec: JSONValue
        var kind: ContainerKind
        /// The directory holding hostname/hosts/resolv.conf for the pod (sandbox root).
        var sandboxRoot: String
        /// The spec named its user (`process.user.username`): execs without a name of their
        /// own run as the user it resolved to (§7.3).
        var userFromName = false
        /// Host-network mode: the container (and, for a sandbox, its pod) shares the VM's
        /// network namespace (§7.1 step 14).
        var hostNetwork = false
        /// Where the init's output is also written (`TeeLog`), if the spec asks.
        var teeLog: TeeLog.Location?
    }

    static let hostNetworkAnnotation = "io.microsoft.virtualmachine.lcow.hostnetwork"

    /// The advanced features of guest-behaviour §1.1, §6.5 and §7.1 step 7.9 (P2) that this guest
    /// does not implement, which a spec can ask for: refused with a clear error, so that a pod
    /// asking for a GPU does not start without it. Devices count
    /// where Go's guest reads them: a workload's `windows.devices` of a kind it assigns (`gpu`,
    /// `vpci`, `vpci-instance-id`; it ignores other kinds, and devices of other containers).
    static func unsupportedFeature(in spec: JSONValue, kind: ContainerKind) -> String? {
        if case .workload = kind, case .array(let devices)? = spec["windows"]?["devices"],
           devices.contains(where: { device in
               guard case .string(let type)? = device["idType"] else { return false }
               return ["gpu", "vpci", "vpci-instance-id"].contains(type)
           }) {
            return "windows.devices (GPU and VPCI device assignment)"
        }
        return nil
    }

    /// Where a sandbox or standalone container keeps its pod's files (hostname, hosts,
    /// resolv.conf, the shared directories, logs): its bundle, or for a virtual pod's sandbox
    /// `<bundle's directory>/virtual-pods/<pod id>`, as in Go's guest (the id may not be
    /// absolute nor climb out with `..`).
    static func podRoot(spec: JSONValue, kind: ContainerKind, bundle: String) throws -> String {
        guard kind == .sandbox, let virtualPod = ContainerKind.virtualPod(of: spec) else { return bundle }
        guard !virtualPod.hasPrefix("/"), !virtualPod.contains("..") else {
            throw BridgeError(.fail, "invalid virtual pod ID \(virtualPod): path traversal attempt")
        }
        return cleanPath(bundle.deletingLastComponent + "/virtual-pods/" + virtualPod)
    }

    /// `pod(sandboxID)` gives a registered pod, or nil if there is no such pod.
    static func prepare(spec: JSONValue, id: String, bundle: String, configuration: AgentConfiguration,
                        pod: (String) -> AgentHost.Pod?) throws -> Prepared {
        for section in ["process", "root", "linux"] where spec[section] == nil || spec[section] == .null {
            throw BridgeError(.fail, "container \(id): the OCI spec has no '\(section)' section")
        }
        let kind = try ContainerKind(spec: spec, id: id)
        if let feature = unsupportedFeature(in: spec, kind: kind) {
            throw BridgeError(.fail, "container \(id) asks for \(feature), which this guest does not support yet")
        }
        var rewritten = spec
        let hostname: String = { if case .string(let h)? = spec["hostname"] { return h } else { return "" } }()
        let root: String
        let hostNetwork: Bool
        switch kind {
        case .sandbox, .standalone:
            guard hostname.count <= 255, hostname.allSatisfy({ $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII || "_-.".contains($0) }) else {
                throw BridgeError(.fail, "invalid hostname '\(hostname)'")
            }
            root = try podRoot(spec: spec, kind: kind, bundle: bundle)
            hostNetwork = SpecAnnotations.flag(spec, hostNetworkAnnotation)
            try makeDirectory(root, mode: 0o755)
            let name = hostname.isEmpty ? configuration.hostname : hostname
            try writeFile("\(root)/hostname", Array("\(name)\n".utf8))
            try writeFile("\(root)/hosts", Array(hostsFile(for: name).utf8))
            // No network namespace records exist until network settings are implemented: the
            // pod gets an empty resolv.conf (no search domains, no servers).
            try writeFile("\(root)/resolv.conf", [])
            // The pod's shared directories; released by the caller if the create fails after this.
            if kind == .sandbox { try SandboxMounts.create(root: root) }
            let path = kind == .sandbox ? "\(configuration.cgroupParent)/\(id)/\(id)" : "\(configuration.cgroupParent)/\(id)"
            rewritten.setMember(["linux", "cgroupsPath"], .string(path))
        case .workload(let sandboxID):
            guard let podInfo = pod(sandboxID) else {
                throw BridgeError(.fail, "pod \(sandboxID) does not exist for workload container \(id)")
            }
            guard hostname.isEmpty else { throw BridgeError(.fail, "workload container \(id) must not set a hostname") }
            root = podInfo.root
            hostNetwork = podInfo.hostNetwork  // a workload has its sandbox's network
            try SandboxMounts.resolveSources(&rewritten, root: root)
            try SpecAnnotations.applyWorkload(&rewritten)
            rewritten.setMember(["linux", "cgroupsPath"], .string("\(configuration.cgroupParent)/\(sandboxID)/\(id)"))
        }
        let teeLog = try TeeLog.prepare(&rewritten, root: root, id: id)
        // The core-dump limit: sandboxes and workloads, not standalone containers (as Go).
        if kind != .standalone { try SpecAnnotations.applyCoreLimit(&rewritten) }
        var userFromName = false
        // Standalone containers too, unlike Go's guest (§7.1 step 8 has no such step): there runc
        // ignores the name, and an image whose config names its user would run as root.
        if var process = rewritten["process"] {
            userFromName = try UserResolution.apply(to: &process, rootfs: rootfsPath(rewritten, bundle: bundle))
            if userFromName { rewritten.setMember(["process"], process) }
        }
        if kind != .sandbox { addNetworkFileMounts(&rewritten, from: root) }
        if hostNetwork { removeNamespace("network", from: &rewritten) }
        rewritten.removeMember("windows")
        try makeDirectory(bundle, mode: 0o700)
        precreateWorkingDirectory(rewritten, bundle: bundle)
        let bytes = try specEncoder().encode(rewritten) + [0x0A]
        try writeFile("\(bundle)/config.json", Array(bytes))
        return Prepared(spec: rewritten, kind: kind, sandboxRoot: root, userFromName: userFromName, hostNetwork: hostNetwork,
                        teeLog: teeLog)
    }

    /// guest-behaviour §9.4.
    static func hostsFile(for hostname: String) -> String {
        let short = hostname.split(separator: ".").first.map(String.init) ?? hostname
        let named = hostname.contains(".") ? "127.0.0.1 \(hostname) \(short)" : "127.0.0.1 \(hostname)"
        return """
        127.0.0.1 localhost
        \(named)

        # The following lines are desirable for IPv6 capable hosts
        ::1     ip6-localhost ip6-loopback
        fe00::0 ip6-localnet
        ff00::0 ip6-mcastprefix
        ff02::1 ip6-allnodes
        ff02::2 ip6-allrouters

        """
    }

    /// Bind mounts of the pod's /etc/hostname, /etc/hosts, /etc/resolv.conf unless the spec
    /// already mounts something there (read-only when the root is).
    static func addNetworkFileMounts(_ spec: inout JSONValue, from root: String) {
        var mounts: [JSONValue] = { if case .array(let m)? = spec["mounts"] { return m } else { return [] } }()
        let existing = Set(mounts.compactMap { mount -> String? in
            if case .string(let d)? = mount["destination"] { return d } else { return nil }
        })
        let readOnly = spec["root"]?["readonly"] == .bool(true)
        for file in ["hostname", "hosts", "resolv.conf"] where !existing.contains("/etc/\(file)") {
            let options: [JSONValue] = readOnly ? [.string("bind"), .string("ro")] : [.string("bind")]
            mounts.append(.object([("destination", .string("/etc/\(file)")), ("type", .string("bind")),
                                   ("source", .string("\(root)/\(file)")), ("options", .array(options))]))
        }
        spec.setMember(["mounts"], .array(mounts))
    }

    /// Drops the `linux.namespaces` entries of `type`: the container stays in the VM's.
    static func removeNamespace(_ type: String, from spec: inout JSONValue) {
        guard case .array(let namespaces)? = spec["linux"]?["namespaces"] else { return }
        spec.setMember(["linux", "namespaces"], .array(namespaces.filter { $0["type"] != .string(type) }))
    }

    /// runc needs `process.cwd` to exist in the rootfs; create it (errors ignored, §10).
    static func precreateWorkingDirectory(_ spec: JSONValue, bundle: String) {
        guard case .string(let cwd)? = spec["process"]?["cwd"], cwd != "/" else { return }
        try? makeDirectory(rootfsPath(spec, bundle: bundle) + (cwd.hasPrefix("/") ? cwd : "/" + cwd), mode: 0o755)
    }

    /// `root.path`, relative to the bundle when it is not absolute (runc's rule).
    static func rootfsPath(_ spec: JSONValue, bundle: String) -> String {
        guard case .string(let path)? = spec["root"]?["path"] else { return "\(bundle)/rootfs" }
        return path.hasPrefix("/") ? path : "\(bundle)/\(path)"
    }

    /// JSON for files runc reads (config.json, process.json): no `\/` escapes.
    static func specEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    static func statistics(cgroupsPath: JSONValue?) throws -> JSONValue {
        guard case .string(let path)? = cgroupsPath else { throw BridgeError(.fail, "container has no cgroupsPath") }
        return try ContainerStatistics().metrics(cgroupsPath: path)
    }
}

extension JSONValue {
    /// Sets the member at `path` (creating intermediate objects, or replacing a non-object on
    /// the way). The member rewritten is the one Go decodes (`JSONValue.memberIndex`), and it
    /// is left the only one under its key in any case or repeat, so runc reads exactly what
    /// was rewritten: a duplicate such as `"Linux"` after `"linux"` cannot hide a rewrite.
    mutating func setMember(_ path: [String], _ value: JSONValue) {
        guard let first = path.first else { self = value; return }
        guard case .object(var members) = self else { return }
        let index = JSONValue.memberIndex(first, in: members)
        var child = index.map { members[$0].value } ?? .object([])
        if path.count > 1 && !child.isObject { child = .object([]) }
        child.setMember(Array(path.dropFirst()), value)
        if let index {
            members[index] = (first, child)
            // The others under this key, whatever their case, go: only the rewritten one is left.
            members = members.enumerated().filter { offset, member in
                offset == index || !(member.key == first || JSONValue.keysMatchIgnoringCase(member.key, first))
            }.map(\.element)
        } else {
            members.append((first, child))
        }
        self = .object(members)
    }

    /// Removes every top-level member Go would decode as `key` (any case, any repeat).
    mutating func removeMember(_ key: String) {
        guard case .object(let members) = self else { return }
        let lower = key.lowercased()
        self = .object(members.filter { $0.key.lowercased() != lower })
    }
}
