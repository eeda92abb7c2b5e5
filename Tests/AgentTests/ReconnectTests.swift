import Bridge
import EventLoop
import Glibc
import HostSupport
import Logging
import Synchronization
import Testing

@Suite("End to end: host disconnect", .timeLimit(.minutes(5)))
struct ReconnectTests {
    @Test("containers survive a host disconnect; the agent re-dials, renegotiates and delivers the queued exit notification once the host has the exit code")
    func reconnect() async throws {
        try await withGuest("reconnect", arguments: ["-loglevel", "debug"]) { guest in
            let dying = try await startContainer(guest, id: "dies-while-away")
            try await startContainer(guest, id: "keeps-running")
            var logger = Logger(label: "reconnect")
            logger.logLevel = .warning
            // The host waits for the init, as hcsshim's shim does; the wait outlives the
            // disconnect, and its answer finds no connection.
            let client = guest.client
            let lostWait = Task { try await client.send(WaitForProcessRequest(base: RequestBase(containerId: "dies-while-away"), processId: dying)) }
            // The task may send after anything sent from here: leave only once the agent lists
            // the wait as in flight.
            var ids: [UInt64] = [], asked = 0
            while ids.isEmpty && asked < 100_000 {
                ids = waitIDs(in: try await client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))).guestStacks)
                asked += 1
            }
            try #require(ids.count == 1, "after \(asked) DumpStacks")
            try await guest.reconnect(logger: logger) {
                // The host is away: the container's init dies (killed from outside the bridge).
                #expect(kill(pid_t(dying), SIGKILL) == 0)
                try await untilDropped(ids, guest)
            }
            #expect(await (try? lostWait.value) == nil)  // failed with the old client
            // The host that comes back asks for the exit code (hcsshim probes); only then does
            // the notification go out (guest-behaviour §7.6).
            #expect(try await wait(guest, "dies-while-away", dying, timeoutMs: 50) == 137)
            var notification: ContainerNotification?
            for await n in guest.client.notifications { notification = n; break }
            #expect(notification?.base.containerId == "dies-while-away")
            #expect(notification?.type == "UnexpectedExit")
            let alive = try await guest.run(.exec("keeps-running", Busybox.process(args: ["echo", "still here"])))
            #expect(alive.stdoutText == "still here\n")
            for id in ["dies-while-away", "keeps-running"] {
                _ = try? await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            }
        }
    }

    /// Returns once gcs has logged that the answers to the requests `ids` found no connection.
    func untilDropped(_ ids: [UInt64], _ guest: LocalGuest) async throws {
        func dropped(_ id: UInt64) -> Bool {
            guest.log().split(separator: "\n").contains { $0.contains("dropping response") && $0.contains(" id=\(id) ") }
        }
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while !ids.allSatisfy(dropped) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(ids.allSatisfy(dropped), "\(guest.log().suffix(1500))")
    }

    @Test("waits in flight when the host leaves go on: answered on the new connection once adopted; an exit while the host is away is kept for its next wait",
          .timeLimit(.minutes(1)))
    func waitsAcrossReconnect() async throws {
        try await withGuest("waits-across-reconnect", arguments: ["-loglevel", "debug"]) { guest in
            try await startContainer(guest, id: "waits")
            let client = guest.client
            let later = try await guest.start(.utilityVM, args: ["/bin/sleep", "3600"], stdout: false, stderr: false).pid
            let awayExternal = try await guest.start(.utilityVM, args: ["/bin/sleep", "3600"], stdout: false, stderr: false).pid
            let awayExec = try await guest.start(.exec("waits", Busybox.process(args: ["sleep", "3600"])), stdout: false, stderr: false).pid
            // The host waits for each (as a shim does), one after the other, so that the agent's
            // list of requests in flight tells which sequence id each wait has.
            var ids: [UInt64] = [], lostWaits: [Task<WaitForProcessResponse, any Error>] = []
            for (container, pid) in [(uvmContainerID, later), (uvmContainerID, awayExternal), ("waits", awayExec)] {
                lostWaits.append(Task { try await client.send(WaitForProcessRequest(base: RequestBase(containerId: container), processId: pid)) })
                var listed: [UInt64] = [], asked = 0
                while listed.count <= ids.count && asked < 100_000 {
                    let stacks = try await client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))).guestStacks
                    listed = waitIDs(in: stacks)
                    asked += 1
                }
                let new = listed.filter { !ids.contains($0) }
                try #require(new.count == 1, "after \(asked) DumpStacks the waits listed are \(listed), known \(ids)")
                ids.append(new[0])
            }
            var logger = Logger(label: "waits-across-reconnect")
            logger.logLevel = .warning
            try await guest.reconnect(logger: logger) {
                // The host is away: two of the processes die (killed from outside the bridge), and
                // the agent finds no connection to answer their waits on.
                #expect(kill(pid_t(awayExternal), SIGKILL) == 0)
                #expect(kill(pid_t(awayExec), SIGKILL) == 0)
                try await untilDropped([ids[1], ids[2]], guest)
            }
            for lost in lostWaits { #expect(await (try? lost.value) == nil) }  // failed with the old client
            // The new host adopts the wait it still has out (hcsshim's PreregisterRPC) and probes
            // the others with a short wait, as hcsshim's live-migration path does: their exit codes
            // were kept, not forgotten with an answer nobody received.
            let adopted = try guest.client.adopt(WaitForProcessRequest.self, id: ids[0])
            let probes = [try await wait(guest, uvmContainerID, awayExternal, timeoutMs: 50), try await wait(guest, "waits", awayExec, timeoutMs: 50)]
            // An external process killed by a signal exits -1, as in Go's guest; a container's 137.
            #expect(probes == [UInt32.max, 137])
            // Answered now, so forgotten: a second wait finds no such process.
            #expect(await hresult { _ = try await wait(guest, uvmContainerID, awayExternal, timeoutMs: 50) } != nil)
            #expect(kill(pid_t(later), SIGKILL) == 0)
            let adoptedCode = try await adopted.response().exitCode
            #expect(adoptedCode == UInt32.max)
            let stacks = try await guest.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))).guestStacks
            #expect(waitIDs(in: stacks).isEmpty, "\(stacks.prefix(400))")
            _ = try? await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: "waits")))
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: "waits")))
        }
    }

    /// The sequence ids of the WaitForProcess requests a DumpStacks text lists as in flight.
    func waitIDs(in stacks: String) -> [UInt64] {
        stacks.split(separator: "\n").compactMap { line -> UInt64? in
            guard let mark = line.firstRange(of: "ComputeSystemWaitForProcessV1 #") else { return nil }
            return UInt64(line[mark.upperBound...].prefix { $0.isNumber })
        }
    }

    @Test("SIGTERM stops the agent at once while it re-dials a host that does not answer")
    func stopWhileDialling() async throws {
        // The scenario's premise fails when the signal came after a dial had already run out of
        // retries (a test stalled for a second): then it tells nothing, and it runs again.
        try await untilPremiseHeld {
            try await withGuest("stop-while-dialling", arguments: ["-loglevel", "debug"]) { guest in
                // A host that does not answer, as a vsock connect that times out is retried for up
                // to ~20 s.
                let (jammed, filler) = try await jammedListener("\(guest.prefix)_\(0x4000_0000)")
                defer { jammed.close(); filler.close() }
                guest.client.close()
                // gcs has seen the host go away, paused 100 ms and begun to dial again.
                func redialling() -> Bool {
                    let log = guest.log()
                    guard let ended = log.firstRange(of: "bridge connection ended") else { return false }
                    return log[ended.upperBound...].contains("bridge dialing")
                }
                let deadline = ContinuousClock.now.advanced(by: .seconds(10))
                while !redialling() && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                #expect(redialling())
                #expect(try await guest.waitForExit(signal: SIGTERM) == .exited(0))
                // The dial in progress was cancelled, not left to run out of retries (over a second
                // here, up to ~20 s for vsock).
                let log = guest.log()
                let stopped = log.split(separator: "\n").first { $0.contains("bridge dial stopped") }
                if stopped == nil, let ended = log.firstRange(of: "bridge connection ended"), log[ended.upperBound...].contains("bridge dial failed") {
                    return false
                }
                #expect(stopped?.contains("CancellationError") == true, "\(log.suffix(600))")
                return true
            }
        }
    }

    @Test("a container exec still dialling its stdio when the host leaves is cancelled: nothing runs, the agent re-dials at once")
    func execDialCancelledByDisconnect() async throws {
        // The scenario's premise fails when the exec's dial ran out of retries before the host
        // left (a test stalled for a second): then it tells nothing, and it runs again.
        try await untilPremiseHeld {
            try await withGuest("exec-dial-cancelled", arguments: ["-loglevel", "debug"]) { guest in
                let id = "exec-dial"
                let initPID = try await startContainer(guest, id: id)
                let port: UInt32 = 0x7000_0001
                let (jammed, filler) = try await jammedListener("\(guest.prefix)_\(port)")
                defer { jammed.close(); filler.close() }
                var parameters = ProcessParameters()
                parameters.createStdOutPipe = true
                parameters.ociProcess = Busybox.process(args: ["sleep", "3600"])
                let request = ExecuteProcessRequest(base: RequestBase(containerId: id),
                                                    settings: ExecuteProcessSettings(processParameters: BridgeJSON.embed(parameters),
                                                                                     vsockStdioRelaySettings: VsockStdioRelaySettings(stdOut: port)))
                let client = guest.client
                let exec = Task(executorPreference: EventLoop.shared) { try await client.send(request) }
                var state = "", asked = 0
                let patience = ContinuousClock.now.advanced(by: .seconds(60))
                while !state.contains("ComputeSystemExecuteProcessV1 #") && ContinuousClock.now < patience {
                    state = try await client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))).guestStacks
                    asked += 1
                }
                func ranOut(_ outcome: Result<ExecuteProcessResponse, any Error>) -> Bool {
                    if case .failure(let error) = outcome { return "\(error)".contains("Resource temporarily unavailable") }
                    return false
                }
                var logger = Logger(label: "exec-dial")
                logger.logLevel = .warning
                if !state.contains("ComputeSystemExecuteProcessV1 #") {
                    let outcome = await exec.result
                    if ranOut(outcome) { try await guest.reconnect(logger: logger); return false }
                    Issue.record("after \(asked) DumpStacks: \(state.prefix(300)); the exec: \(outcome)")
                }
                try await guest.reconnect(logger: logger)
                let outcome = await exec.result
                // Answered before the host left: the dial had run out of retries already.
                if ranOut(outcome) { return false }
                #expect((try? outcome.get()) == nil)
                // The old connection's requests were cancelled and waited for before the agent
                // re-dialled: the exec failed because its dial was cancelled, not because the dial's
                // retries ran out (over a second here, up to ~20 s for vsock).
                let log = guest.log()
                let failed = log.split(separator: "\n").first { $0.contains("bridge request failed") && $0.contains("ExecuteProcess") }
                #expect(failed?.contains("CancellationError") == true, "\(log.suffix(800))")
                // Nothing was started for the host that left: the init is the container's only process.
                let properties = try await guest.client.send(try GetPropertiesRequest(base: RequestBase(containerId: id), propertyTypes: ["ProcessList"]))
                #expect(properties.properties.contains("{\"ProcessId\":\(initPID)}"))
                #expect(properties.properties.components(separatedBy: "ProcessId").count == 2, "\(properties.properties)")
                _ = try? await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
                return true
            }
        }
    }

    /// Runs a scenario until its premise held (it returns true), at most `tries` times: for
    /// tests whose set-up races a timeout of the agent's that a stalled test can outlast. On the
    /// loop, as the host's reader is: a cooperative pool busy with other tests' blocking work
    /// must not hold the scenario back past the agent's state it aims at.
    func untilPremiseHeld(tries: Int = 3, _ scenario: () async throws -> Bool) async throws {
        try await withTaskExecutorPreference(EventLoop.shared) {
            for _ in 0..<tries where try await scenario() { return }
            Issue.record("the scenario's premise did not hold in \(tries) tries")
        }
    }

    /// A listener that does not answer: its backlog (one connection) is taken by the returned
    /// connection, so every connect to it is refused with EAGAIN, which gcs's Unix transport
    /// retries for a second or more.
    func jammedListener(_ path: String) async throws -> (UnixListener, AsyncFD) {
        let listener = try UnixListener(path: path, backlog: 0)
        do { return (listener, try await UnixSocket.connect(path: path)) } catch { listener.close(); throw error }
    }

    @Test("a create in flight when the host leaves does not hold up the re-dial, and runs to its end; a delete after reconnecting waits for it and cleans up",
          .timeLimit(.minutes(1)))
    func createAcrossDisconnect() async throws {
        try await withGuest("create-across-disconnect") { guest in
            let id = "created-while-leaving"
            // runc create runs the spec's createRuntime hooks and waits for them: this one holds the
            // create until the test writes a line into a FIFO, so the host leaves while the create is
            // under way, whatever the scheduling. The test keeps the FIFO open read-write from the
            // start, so the hook's open never blocks and a line written before the hook reads waits.
            let gate = "\(guest.workDirectory)/create-gate"
            #expect(mkfifo(gate, 0o600) == 0)
            let gateFD = open(gate, O_RDWR | O_CLOEXEC)
            #expect(gateFD >= 0)
            defer { close(gateFD) }
            let hook: JSONValue = .object([("path", .string("/bin/sh")),
                                           ("args", .array(["sh", "-c", "read line < \(gate)"].map { .string($0) }))])
            guard case .object(var spec) = Busybox.spec(rootfs: sharedRootfs, args: ["sleep", "3600"], terminal: true) else {
                Issue.record("the busybox spec is not an object"); return
            }
            spec.append((key: "hooks", value: .object([("createRuntime", .array([hook]))])))
            let settings = ContainerSettings(ociBundlePath: "\(guest.workDirectory)/bundles/\(id)",
                                             ociSpecification: .object(spec), scratchDirPath: "")
            let request = try CreateContainerRequest(base: RequestBase(containerId: id), settings: settings)
            let client = guest.client
            // Its answer never comes (the host leaves first); if it does, say what it was.
            let answer = Mutex<String?>(nil)
            let pending = Task {
                do { _ = try await client.send(request); answer.withLock { $0 = "success" } } catch { answer.withLock { $0 = "\(error)" } }
            }
            var state = "", asked = 0
            while !state.contains("container \(id) being created") && answer.withLock({ $0 }) == nil && asked < 100_000 {
                state = try await client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))).guestStacks
                asked += 1
            }
            #expect(state.contains("container \(id) being created"),
                    "after \(asked) DumpStacks; the create's answer: \(answer.withLock { $0 } ?? "none"); \(state.prefix(300)); gcs log: \(guest.log().suffix(3000))")
            var logger = Logger(label: "create-across-disconnect")
            logger.logLevel = .warning
            // The create is held in its hook all along: the agent re-dials and negotiates anyway
            // (an agent that waited for its handlers would hang here, until the time limit).
            try await guest.reconnect(logger: logger)
            _ = await pending.result
            let during = try await guest.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))).guestStacks
            #expect(during.contains("container \(id) being created"), "\(during.prefix(300))")
            // Now let runc create go on.
            #expect(write(gateFD, "go\n", 3) == 3)
            #expect(answer.withLock { $0 } != "success", "the create was answered to a host that had left")
            // The create went on without the host; a delete waits for it, then finds the container
            // (cancelled half-way, the create once left runc's container behind, unknown to the agent).
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            #expect(access("\(guest.workDirectory)/runc/\(id)", F_OK) != 0)
            let dump = try await guest.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID)))
            #expect(dump.guestStacks.hasPrefix("bridge: 0 other requests in flight\nswift-gcs state: 0 containers"),
                    "\(dump.guestStacks.prefix(200))")
        }
    }
}
