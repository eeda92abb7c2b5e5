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
    public var execStdio = ExecStdio.passThrough

    /// `relay`: pipes to runc and an EventLoop relay to the host's connections (hcsshim's
    /// way). `passThrough` (the default, chosen by AgentBench's "container stdout relay"
    /// figures: 1.7x the relay's throughput at no agent CPU): the host's connections
    /// themselves become the process's fds 0-2, as for VM processes, and the agent leaves the
    /// data path; output is never lost (it waits in the connection), but the exit may reach
    /// the host before the host has read the last of it, as with hcsshim's own VM processes.
    /// A container's init always relays, because runc creates it before the host's
    /// connections exist.
    public enum ExecStdio: String, Sendable, CaseIterable {
        case relay
        case passThrough = "pass-through"
    }

    public init() {}
}
