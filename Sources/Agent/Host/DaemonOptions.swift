import Logging

/// The `gcs` command line, parsed the way hcsshim's gcs (Go's `flag` package) parses its own:
/// `-name value`, `-name=value`, one or two dashes alike, booleans as `-v4` or `-v4=true`.
///
/// Hand-written rather than swift-argument-parser: the daemon's whole command line is a
/// score of flags, and the reflection-driven parser touched ~1.2 MiB of the static binary's pages at
/// start-up that then stayed resident for the agent's life (idle RSS is a target).
public struct DaemonOptions: Sendable, Equatable {
    /// `-loglevel`, as logrus's `ParseLevel` reads it (any case; `warn` or `warning`; `panic`
    /// and `fatal` log as critical), and swift-log's own names. Nil: no such level.
    public static func logLevel(_ text: String) -> Logger.Level? {
        switch text.lowercased() {
        case "panic", "fatal", "critical": .critical
        case "warn", "warning": .warning
        case let name: Logger.Level(rawValue: name)
        }
    }

    public var logLevel = "info"
    public var logFile: String?
    public var logFormat = "text"
    public var transport = "vsock"
    public var runDirectory = "/var/run/gcsrunc"
    public var runcRoot: String?
    public var runc = "/usr/sbin/runc"
    public var cgroupParent = "/pods"
    public var rootMemoryReserve: UInt64 = 75 << 20
    /// `-core-dump-location`: written verbatim to /proc/sys/kernel/core_pattern at start.
    public var coreDumpLocation: String?
    /// `-kmsgLogLevel`: kernel log records of this level or more severe are forwarded.
    public var kernelLogLevel = 4
    /// `--gcs-cgroup`: the cgroup the agent moves itself into at start ("" to stay put).
    public var agentCgroup = "/gcs"
    /// `-gcs-mem-limit-bytes`: a warning is logged when the agent's cgroup uses more (0: none).
    public var agentMemoryThreshold: UInt64 = 50 << 20
    /// `-disable-time-sync`: no chronyd (the local host tool passes it: its machine is no VM).
    public var disableTimeSync = false
    /// Where time sync finds its clock and chronyd (`--ptp-class-dir`, `--chronyd`,
    /// `--chronyd-config`: for tests and images that keep them elsewhere).
    public var timeSync = TimeSync()
    /// `-scrub-logs`: a flag the host passes (hcsshim adds it to the command line by its
    /// options) for what this agent does not need: accepted, so that the agent starts, and
    /// kept for the start-up log line.
    public var acceptedWithoutEffect: [String] = []
    public var execStdio = AgentConfiguration.ExecStdio.relay
    public var stdioRedialGraceMilliseconds: UInt64 = 10_000
    /// What the host's shutdown of the VM (ShutdownGraceful/Forced on the VM's id) does once
    /// the agent has stopped serving.
    public var vmShutdown = VMShutdownAction.powerOff
    /// `-h`/`--help` was given: print `usage` and exit.
    public var helpRequested = false

    /// What is wrong with a command line, for the user.
    public struct UsageError: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    public static let usage = """
        usage: gcs [flags]
          -loglevel LEVEL        trace, debug, info, warning, error (default info)
          -logfile PATH          log here instead of stderr
          -log-format FORMAT     text or json (default text)
          -v4                    accepted for hcsshim compatibility: protocol v4 is always on
          --transport T          vsock (the host, CID 2) or unix:<prefix> (port P is <prefix>_<P>)
          --run-directory PATH   agent state (default /var/run/gcsrunc)
          --runc-root PATH       runc --root (default: runc's own)
          --runc PATH            runc binary (default /usr/sbin/runc)
          --cgroup-parent PATH   cgroup parent of containers (default /pods)
          -root-mem-reserve-bytes N
                                 RAM kept out of that cgroup's memory limit (default 78643200)
          --exec-stdio MODE      relay (default) or pass-through (the host's connections
                                 become fds 0-2: faster, but /dev/stdout cannot be opened),
                                 for processes exec'd into containers without a terminal
          --stdio-redial-grace-ms N
                                 a container init's stdout/stderr, cut off, are re-dialled
                                 (live migration); given up after N ms of failed dials while
                                 the bridge is up (default 10000)
          --vm-shutdown ACTION   on the host's shutdown of the VM: poweroff (default, as
                                 hcsshim's gcs: reboot(RB_POWER_OFF)) or exit (the agent exits 0;
                                 for running it outside a VM, as the tests and demo do)
          -core-dump-location P  written to /proc/sys/kernel/core_pattern at start
          -kmsgLogLevel N        forward kernel log records of level N or lower (default 4)
          --gcs-cgroup PATH      the agent's own cgroup, joined at start (default /gcs;
                                 "" stays in the cgroup it was started in)
          -gcs-mem-limit-bytes N log a warning when that cgroup uses more than N bytes
                                 (default 52428800; 0: never)
          -disable-time-sync     do not run chronyd on the Hyper-V PTP clock
          --ptp-class-dir DIR    where PTP clocks are listed (default /sys/class/ptp)
          --chronyd PATH         the chronyd program (default chronyd, from PATH)
          --chronyd-config PATH  the chrony configuration written at start
                                 (default /tmp/chronyd.conf)
          -scrub-logs            accepted for hcsshim compatibility, without effect: this
                                 agent logs no request bodies
          -initial-policy-stance allow (the only stance: no security policy is enforced)
        """

    public init() {}

