import Glibc

/// Runs a blocking call (a recursive delete of a container's writable layer, which can take
/// seconds when the container wrote many files) on a thread of its own, so the loop thread,
/// which serves every request and relay, never waits for it. One short-lived thread per call:
/// such calls are rare (container deletes), and a thread that exits when done keeps the
/// agent's idle thread count where it is, unlike a pool.
public enum BlockingWork {
    /// Runs `body` on a new thread and returns its result. If no thread can be started, `body`
    /// runs on the caller's thread instead (the work must not be skipped).
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<T, Never>) in
            let job = Job { continuation.resume(returning: body()) }
            let box = Unmanaged.passRetained(job)
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            defer { pthread_attr_destroy(&attributes) }
            pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
            var thread = pthread_t()
            let rc = pthread_create(&thread, &attributes, { argument in
                Unmanaged<Job>.fromOpaque(argument!).takeRetainedValue().body()
                return nil
            }, box.toOpaque())
            if rc != 0 {
                box.release()
                job.body()
            }
        }
    }

    /// The closure handed to the thread (a class: it crosses the C boundary as one pointer).
    private final class Job: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}
