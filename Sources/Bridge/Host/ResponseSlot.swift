import Synchronization

/// A one-shot result that one task awaits and another delivers, in either order. Exists so a
/// request can be registered (and its frame queued) before its sender suspends, and so a
/// cancelled sender can walk away while the late response is still delivered harmlessly.
/// The continuation is an unsafe one (a checked one allocates a canary per request): `resolved`
/// and the lock guarantee it is resumed exactly once, by whichever of the two calls comes second.
///
/// Not generic: `BridgeClient.send` is generic over the request and is not specialised in its
/// callers' modules, so a generic slot made the runtime look up the metadata of the slot, its
/// state, the result and the continuation for each request. The response travels boxed
/// (`ResponseBox`), one lookup.
final class ResponseSlot: Sendable {
    typealias Value = any AnyObject & Sendable

    private struct State {
        var result: Result<Value, any Error>?
        var continuation: UnsafeContinuation<Value, any Error>?
        var resolved = false
    }

    private let state = Mutex(State())

    /// Delivers `result`; later calls are ignored.
    func resolve(_ result: Result<Value, any Error>) {
        let waiter = state.withLock { s -> UnsafeContinuation<Value, any Error>? in
            if s.resolved { return nil }
            s.resolved = true
            if let c = s.continuation {
                s.continuation = nil
                return c
            }
            s.result = result
            return nil
        }
        waiter?.resume(with: result)
    }

    /// The result, waiting for it if needed.
    func value() async throws -> Value {
        try await withUnsafeThrowingContinuation { continuation in
            let ready = state.withLock { s -> Result<Value, any Error>? in
                if let r = s.result { return r }
                s.continuation = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

/// A response on its way through a `ResponseSlot`; the sender, which knows its type, unboxes it.
final class ResponseBox<Response: Sendable>: Sendable {
    let value: Response
    init(_ value: Response) { self.value = value }
}
