import Glibc
import Shims

/// The loop's io_uring, when the kernel allows one. io_uring can be disabled by kernel config,
/// by `kernel.io_uring_disabled`, or by a seccomp filter (container runtimes often block it), so
/// it is probed once at start-up and the loop runs on epoll alone when it is not there.
/// Setting `GCS_IO_URING=0` in the environment forces the epoll-only path.
///
/// Completions are reaped on the loop thread when the ring's descriptor (registered with epoll)
/// becomes readable; each submission carries a handler called there with the CQE's result.
public final class Uring: @unchecked Sendable {
    // @unchecked: the ring and the handler table are only used on the owning loop's thread.

    private let ring: OpaquePointer
    /// The ring's descriptor, polled by the loop's epoll.
    let ringFD: Int32
    private var handlers: [UInt64: (Int32) -> Void] = [:]
    private var nextID: UInt64 = 1
    private var unsubmitted = 0

    /// Why io_uring is not in use, when `probe` returned nil (for logs and diagnostics).
    nonisolated(unsafe) public private(set) static var unavailableReason: String?

    private init(ring: OpaquePointer) {
        self.ring = ring
        ringFD = shim_uring_fd(ring)
    }

    deinit {
        shim_uring_exit(ring)
    }

    /// A ring with splice support, or nil (with `unavailableReason` set).
    static func probe(entries: UInt32 = 256) -> Uring? {
        if let value = getenv("GCS_IO_URING"), String(cString: value) == "0" {
            unavailableReason = "disabled by GCS_IO_URING=0"
            return nil
        }
        var rc: Int32 = 0
        guard let ring = shim_uring_create(entries, &rc) else {
            unavailableReason = "io_uring_queue_init: \(String(cString: strerror(-rc)))"
            return nil
        }
        guard shim_uring_op_supported(ring, shim_ioring_op_splice()) == 1 else {
            shim_uring_exit(ring)
            unavailableReason = "kernel lacks IORING_OP_SPLICE"
            return nil
        }
        return Uring(ring: ring)
    }

    /// Loop thread: queues a splice of up to `length` bytes from `source` to `destination`;
    /// `completion` gets the byte count or `-errno`. Submitted at the end of the loop turn.
    func splice(from source: Int32, to destination: Int32, length: UInt32, flags: UInt32 = 0,
                completion: @escaping (Int32) -> Void) -> Bool {
        guard let sqe = nextSQE() else { return false }
        let id = register(completion)
        shim_uring_prep_splice(sqe, source, destination, length, flags, id)
        return true
    }

    /// Loop thread: queues a read into `buffer` (kept alive by the caller until completion).
    func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, completion: @escaping (Int32) -> Void) -> Bool {
        guard let sqe = nextSQE() else { return false }
        let id = register(completion)
        shim_uring_prep_read(sqe, fd, buffer.baseAddress, UInt32(buffer.count), id)
        return true
    }

    /// Loop thread: queues a write of `buffer` (kept alive by the caller until completion).
    func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer, completion: @escaping (Int32) -> Void) -> Bool {
        guard let sqe = nextSQE() else { return false }
        let id = register(completion)
        shim_uring_prep_write(sqe, fd, buffer.baseAddress, UInt32(buffer.count), id)
        return true
    }

    private func nextSQE() -> OpaquePointer? {
        if let sqe = shim_uring_get_sqe(ring) { unsubmitted += 1; return sqe }
        // The submission queue is full: push it to the kernel and try once more.
        submit()
        if let sqe = shim_uring_get_sqe(ring) { unsubmitted += 1; return sqe }
        return nil
    }

    private func register(_ completion: @escaping (Int32) -> Void) -> UInt64 {
        let id = nextID
        nextID &+= 1
        handlers[id] = completion
        return id
    }

    /// Loop thread: hands queued submissions to the kernel. What it does not take (an error
    /// such as EBUSY while the completion queue overflows, or a partial submit) stays queued
    /// and is offered again next turn (`hasUnsubmitted` keeps the loop from blocking meanwhile).
    func submit() {
        guard unsubmitted > 0 else { return }
        let submitted = shim_uring_submit(ring)
        if submitted > 0 { unsubmitted = max(0, unsubmitted - Int(submitted)) }
    }

    /// Loop thread: submissions are still waiting for the kernel to take them.
    var hasUnsubmitted: Bool { unsubmitted > 0 }

    /// Loop thread: calls the handlers of every completion that has arrived.
    func reap() {
        var cqe: OpaquePointer?
        while shim_uring_peek_cqe(ring, &cqe) == 0, let entry = cqe {
            let id = shim_uring_cqe_data(entry)
            let result = shim_uring_cqe_res(entry)
            shim_uring_cqe_seen(ring, entry)
            handlers.removeValue(forKey: id)?(result)
        }
    }

    /// Submissions whose completion has not arrived yet.
    var inFlight: Int { handlers.count }
}

extension EventLoop {
    /// One splice of up to `length` bytes from `source` to `destination` through the loop's
    /// io_uring; returns the byte count (0 at EOF). Throws `SyscallError` with the CQE's errno,
    /// or ENOSYS when the loop runs without io_uring. The descriptors must stay open until it
    /// returns (the kernel uses them until the completion arrives).
    ///
    /// Stdio relays do not use this: measured on the relay workloads (RelayBench, CBench's
    /// uring relay), IORING_OP_SPLICE runs on io-wq kernel workers and costs more CPU per GB
    /// than splice(2) driven by epoll, which is what a dense VM pays for.
    public func uringSplice(from source: Int32, to destination: Int32, length: UInt32) async throws -> Int {
        let result: Int32 = await withUnsafeContinuation { continuation in
            execute { [self] in
                guard let uring else { continuation.resume(returning: -ENOSYS); return }
                if !uring.splice(from: source, to: destination, length: length, completion: { continuation.resume(returning: $0) }) {
                    continuation.resume(returning: -EBUSY)
                }
            }
        }
        if result < 0 { throw SyscallError("io_uring splice(\(source) -> \(destination))", errno: -result) }
        return Int(result)
    }
}
