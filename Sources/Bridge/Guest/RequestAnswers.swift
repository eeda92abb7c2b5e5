import FoundationEssentials

/// The response body for one routed request, from the handler's result or error.
///
/// Exists apart from `BridgeServer.run` to keep each request's task small. Every request runs
/// in a task of its own, and a task takes its async frames from its own allocator: the first
/// 984 bytes come with the task, anything past that is a fresh malloc'd slab. One function with
/// a case per request kind had one async frame of about 3.9 KB (each case's values, kept across
/// its await, in slots of their own), so every request, a no-op included, cost a 4 KiB slab, and
/// every WaitForProcess held one for as long as its process ran (hcsshim keeps one in flight per
/// process). Here each kind is answered by a function of its own, never inlined, and the task
/// allocates the frame of the kind it serves only.
struct RequestAnswers<Handler: BridgeHandler>: Sendable {
    let handler: Handler
    /// Largest response body.
    let outgoingLimit: Int

    /// A response body (nil: none is sent), what to run once it is written (or could not be),
    /// and the error it reports, if any (for the log).
    struct Answer {
        var body: Data?
        var afterResponse: (@Sendable (_ delivered: Bool) async -> Void)?
        var failure: BridgeError?
    }

    /// `inFlightReport`: the other requests in flight, the head of a DumpStacks answer.
    func answer(_ routed: RoutedRequest, activityId: String, inFlightReport: @escaping @Sendable () -> String) async -> Answer {
        // One await for every kind: each call site of an async function keeps a slot for its
        // result in the frame, so a switch of awaits would grow this frame by one per kind.
        let operation = operation(for: routed, activityId: activityId, inFlightReport: inFlightReport)
        do {
            return try await operation()
        } catch {
            return failure(error, activityId)
        }
    }

    /// The answer to a request that failed with `error` (body and failure both set).
    @inline(never)
    func failure(_ error: any Error, _ activityId: String) -> Answer {
        let bridgeError = error as? BridgeError ?? BridgeError(.fail, String(describing: error))
        return Answer(body: OutgoingBodies.failure(bridgeError, activityId: activityId, limit: outgoingLimit), failure: bridgeError)
    }

    private func operation(for routed: RoutedRequest, activityId: String,
                           inFlightReport: @escaping @Sendable () -> String) -> @Sendable () async throws -> Answer {
        switch routed {
        case .negotiateProtocol:
            preconditionFailure("NegotiateProtocol is answered inline by the server")
        case .create: return { try await create(routed, activityId) }
        case .start: return { try await start(routed, activityId) }
        case .shutdownGraceful, .shutdownForced: return { try await shutdown(routed, activityId) }
        case .executeProcess: return { try await executeProcess(routed, activityId) }
        case .waitForProcess(let request): return { await waitForProcess(request) }
        case .signalProcess: return { try await signalProcess(routed, activityId) }
        case .resizeConsole: return { try await resizeConsole(routed, activityId) }
        case .getProperties: return { try await getProperties(routed, activityId) }
        case .modifySettings: return { try await modifySettings(routed, activityId) }
        case .dumpStacks: return { try await dumpStacks(routed, activityId, inFlightReport) }
        case .deleteContainerState: return { try await deleteContainerState(routed, activityId) }
        }
    }

    // One function per kind, each binding its own payload (`routed` is borrowed, not copied).

    @inline(never)
    private func create(_ routed: RoutedRequest, _ activityId: String) async throws -> Answer {
        guard case .create(let request, let settings) = routed else { preconditionFailure() }
        return answer(try await handler.createContainer(request, settings: settings), activityId)
    }

    @inline(never)
    private func start(_ routed: RoutedRequest, _ activityId: String) async throws -> Answer {
        guard case .start(let request) = routed else { preconditionFailure() }
        try await handler.startContainer(request)
        return answer(EmptyResponse(), activityId)
    }

    /// No response at all when the UVM is powering off.
    @inline(never)
    private func shutdown(_ routed: RoutedRequest, _ activityId: String) async throws -> Answer {
        let reply: ShutdownReply
        switch routed {
        case .shutdownGraceful(let request): reply = try await handler.shutdownContainer(request.base, forced: false)
        case .shutdownForced(let request): reply = try await handler.shutdownContainer(request.base, forced: true)
        default: preconditionFailure()
        }
        return reply == .noResponse ? Answer(body: nil) : answer(EmptyResponse(), activityId)
    }

    @inline(never)
    private func executeProcess(_ routed: RoutedRequest, _ activityId: String) async throws -> Answer {
        guard case .executeProcess(let request, let parameters) = routed else { preconditionFailure() }
        return answer(ExecuteProcessResponse(processId: try await handler.executeProcess(request, parameters: parameters)), activityId)
    }

    @inline(never)
    private func waitForProcess(_ request: WaitForProcessRequest) async -> Answer {
        do {
            let exit = try await handler.waitForProcess(request)
            var answer = Answer(body: waitResponse(exit.exitCode, request.base.activityId))
            answer.afterResponse = exit.answered
            return answer
        } catch {
            return failure(error, request.base.activityId)
        }
    }

    // For the server's lean task of a wait (`BridgeServer.runWait`), out of line.

    @inline(never)
    func waitResponse(_ exitCode: UInt32, _ activityId: String) -> Data {
        answer(WaitForProcessResponse(exitCode: exitCode), activityId).body!
    }

    @inline(never)
    private func signalProcess(_ routed: RoutedRequest, _ activityId: String) async throws -> Answer {
        guard case .signalProcess(let request) = routed else { preconditionFailure() }
        try await handler.signalProcess(request)
        return answer(EmptyResponse(), activityId)
    }

    @inline(never)
    private func resizeConsole(_ routed: RoutedRequest, _ activityId: String) async throws -> Answer {
        guard case .resizeConsole(let request) = routed else { preconditionFailure() }
        try await handler.resizeConsole(request)
        return answer(EmptyResponse(), activityId)
    }

    @inline(never)
    private func getProperties(_ routed: RoutedRequest, _ activityId: String) async throws -> Answer {
        guard case .getProperties(let request, let query) = routed else { preconditionFailure() }
        let document = try await handler.getProperties(request, query: query)
        let text = try document.embedded(fittingEncodedBytes: outgoingLimit - 128 - activityId.utf8.count)
        return answer(GetPropertiesResponse(properties: text), activityId)
    }

    @inline(never)
    private func modifySettings(_ routed: RoutedRequest, _ activityId: String) async throws -> Answer {
        guard case .modifySettings(let request) = routed else { preconditionFailure() }
        try await handler.modifySettings(request)
        return answer(EmptyResponse(), activityId)
    }

    @inline(never)
    private func dumpStacks(_ routed: RoutedRequest, _ activityId: String, _ inFlightReport: @Sendable () -> String) async throws -> Answer {
        guard case .dumpStacks(let request) = routed else { preconditionFailure() }
        // The requests first: the handler's state may be long and is cut at the end.
        let requests = inFlightReport()
        return answer(DumpStacksResponse(guestStacks: requests + (try await handler.dumpStacks(request))), activityId)
    }

    @inline(never)
    private func deleteContainerState(_ routed: RoutedRequest, _ activityId: String) async throws -> Answer {
        guard case .deleteContainerState(let request) = routed else { preconditionFailure() }
        try await handler.deleteContainerState(request)
        return answer(EmptyResponse(), activityId)
    }

    private func answer<R: BridgeResponse>(_ response: R, _ activityId: String) -> Answer {
        var response = response
        response.base.activityId = activityId
        return Answer(body: OutgoingBodies.response(response, limit: outgoingLimit))
    }
}
