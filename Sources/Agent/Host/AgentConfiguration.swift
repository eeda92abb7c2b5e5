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
    /// The VM's hostname, used when a sandbox spec has none.
    public var hostname = "localhost"

    public init() {}
}
