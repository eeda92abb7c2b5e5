import Bridge
import EventLoop
import FoundationEssentials
import Glibc
import Logging

/// The VM host: the registry of containers and of processes run directly in the VM, and the
/// `BridgeHandler` that turns bridge requests into actions on them. Control-plane state lives
/// here and in the `Container` and `GuestProcess` actors; the stdio data path never passes
/// through any of them.
public actor AgentHost: BridgeHandler {
    let configuration: AgentConfiguration
    let transport: any Transport
    let reaper: Reaper
    let runc: Runc
    let loop: EventLoop
    let logger: Logger
    /// Where exit notifications go (the connection manager queues them while disconnected).
    let notify: @Sendable (ContainerNotification) async -> Void
    /// Returns freed heap to the kernel after processes and containers go away.
    let reclaimer: HeapReclaimer
    /// The containers' parent cgroup and its memory limit.
    let podsCgroup: PodsCgroup

    private var containers: [String: Container] = [:]
    /// Creates in flight, by id: a second Create for one fails, most requests for it are told it
    /// is still being created, and DeleteContainerState waits for it (a host that left during
    /// the create never got its answer, and deletes it after reconnecting).
    private var creations: [String: Creation] = [:]
    /// A create under way: its task, and for a workload its sandbox (whose delete waits for it).
    private struct Creation {
        let task: Task<Void, any Error>
        let sandbox: String?
    }
    private var external: [pid_t: GuestProcess] = [:]
    /// Pods, by sandbox container id.
    private var pods: [String: Pod] = [:]
    /// Sandboxes whose delete is under way: their pods take no new workloads.
    private var deletingPods: Set<String> = []
    /// Deleted sandboxes whose pod cgroup could not be removed yet (a workload's was still in it).
    private var lingeringPodCgroups: Set<String> = []

    /// Called when the host shuts the VM down (ShutdownGraceful/Forced on the VM's id): the
    /// daemon stops serving and exits, and the VM's init powers it off.
    let onVMShutdown: @Sendable () -> Void
    private let link: HostLink

    /// `link`: the bridge connection's state (`BridgeConnectionLoop.link`), which tells the
    /// inits' stdio re-dial whether the host is connected.
    public init(configuration: AgentConfiguration, transport: any Transport, reaper: Reaper, loop: EventLoop = .shared,
                logger: Logger, link: HostLink = HostLink(), onVMShutdown: @escaping @Sendable () -> Void = {},
                notify: @escaping @Sendable (ContainerNotification) async -> Void) {
        self.link = link
        self.onVMShutdown = onVMShutdown
        self.configuration = configuration
        self.transport = transport
        self.reaper = reaper
        self.loop = loop
        self.logger = logger
        self.notify = notify
        reclaimer = HeapReclaimer(loop: loop)
        podsCgroup = PodsCgroup(path: configuration.cgroupParent, reserve: configuration.rootMemoryReserve)
        runc = Runc(binary: configuration.runcBinary, root: configuration.runcRoot, reaper: reaper, loop: loop)
    }

    public nonisolated var guestCapabilities: GuestDefinedCapabilities {
        // Network adapters are not implemented yet: do not make the host send them.
        GuestDefinedCapabilities(namespaceAddRequestSupported: false, signalProcessSupported: true,
                                 dumpStacksSupported: true, deleteContainerStateSupported: true)
    }

    // MARK: Containers

    public func createContainer(_ request: CreateContainerRequest, settings: ContainerSettings) async throws -> CreateContainerResponse {
        let id = request.base.containerId
        guard id != uvmContainerID else { throw BridgeError(.invalidArgument, "invalid container id '\(id)'") }
        try ContainerID.validate(id)
        guard containers[id] == nil, creations[id] == nil else {
            throw BridgeError(.systemAlreadyExists, "container \(id) already exists")
        }
        guard let spec = settings.ociSpecification else { throw BridgeError(.fail, "container \(id): OciSpecification is missing") }
        guard !settings.ociBundlePath.isEmpty else { throw BridgeError(.fail, "container \(id): OciBundlePath is missing") }
        let bundle = settings.ociBundlePath
        // A failure removes the bundle (guest-behaviour §7.1 step 4), unless a pod of this id
        // is still registered: the bundle may be its root.
        let bundleIsThisCreates = pods[id] == nil
        // Where its pod files go (a virtual pod's sandbox keeps them apart from its bundle):
        // what a failed create removes besides the bundle.
        let podRoot = (try? ContainerKind(spec: spec, id: id)).flatMap { try? ContainerPreparation.podRoot(spec: spec, kind: $0, bundle: bundle) } ?? bundle
        var madePodCgroup = false
        let container: Container, creation: Task<Void, any Error>
        do {
            // Before any preparation: a workload's prepares directories (and mounts) in its sandbox's.
            if case .workload(let sandbox)? = try? ContainerKind(spec: spec, id: id), deletingPods.contains(sandbox) {
                throw BridgeError(.fail, "container \(id): its sandbox \(sandbox) is being deleted")
            }
            let pods = self.pods
            let prepared = try ContainerPreparation.prepare(spec: spec, id: id, bundle: bundle, configuration: configuration,
                                                            pod: { pods[$0] })
            if prepared.kind == .sandbox, pods[id] != nil { throw BridgeError(.systemAlreadyExists, "pod \(id) already exists") }
            if prepared.kind == .sandbox {
                madePodCgroup = true
                try podCgroup(id).create(resources: prepared.spec["linux"]?["resources"], logger: logger)
            }
            container = Container(id: id, bundle: bundle, scratchDirectory: settings.scratchDirPath, runDirectory: "\(configuration.runDirectory)/\(id)", spec: prepared.spec,
                                  runc: runc, reaper: reaper, loop: loop, logger: logger,
                                  // The exit notification carries it; a host rejects one that is not a GUID.
                                  activityID: HostChecks.isGUID(request.base.activityId) ? request.base.activityId : uvmContainerID,
                                  execStdio: configuration.execStdio, userFromName: prepared.userFromName, teeLog: prepared.teeLog)
            // To its end even if this request is cancelled (see DetachedWork). The task itself
            // registers the container, or undoes the create, in the same step as it forgets the
            // creation: a delete that waited for the task finds the container, and no Create of
            // the same id slips in before a failed one's files are gone.
            let pod = Pod(root: prepared.sandboxRoot, hostNetwork: prepared.hostNetwork, members: [id])
            let kind = prepared.kind, madeCgroup = madePodCgroup
            creation = Task(executorPreference: loop) { [self] in
                do {
                    try await container.create()
                } catch {
                    await creationFailed(id, madePodCgroup: madeCgroup, bundle: bundleIsThisCreates ? bundle : nil, podRoot: podRoot)
                    throw error
                }
                await creationSucceeded(container, kind: kind, pod: pod)
            }
            var sandbox: String?
            if case .workload(let pod) = kind { sandbox = pod }
            creations[id] = Creation(task: creation, sandbox: sandbox)
        } catch {
            undoCreate(id, madePodCgroup: madePodCgroup, bundle: bundleIsThisCreates ? bundle : nil, podRoot: podRoot)
            throw error
        }
        try await DetachedWork.outcome(of: creation, on: loop)
        let initPID = await container.initPID
        logger.info("container created", metadata: ["id": "\(id)", "init": "\(initPID)"])
        return CreateContainerResponse()
    }

    /// A creation's successful end, in one step on the actor: the container is registered and
    /// the creation forgotten.
    private func creationSucceeded(_ container: Container, kind: ContainerKind, pod: Pod) {
        creations.removeValue(forKey: container.id)
        register(container, kind: kind, pod: pod)
    }

    /// A creation's failed end, in one step on the actor: forgotten, and what it made undone.
    private func creationFailed(_ id: String, madePodCgroup: Bool, bundle: String?, podRoot: String) {
        creations.removeValue(forKey: id)
        undoCreate(id, madePodCgroup: madePodCgroup, bundle: bundle, podRoot: podRoot)
    }

    /// Removes what a failed create made: its run directory, a sandbox's pod cgroup, and the
    /// bundle when the create made it (`bundle` nil: a pod of this id still has it as its root),
    /// with a virtual pod's directory (`podRoot`, when not the bundle).
    /// In place, without a suspension: a Create of the same id must not slip in between and lose
    /// its files. Cheap: a failed create's tree holds the files it wrote itself (an overlay
    /// rootfs the host mounted in it is another filesystem, not entered).
    private func undoCreate(_ id: String, madePodCgroup: Bool, bundle: String?, podRoot: String) {
        removeTree("\(configuration.runDirectory)/\(id)")
        if madePodCgroup { podCgroup(id).remove(logger: logger) }
        if let bundle {
            SandboxMounts.release(root: podRoot, logger: logger)  // a sandbox's, if it got that far
            if podRoot != bundle { removeTree(podRoot) }
            removeTree(bundle)
        }
    }

    public func startContainer(_ request: StartContainerRequest) async throws {
        // A Linux container starts with its init's ExecuteProcess; Start is a no-op (§8.1).
    }

    public func shutdownContainer(_ request: RequestBase, forced: Bool) async throws -> ShutdownReply {
        if request.containerId == uvmContainerID {
            // No answer (§7.5): the host waits for the VM to power off.
            logger.notice("UVM shutdown requested by the host: stopping", metadata: ["forced": "\(forced)"])
            onVMShutdown()
            return .noResponse
        }
        try await container(request.containerId).shutdown(forced: forced)
        return .respond
    }

    public func deleteContainerState(_ request: DeleteContainerStateRequest) async throws {
        let id = request.base.containerId
        if let creation = creations[id] { _ = await creation.task.result }
        let container = try container(id)
        if pods[id] != nil {
            // No workload joins the pod from here on, and those runc is creating are waited
            // for: their mounts and cgroups live in the sandbox's, which go now.
            deletingPods.insert(id)
            for workload in creations.values where workload.sandbox == id { _ = await workload.task.result }
        }
        defer { deletingPods.remove(id) }
        // A sandbox's shared directories are unmounted first (§7.11 step 4): its bundle, their
        // parent, goes with the container.
        if let pod = pods[id] { SandboxMounts.release(root: pod.root, logger: logger) }
        let isSandbox = pods[id] != nil, bundle = container.bundle
        // A virtual pod's files live apart from its sandbox's bundle: they go with it too.
        let separateRoot = pods[id].map(\.root).flatMap { $0 == bundle ? nil : $0 }
        // Forgotten whether or not its delete succeeds, as hcsshim's guest does; the host gets
        // the error.
        defer {
            containers.removeValue(forKey: id)
            reclaimer.noteRelease()
            // Forget the container in its pod; the pod goes with its sandbox, and so does its
            // cgroup (runc delete removed the sandbox container's own, inside it).
            if pods.removeValue(forKey: id) == nil {
                for sandbox in pods.keys { pods[sandbox]?.members.remove(id) }
            } else {
                lingeringPodCgroups.insert(id)
            }
            // A pod cgroup goes once its last container's has: tried again at every delete.
            for sandbox in lingeringPodCgroups where podCgroup(sandbox).remove(logger: logger) {
                lingeringPodCgroups.remove(sandbox)
            }
        }
        var failure: (any Error)?
        do { try await container.delete() } catch { failure = error }
        if let separateRoot {
            if let error = await removeTreeOffLoop([separateRoot]), failure == nil {
                failure = BridgeError(.fail, "removing virtual pod directory \(separateRoot): \(error)")
            }
            rmdir(separateRoot.deletingLastComponent)  // `virtual-pods`, once its last pod is gone
        }
        // The shim v2 layout keeps a pod's bundles in a directory of its own
        // (`…/pods/<pod>/<container>`), empty once its sandbox goes (§7.11 step 7), also when
        // runc's delete failed (its files are gone either way).
        if isSandbox, bundle.deletingLastComponent.deletingLastComponent.hasSuffix("/pods") {
            rmdir(bundle.deletingLastComponent)
        }
        if let failure { throw failure }
    }

    // MARK: Processes

    public func executeProcess(_ request: ExecuteProcessRequest, parameters: ProcessParameters) async throws -> UInt32 {
        let ports = request.settings.vsockStdioRelaySettings
        let (transport, reaper, loop) = (self.transport, self.reaper, self.loop)
        if request.isExternal(parameters) {
            // Needs no DetachedWork: its only cancellable step (dialling) comes before the spawn.
            let process = try await ExternalProcess.start(parameters, ports: ports, transport: transport, reaper: reaper, loop: loop)
            external[process.pid] = process
            return UInt32(process.pid)
        }
        let container = try container(request.base.containerId)
        let notify = self.notify
        // Dialled before the part that must run to its end: a host that went away before its
        // listeners answered cancels the request here (the dial's retries stop at once), and
        // nothing was started that the agent would then have to track for nobody.
        let connections = try await StdioConnections.dial(transport, ports: ports, stdin: parameters.createStdInPipe,
                                                          stdout: parameters.createStdOutPipe, stderr: parameters.createStdErrPipe)
        let logger = self.logger, link = self.link, grace = configuration.stdioRedialGrace
        let pid = try await DetachedWork.run(on: loop) { () async throws -> pid_t in
            if let ociProcess = parameters.ociProcess {
                return try await container.exec(process: ociProcess, connections: connections)
            }
            let redial = StdioRedial(transport: transport, loop: loop, logger: logger, link: link, grace: grace)
            return try await container.startInit(connections, ports: ports, redial: redial) { notification in await notify(notification) }
        }
        return UInt32(pid)
    }

    public func waitForProcess(_ request: WaitForProcessRequest) async throws -> ProcessExitAnswer {
        let timeout = request.timeoutInMs == WaitForProcessRequest.infinite ? nil : request.timeoutInMs
        let process = try await process(request.base.containerId, request.processId)
        let code = try await process.wait(timeoutMs: timeout, loop: loop)
        // Only the process waited for: its pid may have been reused by a newer one meanwhile.
        let owner = request.base.containerId == uvmContainerID ? nil : containers[request.base.containerId]
        if request.base.containerId == uvmContainerID, let known = external[process.pid], known === process {
            external.removeValue(forKey: process.pid)
            if external.isEmpty && external.capacity > 64 { external = [:] }  // do not keep a burst's capacity
            reclaimer.noteRelease()
        } else if let owner {
            // An exec'd process waited for is forgotten, with its files (guest-behaviour §7.4):
            // a container probed by exec every few seconds must not pile up records.
            await owner.forget(process)
        }
        return ProcessExitAnswer(exitCode: code, answered: { [self] delivered in
            if delivered { return process.acknowledgeExit() }
            // The host was away (or had not negotiated yet): the code is kept for its next wait,
            // as hcsshim's host probes with a short one after reconnecting, and the container's
            // exit notification waits for that answer.
            await keepUndelivered(process, owner: owner)
            process.withdrawExit()
        })
    }

    /// Takes back the record `waitForProcess` let go of when its answer could not be sent,
    /// unless the pid now belongs to a newer process (or the container was deleted).
    private func keepUndelivered(_ process: GuestProcess, owner: Container?) async {
        if let owner {
            await owner.remember(process)
        } else if external[process.pid] == nil {
            external[process.pid] = process
        }
    }

    public func signalProcess(_ request: SignalProcessRequest) async throws {
        let signal = request.signal == 0 ? SIGKILL : request.signal
        if request.base.containerId == uvmContainerID {
            try await process(uvmContainerID, request.processId).signal(signal)
        } else {
            try await container(request.base.containerId).signal(pid: request.processId, signal: signal)
        }
    }

    public func resizeConsole(_ request: ResizeConsoleRequest) async throws {
        try await process(request.base.containerId, request.processId).resize(height: request.height, width: request.width)
    }

    // MARK: Diagnostics (properties and settings: AgentHostProperties.swift)

    public func dumpStacks(_ request: DumpStacksRequest) async throws -> String {
        var text = "swift-gcs state: \(containers.count) containers, \(external.count) external processes, \(reaper.reapedCount) children reaped\n"
        text += "heap: \(reclaimer.statistics), \(reclaimer.trimCount) trims; loop queues shrunk \(loop.queueShrinkCount) times; relay scratch given back \(loop.scratchDiscardCount) times\n"
        for id in creations.keys.sorted() { text += "container \(id) being created\n" }
        // The containers are taken first: a delete may remove one while this awaits another.
        for (_, container) in containers.sorted(by: { $0.key < $1.key }) { text += await container.describe() + "\n" }
        for pid in external.keys.sorted() { text += external[pid]!.describe() + "\n" }
        return text
    }

    /// Makes a container runc has created known to later requests (and a sandbox's pod).
    private func register(_ container: Container, kind: ContainerKind, pod: Pod) {
        let id = container.id
        containers[id] = container
        switch kind {
        case .sandbox: pods[id] = pod
        case .workload(let sandbox):
            // Its sandbox may have been deleted while runc created it: it runs on, in no pod.
            if pods[sandbox]?.members.insert(id) == nil {
                logger.warning("sandbox deleted while its workload was created", metadata: ["id": "\(id)", "sandbox": "\(sandbox)"])
            }
        case .standalone: break
        }
    }

    // MARK: Lookups

    /// A pod: its sandbox's root (hostname, hosts, resolv.conf, shared directories), whether it
    /// uses the VM's network, and its containers.
    struct Pod {
        var root: String
        var hostNetwork: Bool
        var members: Set<String>
    }

    /// The cgroup of the pod whose sandbox is `sandboxID`.
    private func podCgroup(_ sandboxID: String) -> SandboxCgroup { SandboxCgroup(path: "\(configuration.cgroupParent)/\(sandboxID)") }

    func container(_ id: String) throws -> Container {
        if let container = containers[id] { return container }
        if creations[id] != nil { throw BridgeError(.fail, "container \(id) is still being created") }
        throw BridgeError(.systemNotFound, "container \(id) not found")
    }

    private func process(_ containerID: String, _ pid: UInt32) async throws -> GuestProcess {
        if containerID == uvmContainerID {
            // A ProcessId above Int32.max names no process (and must not trap the conversion).
            guard let key = pid_t(exactly: pid), let process = external[key] else { throw BridgeError(.notFound, "process \(pid) not found") }
            return process
        }
        return try await container(containerID).process(pid)
    }
}