    /// Parses `arguments` (without the program name).
    public init(arguments: [String]) throws(UsageError) {
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            guard argument.hasPrefix("-"), argument != "-", argument != "--" else {
                throw UsageError(description: "unexpected argument \(argument)")
            }
            var name = Substring(argument.dropFirst(argument.hasPrefix("--") ? 2 : 1))
            var inline: String?
            if let equals = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: equals)...])
                name = name[..<equals]
            }
            func value() throws(UsageError) -> String {
                if let inline { return inline }
                guard let next = rest.popFirst() else { throw UsageError(description: "flag needs an argument: -\(name)") }
                return next
            }
            /// One of `T`'s raw values, which the error lists.
            func choice<T: RawRepresentable & CaseIterable>(_: T.Type) throws(UsageError) -> T where T.RawValue == String {
                let text = try value()
                guard let chosen = T(rawValue: text) else {
                    throw UsageError(description: "--\(name) must be \(T.allCases.map(\.rawValue).joined(separator: " or ")), not \(text)")
                }
                return chosen
            }
            func unsigned() throws(UsageError) -> UInt64 {
                let text = try value()
                guard let number = UInt64(text) else { throw UsageError(description: "invalid value \(text) for -\(name)") }
                return number
            }
            switch name {
            case "h", "help": helpRequested = true
            case "v4":
                try boolean(inline, name)
            case "disable-time-sync": disableTimeSync = try boolean(inline, name)
            case "scrub-logs":
                if try boolean(inline, name) { acceptedWithoutEffect.append("-\(name)") }
            case "ptp-class-dir": timeSync.ptpClassDirectory = try value()
            case "chronyd": timeSync.chronyd = try value()
            case "chronyd-config": timeSync.configurationPath = try value()
            case "kmsgLogLevel": kernelLogLevel = Int(min(try unsigned(), 7))
            case "gcs-mem-limit-bytes": agentMemoryThreshold = try unsigned()
            case "gcs-cgroup": agentCgroup = try value()
            case "core-dump-location": coreDumpLocation = try value()
            case "initial-policy-stance":
                // Fail closed: a host asking for a deny-all enforcer must not get an agent
                // that enforces nothing.
                let stance = try value()
                guard stance == "allow" else {
                    throw UsageError(description: "-initial-policy-stance \(stance): security policy enforcement is not implemented; only allow")
                }
            case "use-inouterr":
                if try boolean(inline, name) {
                    throw UsageError(description: "-use-inouterr (the bridge over stdin/stdout) is not supported; use --transport")
                }
            case "loglevel": logLevel = try value()
            case "logfile": logFile = try value()
            case "log-format": logFormat = try value()
            case "transport": transport = try value()
            case "run-directory": runDirectory = try value()
            case "runc-root": runcRoot = try value()
            case "runc": runc = try value()
            case "cgroup-parent": cgroupParent = try value()
            case "root-mem-reserve-bytes": rootMemoryReserve = try unsigned()
            case "exec-stdio": execStdio = try choice(AgentConfiguration.ExecStdio.self)
            case "stdio-redial-grace-ms": stdioRedialGraceMilliseconds = try unsigned()
            case "vm-shutdown": vmShutdown = try choice(VMShutdownAction.self)
            default:
                throw UsageError(description: "flag provided but not defined: -\(name)")
            }
        }
        // One leading slash, none trailing: the pods' cgroup directories are built from it.
        cgroupParent = Self.cgroupPath(cgroupParent)
        guard cgroupParent != "/" else { throw UsageError(description: "--cgroup-parent must name a cgroup below the root") }
        // The agent in its containers' cgroup (or one inside the other) would count against
        // their limit, and on cgroup v2 keep runc from enabling controllers below it.
        let agent = Self.cgroupPath(agentCgroup), pods = Self.cgroupPath(cgroupParent)
        if !agentCgroup.isEmpty && agent != "/" && (agent == pods || agent.hasPrefix(pods + "/") || pods.hasPrefix(agent + "/")) {
            throw UsageError(description: "--gcs-cgroup \(agentCgroup) must be apart from --cgroup-parent \(cgroupParent)")
        }
        guard ["text", "json"].contains(logFormat) else { throw UsageError(description: "-log-format must be text or json") }
        guard transport == "vsock" || (transport.hasPrefix("unix:") && transport.count > 5) else {
            throw UsageError(description: "--transport must be vsock or unix:<prefix>")
        }
    }

    /// A cgroup path with one leading slash and none trailing.
    private static func cgroupPath(_ path: String) -> String {
        "/" + path.split(separator: "/").joined(separator: "/")
    }

    /// A Go boolean flag's value: bare (`-flag`) is true, else `=true`/`=false`.
    @discardableResult
    private func boolean(_ inline: String?, _ name: Substring) throws(UsageError) -> Bool {
        switch inline {
        case nil, "true", "1", "t", "T", "TRUE", "True": return true
        case "false", "0", "f", "F", "FALSE", "False": return false
        case let other?: throw UsageError(description: "invalid boolean value \(other) for -\(name)")
        }
    }

    /// The agent's configuration from these options (the hostname is the machine's).
    public func configuration(hostname: String) -> AgentConfiguration {
        var configuration = AgentConfiguration()
        configuration.runDirectory = runDirectory
        configuration.runcRoot = runcRoot
        configuration.runcBinary = runc
        configuration.cgroupParent = cgroupParent
        configuration.rootMemoryReserve = rootMemoryReserve
        configuration.execStdio = execStdio
        configuration.stdioRedialGrace = .milliseconds(Int64(clamping: stdioRedialGraceMilliseconds))
        configuration.hostname = hostname
        return configuration
    }
}

/// What the agent does after the host shut the VM down. hcsshim's host never passes init a
/// power-off flag: Go's gcs powers the VM off itself, and so does this one by default.
public enum VMShutdownAction: String, Sendable, CaseIterable {
    case powerOff = "poweroff"
    case exit
}
