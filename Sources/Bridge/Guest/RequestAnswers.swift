import FoundationEssentials
import Logging

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
    let logger: Logger

    /// The response body; nil when none is sent (the UVM powering off). Every kind's function
    /// returns a `Data?`, which comes back in registers (a larger result would keep a slot per
    /// call site in this frame), and none of these functions hops executors on entry
    /// (`nonisolated(nonsending)`: each hop is a `swift_task_switch`, which takes the task's
    /// status lock). WaitForProcess is not answered here (`BridgeServer.runWait`).
    /// `inFlight`: for DumpStacks, which lists the other requests in flight (`token` its own).
    nonisolated(nonsending) func answer(_ routed: RoutedRequest, activityId: String, header: FrameHeader,
                                        inFlight: InFlightRequests, token: UInt64) async -> Data? {
        do {
            switch routed {
            case .negotiateProtocol: preconditionFailure("NegotiateProtocol is answered inline by the server")
            case .waitForProcess: preconditionFailure("WaitForProcess runs in a task of its own (BridgeServer.runWait)")
            case .create: return try await create(routed, activityId)
            case .start: return try await start(routed, activityId)
            case .shutdownGraceful, .shutdownForced: return try await shutdown(routed, activityId)
            case .executeProcess: return try await executeProcess(routed, activityId)
            case .signalProcess: return try await signalProcess(routed, activityId)
            case .resizeConsole: return try await resizeConsole(routed, activityId)
            case .getProperties: return try await getProperties(routed, activityId)
            case .modifySettings: return try await modifySettings(routed, activityId)
            case .dumpStacks: return try await dumpStacks(routed, activityId, inFlight.report(excluding: token))
            case .deleteContainerState: return try await deleteContainerState(routed, activityId)
            }
        } catch {
            return failure(error, activityId, header: header)
        }
    }

    /// The body answering a request that failed with `error`, which is logged (debug).
    @inline(never)
    func failure(_ error: any Error, _ activityId: String, header: FrameHeader) -> Data {
        let bridgeError = error as? BridgeError ?? BridgeError(.fail, String(describing: error))
        if logger.logLevel <= .debug {
            logger.debug("bridge request failed", metadata: ["type": "\(header.type)", "id": "\(header.id)", "error": "\(bridgeError)"])
        }
        return OutgoingBodies.failure(bridgeError, activityId: activityId, limit: outgoingLimit)
    }

    /// A WaitForProcess's answer (for `BridgeServer.runWait`), out of line.
    @inline(never)
    func waitResponse(_ exitCode: UInt32, _ activityId: String) -> Data {
        answer(WaitForProcessResponse(exitCode: exitCode), activityId)
    }

    // One function per kind, each binding its own payload (`routed` is borrowed, not copied).

    @inline(never)
    nonisolated(nonsending) private func create(_ routed: RoutedRequest, _ activityId: String) async throws -> Data? {
        guard case .create(let request, let settings) = routed else { preconditionFailure() }
        return answer(try await handler.createContainer(request, settings: settings), activityId)
    }

    @inline(never)
    nonisolated(nonsending) private func start(_ routed: RoutedRequest, _ activityId: String) async throws -> Data? {
        guard case .start(let request) = routed else { preconditionFailure() }
        try await handler.startContainer(request)
        return answer(EmptyResponse(), activityId)
    }

    /// No response at all when the UVM is powering off.
    @inline(never)
    nonisolated(nonsending) private func shutdown(_ routed: RoutedRequest, _ activityId: String) async throws -> Data? {
        let reply: ShutdownReply
        switch routed {
        case .shutdownGraceful(let request): reply = try await handler.shutdownContainer(request.base, forced: false)
        case .shutdownForced(let request): reply = try await handler.shutdownContainer(request.base, forced: true)
        default: preconditionFailure()
        }
        return reply == .noResponse ? nil : answer(EmptyResponse(), activityId)
    }

    @inline(never)
    nonisolated(nonsending) private func executeProcess(_ routed: RoutedRequest, _ activityId: String) async throws -> Data? {
        guard case .executeProcess(let request, let parameters) = routed else { preconditionFailure() }
        return answer(ExecuteProcessResponse(processId: try await handler.executeProcess(request, parameters: parameters)), activityId)
    }

    @inline(never)
    nonisolated(nonsending) private func signalProcess(_ routed: RoutedRequest, _ activityId: String) async throws -> Data? {
        guard case .signalProcess(let request) = routed else { preconditionFailure() }
        try await handler.signalProcess(request)
        return answer(EmptyResponse(), activityId)
    }

    @inline(never)
    nonisolated(nonsending) private func resizeConsole(_ routed: RoutedRequest, _ activityId: String) async throws -> Data? {
        guard case .resizeConsole(let request) = routed else { preconditionFailure() }
        try await handler.resizeConsole(request)
        return answer(EmptyResponse(), activityId)
    }

    @inline(never)
    nonisolated(nonsending) private func getProperties(_ routed: RoutedRequest, _ activityId: String) async throws -> Data? {
        guard case .getProperties(let request, let query) = routed else { preconditionFailure() }
        let document = try await handler.getProperties(request, query: query)
        let text = try document.embedded(fittingEncodedBytes: outgoingLimit - 128 - activityId.utf8.count)
        return answer(GetPropertiesResponse(properties: text), activityId)
    }

    @inline(never)
    nonisolated(nonsending) private func modifySettings(_ routed: RoutedRequest, _ activityId: String) async throws -> Data? {
        guard case .modifySettings(let request) = routed else { preconditionFailure() }
        try await handler.modifySettings(request)
        return answer(EmptyResponse(), activityId)
    }

    /// `requests`: the other requests in flight, first: the handler's state may be long and
    /// is cut at the end.
    @inline(never)
    nonisolated(nonsending) private func dumpStacks(_ routed: RoutedRequest, _ activityId: String, _ requests: String) async throws -> Data? {
        guard case .dumpStacks(let request) = routed else { preconditionFailure() }
        return answer(DumpStacksResponse(guestStacks: requests + (try await handler.dumpStacks(request))), activityId)
    }

    @inline(never)
    nonisolated(nonsending) private func deleteContainerState(_ routed: RoutedRequest, _ activityId: String) async throws -> Data? {
        guard case .deleteContainerState(let request) = routed else { preconditionFailure() }
        try await handler.deleteContainerState(request)
        return answer(EmptyResponse(), activityId)
    }

    private func answer<R: BridgeResponse>(_ response: R, _ activityId: String) -> Data {
        var response = response
        response.base.activityId = activityId
        return OutgoingBodies.response(response, limit: outgoingLimit)
    }
}
