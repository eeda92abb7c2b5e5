import EventLoop

/// Where the agent keeps its state and how it reaches the host and runc. Production defaults
/// match hcsshim's guest layout (guest-behaviour §4); tests and the local demo point the
/// directories at a private root so that nothing collides with the machine's own runc.
public struct AgentConfiguration: Sendable {
    /// Per-container agent state (`/var/run/gcsrunc/<id>/...`).
    public var runDirectory = "/var/run/gcsrunc"
    /// runc's `--root` (nil: runc's default, /run/runc).
    public var runcRoot: String?
    public var runcBinary = "/usr/sbin/runc"
    /// Prefix of `linux.cgroupsPath` for containers.
    public var cgroupParent = "/pods"
    /// Memory kept out of the containers' cgroup limit (`-root-mem-reserve-bytes`, 75 MiB):
    /// the parent is limited to the VM's RAM less this.
    public var rootMemoryReserve: UInt64 = 75 << 20
    /// The VM's hostname, used when a sandbox spec has none.
    public var hostname = "localhost"
    /// How stdio of processes exec'd into containers without a terminal reaches the host.
    public var execStdio = ExecStdio.relay
    /// How long a container init's stdout/stderr re-dial keeps trying while a negotiated
    /// bridge connection is up (`StdioRedial`): a live-migrated host listens on the ports again
    /// soon after it has reconnected.
    public var stdioRedialGrace: Duration = .seconds(10)

    /// `relay` (the default): pipes to runc and an EventLoop relay to the host's connections,
    /// as Go's guest does. `passThrough` (faster: 1.7-2x the relay's throughput at no agent
    /// CPU, AgentBench's "container stdout relay"): the host's connections themselves become
    /// the process's fds 0-2, as for VM processes, and the agent leaves the data path. Not the
    /// default because a container's processes then see differences from Go's guest:
    /// `/dev/stdout` and `/dev/stderr` cannot be opened (a socket behind `/proc/self/fd` gives
    /// ENXIO, so `echo x > /dev/stderr` fails), and the exit reaches the host before it has read
    /// the last of the output (up to the sockets' buffers), which hcsshim's shims give one
    /// second. A container's init always relays, because runc creates it before the host's
    /// connections exist.
    public enum ExecStdio: String, Sendable, CaseIterable {
        case relay
        case passThrough = "pass-through"
    }

    public init() {}
}
