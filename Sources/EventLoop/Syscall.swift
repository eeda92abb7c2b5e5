import Glibc
import Shims

/// A failed system call, with the operation that failed and its errno, so that errors reaching
/// a log or the host say what went wrong ("connect(/run/gcs_1073741825): ENOENT").
public struct SyscallError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The call and, where useful, its subject, e.g. `"splice"` or `"connect(/tmp/x_5)"`.
    public let operation: String
    /// The errno the call failed with.
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        "\(operation): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a non-blocking call: a value, or "would block" (EAGAIN/EWOULDBLOCK).
@usableFromInline
enum NonBlocking<Value> {
    case done(Value)
    case wouldBlock
}

/// Every system call goes through here: EINTR is retried, EBADF is a bug in fd ownership (an fd
/// was used after close or closed twice) and stops the process rather than touching a reused fd.
@inlinable @inline(__always)
func sys<T: FixedWidthInteger>(_ name: @autoclosure () -> String, _ body: () -> T) throws(SyscallError) -> T {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        precondition(code != EBADF, "EBADF from \(name()): fd ownership bug")
        throw SyscallError(name(), errno: code)
    }
}

/// Like `sys`, but EAGAIN/EWOULDBLOCK is an expected outcome rather than an error.
@inlinable @inline(__always)
func sysNonBlocking<T: FixedWidthInteger>(
    _ name: @autoclosure () -> String, _ body: () -> T
) throws(SyscallError) -> NonBlocking<T> {
    while true {
        let result = body()
        if result >= 0 { return .done(result) }
        let code = Glibc.errno
        if code == EINTR { continue }
        if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
        precondition(code != EBADF, "EBADF from \(name()): fd ownership bug")
        throw SyscallError(name(), errno: code)
    }
}
