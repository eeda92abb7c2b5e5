/// A decoded, validated request, ready for a handler.
public indirect enum RoutedRequest: Sendable {
    case negotiateProtocol(NegotiateProtocolRequest)
    case create(CreateContainerRequest, ContainerSettings)
    case start(StartContainerRequest)
    case shutdownGraceful(ShutdownGracefulRequest)
    case shutdownForced(ShutdownForcedRequest)
    case executeProcess(ExecuteProcessRequest, ProcessParameters)
    case waitForProcess(WaitForProcessRequest)
    case signalProcess(SignalProcessRequest)
    case resizeConsole(ResizeConsoleRequest)
    case getProperties(GetPropertiesRequest, PropertyQuery)
    case modifySettings(ModifySettingsRequest)
    case dumpStacks(DumpStacksRequest)
    case deleteContainerState(DeleteContainerStateRequest)

    /// The request base (for `ActivityId` echo and logging).
    public var base: RequestBase {
        switch self {
        case .negotiateProtocol(let r): return r.base
        case .create(let r, _): return r.base
        case .start(let r): return r.base
        case .shutdownGraceful(let r): return r.base
        case .shutdownForced(let r): return r.base
        case .executeProcess(let r, _): return r.base
        case .waitForProcess(let r): return r.base
        case .signalProcess(let r): return r.base
        case .resizeConsole(let r): return r.base
        case .getProperties(let r, _): return r.base
        case .modifySettings(let r): return r.base
        case .dumpStacks(let r): return r.base
        case .deleteContainerState(let r): return r.base
        }
    }
}

/// What to do with one incoming frame.
public enum RouteDecision: Sendable {
    /// Hand the request to the handler.
    case dispatch(RoutedRequest)
    /// Answer at once with this error (and the `ActivityId` recovered from the body, if any).
    case reject(BridgeError, activityId: String)
}

/// Turns one frame into a routed request or an error answer, with the Go guest's rules (§7.2,
/// §8.12): before negotiation everything but NegotiateProtocol is E_NOTIMPL, a second
/// negotiation is E_NOTIMPL, unknown identifiers (and responses or notifications sent to the
/// guest) are E_NOTIMPL with the "function not supported" text, undecodable bodies and
/// embedded documents are `0xC037010D`. Pure and synchronous, so the fuzzer drives it directly
/// and bodies are decoded in place from the read buffer.
public enum RequestRouter {
    public static func route(type: MessageIdentifier, body: UnsafeRawBufferPointer, negotiated: Bool) -> RouteDecision {
        let known = isImplemented(type)
        let allowed = negotiated ? (known && type != .negotiateProtocol) : type == .negotiateProtocol
        guard allowed else {
            return .reject(.notSupported(type), activityId: RequestBase.lenient(from: body).activityId)
        }
        do {
            return .dispatch(try decode(type: type, body: body))
        } catch {
            return .reject(error, activityId: RequestBase.lenient(from: body).activityId)
        }
    }

    /// Whether a v4 handler exists for `type` (the requests of §3.2 the Linux guest handles).
    public static func isImplemented(_ type: MessageIdentifier) -> Bool {
        switch type {
        case .create, .start, .shutdownGraceful, .shutdownForced, .executeProcess, .waitForProcess,
             .signalProcess, .resizeConsole, .getProperties, .modifySettings, .negotiateProtocol,
             .dumpStacks, .deleteContainerState:
            return true
        default:
            return false
        }
    }

    static func decode(type: MessageIdentifier, body raw: UnsafeRawBufferPointer) throws(BridgeError) -> RoutedRequest {
        func body<T: BridgeMessageCoding>(_ t: T.Type) throws(BridgeError) -> T {
            do {
                // Go's json.Unmarshal treats a literal `null` body as "leave everything zero".
                return try T.fromMessageBody(raw)
            } catch {
                throw .invalidJSON("message", error)
            }
        }
        switch type {
        case .negotiateProtocol: return .negotiateProtocol(try body(NegotiateProtocolRequest.self))
        case .create:
            let request = try body(CreateContainerRequest.self)
            return .create(request, try request.settings())
        case .start: return .start(try body(StartContainerRequest.self))
        case .shutdownGraceful: return .shutdownGraceful(try body(ShutdownGracefulRequest.self))
        case .shutdownForced: return .shutdownForced(try body(ShutdownForcedRequest.self))
        case .executeProcess:
            let request = try body(ExecuteProcessRequest.self)
            return .executeProcess(request, try request.parameters())
        case .waitForProcess: return .waitForProcess(try body(WaitForProcessRequest.self))
        case .signalProcess: return .signalProcess(try body(SignalProcessRequest.self))
        case .resizeConsole: return .resizeConsole(try body(ResizeConsoleRequest.self))
        case .getProperties:
            let request = try body(GetPropertiesRequest.self)
            return .getProperties(request, try request.decodedQuery())
        case .modifySettings:
            let request = try body(ModifySettingsRequest.self)
            try request.validate()
            return .modifySettings(request)
        case .dumpStacks:
            // Go's dumpStacksV2 never decodes its message: any body gets the stacks (an operator
            // asking for them must not be refused over JSON); what can be read of it is kept.
            if let request = try? body(DumpStacksRequest.self) { return .dumpStacks(request) }
            let base = RequestBase.lenient(from: raw)
            return .dumpStacks(DumpStacksRequest(base: RequestBase(containerId: base.containerId, activityId: base.activityId)))
        case .deleteContainerState: return .deleteContainerState(try body(DeleteContainerStateRequest.self))
        default: throw .notSupported(type)
        }
    }

    /// The negotiation rule (§7.2): the range must include 4.
    public static func negotiate(_ request: NegotiateProtocolRequest) throws(BridgeError) -> UInt32 {
        if request.maximumVersion < 4 || request.minimumVersion > 4 {
            throw BridgeError(.unsupportedProtocolVersion)
        }
        return min(4, request.maximumVersion)
    }
}
