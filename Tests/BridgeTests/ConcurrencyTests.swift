import Bridge
import EventLoop
import Logging
import Synchronization
import Testing

@Suite("Client ↔ server over a Unix socket pair", .timeLimit(.minutes(5)))
struct ConcurrencyTests {
    @Test("10,000 requests, 64 in flight, every response matched to its request")
    func tenThousandRequests() async throws {
        let pair = try await ClientServerPair.start()
        let total = 10_000
        let inFlight = 64
        let matched = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<inFlight {
                group.addTask {
                    var ok = 0
                    var pid = UInt32(worker)
                    while Int(pid) < total {
                        if pid % 5 == 4 {
                            // Interleave another request type; its answer must not be taken for a wait's.
                            let response = try await pair.client.send(GetPropertiesRequest(base: RequestBase(containerId: "c\(pid)"), propertyTypes: ["ProcessList"]))
                            if try response.document().processList.count == 2 { ok += 1 }
                        } else {
                            let response = try await pair.client.send(WaitForProcessRequest(base: RequestBase(containerId: "c"), processId: pid))
                            if response.exitCode == pid &+ 1 { ok += 1 }
                        }
                        pid += UInt32(inFlight)
                    }
                    return ok
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(matched == total)
        #expect(pair.client.nextID == UInt64(total) + 1)  // ids 0…total, negotiation first
        #expect(pair.handler.calls.load(ordering: .relaxed) == total)
        await pair.stop()
    }

    @Test("DumpStacks lists the requests in flight and forgets answered ones",
          .timeLimit(.minutes(1)))
    func dumpStacksListsRequestsInFlight() async throws {
        let pair = try await ClientServerPair.start()
        let wait = Task { try await pair.client.send(WaitForProcessRequest(base: RequestBase(containerId: "held"), processId: 0xBEEF)) }
        do {
            // The wait is sent by another task: ask until the server reports it (bounded, no sleeping).
            var stacks = ""
            for _ in 0..<10_000 {
                stacks = try await pair.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))).guestStacks
                if stacks.contains("WaitForProcess") { break }
                await Task.yield()
            }
            #expect(stacks.hasPrefix("bridge: 1 other request in flight\n"))
            #expect(stacks.contains("ComputeSystemWaitForProcessV1 #") && stacks.contains(" container held for "))
            #expect(stacks.contains("task 1 [running]"))  // the handler's own part follows
            pair.handler.releaseGate()
            #expect(try await wait.value.exitCode == 0xBEEF + 1)
            // Its entry went before its response was written.
            stacks = try await pair.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))).guestStacks
            #expect(stacks.hasPrefix("bridge: 0 other requests in flight\n"))
        } catch {
            pair.handler.releaseGate()  // never leave the held wait behind
            await pair.stop()
            throw error
        }
        await pair.stop()
    }

    /// The agent counts its host link lost in `onReadEnded` (the init stdio re-dial's grace
    /// must not take a dead connection for a live one while a create or delete runs on).
    @Test("a closed connection is reported as soon as reading ends, before a slow handler has finished",
          .timeLimit(.minutes(1)))
    func readEndReportedBeforeSlowHandlers() async throws {
        let (hostEnd, guestEnd) = try AsyncFD.socketPair()
        let handler = FakeHandler()
        var logger = Logger(label: "test.bridge")
        logger.logLevel = .warning
        let server = BridgeServer(connection: guestEnd, handler: handler, logger: logger)
        let (readEnded, readEndedSink) = AsyncStream<Void>.makeStream()
        let serving = Task {
            await withDiscardingTaskGroup { carried in
                let ending = await server.serve(carrying: &carried, onReadEnded: { readEndedSink.yield() })
                carried.cancelAll()
                return ending
            }
        }
        let client = BridgeClient(connection: hostEnd, logger: logger)
        let clientTask = Task { await client.run() }
        _ = try await client.send(NegotiateProtocolRequest())
        let slow = Task { await client.sendExpectingFailure(DeleteContainerStateRequest(base: RequestBase(containerId: "slow"))) }
        var entered = handler.slowEntered.makeAsyncIterator()
        _ = await entered.next()
        client.close()  // the host goes away while the delete runs
        var ended = readEnded.makeAsyncIterator()
        _ = await ended.next()  // while the delete is held: never, if this waited for it (the time limit fails the test)
        handler.releaseGate()
        #expect(await serving.value == .closed)
        #expect(await slow.value)  // the host's request ended with its connection, unanswered
        _ = await clientTask.value
    }

    @Test("DumpStacks marks a WaitForProcess carried from an earlier connection", .timeLimit(.minutes(1)))
    func dumpStacksMarksCarriedWaits() async throws {
        var logger = Logger(label: "test.bridge")
        logger.logLevel = .warning
        let session = BridgeSession()
        let handler = FakeHandler()
        let (host1, guest1) = try AsyncFD.socketPair()
        let (host2, guest2) = try AsyncFD.socketPair()
        let first = BridgeServer(connection: guest1, handler: handler, logger: logger, session: session)
        let second = BridgeServer(connection: guest2, handler: handler, logger: logger, session: session)
        let serving = Task {
            await withDiscardingTaskGroup { carried in
                _ = await first.serve(carrying: &carried)
                _ = await second.serve(carrying: &carried)
                carried.cancelAll()
            }
        }
        let oldHost = BridgeClient(connection: host1, logger: logger)
        let oldReader = Task { await oldHost.run() }
        _ = try await oldHost.send(NegotiateProtocolRequest())
        let waitID = oldHost.nextID  // the wait's sequence number: the next request sent
        let held = Task { try? await oldHost.send(WaitForProcessRequest(base: RequestBase(containerId: "held"), processId: 0xBEEF)) }
        while oldHost.nextID == waitID { await Task.yield() }  // sent before anything else is
        // On the old connection the wait is its own (asked until the server has it: bounded, no sleeping).
        var stacks = ""
        for _ in 0..<10_000 {
            stacks = try await oldHost.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))).guestStacks
            if stacks.contains("WaitForProcess") { break }
            await Task.yield()
        }
        #expect(stacks.contains(" container held for ") && !stacks.contains("earlier connection"))
        oldHost.close()  // the host goes away; the wait goes on
        _ = await oldReader.value
        _ = await held.value
        let newHost = BridgeClient(connection: host2, logger: logger)
        let newReader = Task { await newHost.run() }
        _ = try await newHost.send(NegotiateProtocolRequest())
        stacks = try await newHost.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))).guestStacks
        #expect(stacks.hasPrefix("bridge: 1 other request in flight\n"))
        #expect(stacks.contains("ComputeSystemWaitForProcessV1 #\(waitID) container held for ") && stacks.contains(" ms, asked on an earlier connection\n"))
        newHost.close()  // before the wait answers: an id this host never sent would be an error to it
        _ = await newReader.value
        handler.releaseGate()
        await serving.value
    }

    @Test("a request held in its handler does not block later ones", .timeLimit(.minutes(1)))
    func slowDoesNotBlock() async throws {
        let pair = try await ClientServerPair.start()
        var entered = pair.handler.gatedEntered.makeAsyncIterator()
        async let held = pair.client.send(WaitForProcessRequest(base: RequestBase(containerId: "c"), processId: 0xBEEF))
        _ = await entered.next()
        // Answered while 0xBEEF is held in its handler (a server that served one request at a
        // time would hang here, and the time limit fail the test).
        for pid: UInt32 in [1, 2, 4, 5] {
            let r = try await pair.client.send(WaitForProcessRequest(base: RequestBase(containerId: "c"), processId: pid))
            #expect(r.exitCode == pid + 1)
        }
        pair.handler.releaseGate()
        #expect(try await held.exitCode == 0xBEEF + 1)
        await pair.stop()
    }

    @Test("handler errors become error responses with the HRESULT; the client reports them")
    func errorResponses() async throws {
        let pair = try await ClientServerPair.start()
        do {
            _ = try await pair.client.send(StartContainerRequest(base: RequestBase(containerId: "fail")))
            Issue.record("expected an error")
        } catch let error as GuestRPCError {
            #expect(error.hresult == .systemNotFound)
            #expect(error.base.errorMessage == "HRESULT 0xc037010e: container fail does not exist")
            #expect(error.base.errorRecords.first?.moduleName == "gcs")
        }
        let raw = try await pair.client.send(WaitForProcessRequest(base: RequestBase(containerId: "c"), processId: 0xDEAD), checkResult: false)
        #expect(raw.base.result == .notFound)
        #expect(raw.base.activityId == activity)
        await pair.stop()
    }

    @Test("notifications reach the host; one for an unknown container tears the bridge down")
    func notifications() async throws {
        let pair = try await ClientServerPair.start()
        let spec = JSONValue.object([("process", .object([("args", .array([.string("/pause")]))])), ("root", .emptyObject), ("linux", .emptyObject)])
        let settings = ContainerSettings(ociBundlePath: "/run/gcs/c/x", ociSpecification: spec, scratchDirPath: "/s")
        _ = try await pair.client.send(CreateContainerRequest(base: RequestBase(containerId: "x"), settings: settings))
        try await pair.server.sendNotification(ContainerNotification(base: RequestBase(containerId: "x", activityId: activity), type: "GracefulExit"))
        var iterator = pair.client.notifications.makeAsyncIterator()
        let first = await iterator.next()
        #expect(first?.base.containerId == "x")
        #expect(first?.type == "GracefulExit")
        // A second notification for the same container is fatal for the host.
        try await pair.server.sendNotification(ContainerNotification(base: RequestBase(containerId: "x", activityId: activity)))
        let reason = await pair.clientTask.value
        guard case .protocolViolation(let text) = reason else { Issue.record("expected teardown, got \(String(describing: reason))"); return }
        #expect(text.contains("not found"))
        _ = await pair.serverTask.value
    }

    @Test("a cancelled request's late answer is discarded without tearing the bridge down", .timeLimit(.minutes(1)))
    func cancellation() async throws {
        let pair = try await ClientServerPair.start()
        var entered = pair.handler.gatedEntered.makeAsyncIterator()
        var written = pair.handler.answerWritten.makeAsyncIterator()
        let task = Task { try await pair.client.send(WaitForProcessRequest(base: RequestBase(containerId: "c"), processId: 0xBEEF)) }
        _ = await entered.next()  // the request is in its handler: its answer will come
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        pair.handler.releaseGate()
        _ = await written.next()  // the late answer is on the wire, ahead of the next one
        let r = try await pair.client.send(WaitForProcessRequest(base: RequestBase(containerId: "c"), processId: 21))
        #expect(r.exitCode == 22)
        #expect(pair.client.closeReason == nil)
        await pair.stop()
    }

    @Test("a WaitForProcess answer's callback runs once its response is written, and not for an error answer",
          .timeLimit(.minutes(1)))
    func answeredCallback() async throws {
        let pair = try await ClientServerPair.start()
        let answer = try await pair.client.send(WaitForProcessRequest(base: RequestBase(containerId: "c"), processId: 41))
        #expect(answer.exitCode == 42)
        // The callback runs right after the write, in the request's task: the client may see
        // the response first.
        while pair.handler.answers.load(ordering: .relaxed) < 1 { await Task.yield() }
        let failed = await pair.client.sendExpectingFailure(WaitForProcessRequest(base: RequestBase(containerId: "c"), processId: 0xDEAD))
        #expect(failed)
        _ = try await pair.client.send(WaitForProcessRequest(base: RequestBase(containerId: "c"), processId: 1))
        while pair.handler.answers.load(ordering: .relaxed) < 2 { await Task.yield() }
        #expect(pair.handler.answers.load(ordering: .relaxed) == 2)  // the error answer added none
        await pair.stop()
    }

    @Test("UVM shutdown gets no response; every other shutdown does")
    func uvmShutdownSilent() async throws {
        let pair = try await ClientServerPair.start()
        let answered = Flag()
        let silent = Task {
            _ = try await pair.client.send(ShutdownForcedRequest(base: RequestBase(containerId: uvmContainerID)))
            answered.value.store(true, ordering: .relaxed)
        }
        while pair.client.nextID < 2 { await Task.yield() }
        // Sent after the UVM shutdown, read after it by the guest, answered.
        _ = try await pair.client.send(ShutdownGracefulRequest(base: RequestBase(containerId: "c")))
        _ = try await pair.client.send(StartContainerRequest(base: RequestBase(containerId: "c")))
        let wasAnswered = answered.value.load(ordering: .relaxed)
        #expect(!wasAnswered)
        silent.cancel()
        _ = try? await silent.value
        await pair.stop()
    }
}

/// A shareable boolean.
final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

extension BridgeClient {
    /// Whether `request` was answered with an error.
    func sendExpectingFailure<R: BridgeRequest>(_ request: R) async -> Bool {
        do { _ = try await send(request); return false } catch { return true }
    }
}
