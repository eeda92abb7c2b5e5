import Glibc
import Shims
import Synchronization

/// A file that relays append a copy of their stream to, besides delivering it: hcsshim's tee
/// log of a container's output inside the VM. Several relays may share one (a process's stdout
/// and stderr): each appends whole chunks, in the order it read them. The file is closed when
/// the last relay holding it is gone.
///
/// Writes are plain blocking `write(2)`s on the loop thread: a regular file's take the page
/// cache, not the disk. A write that fails (a full disk) stops the copying for every relay
/// sharing the file, never the relays themselves: the host's stream matters more than its copy.
/// `error` then says why.
public final class TeeFile: Sendable {
    public let path: String
    private let fd: Int32
    private let failure = Mutex<SyscallError?>(nil)
    private let failed = Atomic<Bool>(false)

    /// Opens `path`, relative to `directory`, for appending, creating it (mode 0666 less the
    /// umask, as Go's guest does). No symlink is followed below `directory`, and the file must
    /// be a regular one: the directory may be writable by containers.
    public init(directory: String, path: String) throws(SyscallError) {
        let fd = shim_open_append_beneath(directory, path, 0o666)
        guard fd >= 0 else { throw SyscallError("open(\(directory)/\(path))", errno: errno) }
        self.path = "\(directory)/\(path)"
        self.fd = fd
    }

    deinit { close(fd) }

    /// The write error that stopped the copying, if one did.
    public var error: SyscallError? { failure.withLock { $0 } }

    /// Appends `bytes` whole (through short writes); false once the file has failed.
    @discardableResult
    func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !failed.load(ordering: .relaxed), let base = bytes.baseAddress else { return !failed.load(ordering: .relaxed) }
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, base + offset, bytes.count - offset)
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            let error = SyscallError("write(\(path))", errno: n < 0 ? errno : EIO)
            failure.withLock { if $0 == nil { $0 = error } }
            failed.store(true, ordering: .relaxed)
            return false
        }
        return true
    }
}
