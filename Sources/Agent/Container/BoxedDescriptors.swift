import EventLoop
import Glibc
import Synchronization

/// A box that lets a `~Copyable` descriptor sit in an enum case, an optional or an `async let`
/// and be taken out once; closes it if never taken.
final class OwnedFDBox: Sendable {
    private let fd: Mutex<Int32>
    init(_ owned: consuming OwnedFD) { fd = Mutex(owned.release()) }
    /// The raw descriptor while still boxed (-1 once taken).
    var rawValue: Int32 { fd.withLock { $0 } }
    func take() -> OwnedFD {
        let raw = fd.withLock { value -> Int32 in defer { value = -1 }; return value }
        precondition(raw >= 0, "descriptor taken twice")
        return OwnedFD(adopting: raw)
    }
    deinit { let raw = fd.withLock { $0 }; if raw >= 0 { Glibc.close(raw) } }
}

/// A blocking pipe whose ends are boxed: the child's end is passed to runc, ours is taken.
struct BoxedPipe {
    let read: OwnedFDBox
    let write: OwnedFDBox
    init() throws {
        let pipe = try Pipes.make(nonBlocking: false)
        read = OwnedFDBox(pipe.first)
        write = OwnedFDBox(pipe.second)
    }
}
