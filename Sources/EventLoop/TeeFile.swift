import Glibc
import Shims
import Synchronization

/// A file that relays append a copy of their stream to, besides delivering it: hcsshim's tee
/// log of a container's output inside the VM. Several relays may share one (a process's stdout
/// and stderr): each appends whole chunks, in the order it read them. The owner closes it once
/// the relays have ended (`close()`); else it closes when the last holder is gone.
///
/// Writes are plain blocking `write(2)`s on the loop thread: a regular file's take the page
/// cache, not the disk. A write that fails (a full disk) stops the copying for every relay
/// sharing the file, never the relays themselves: the host's stream matters more than its copy.
/// `error` then says why.
public final class TeeFile: Sendable {
    /// The file's path, for messages.
    public let path: String
    /// The descriptor (-1 once closed) and the write error that stopped the copying, if any;
    /// an append holds the lock for its write, so a close never pulls the descriptor from
    /// under it (uncontended: the relays and the owner all run on the loop thread).
    private let state: Mutex<(fd: Int32, error: SyscallError?)>

    /// Opens `path`, relative to `directory`, for appending, creating it (mode 0666 less the
    /// umask, as Go's guest does). No symlink is followed below `directory`, and the file must
    /// be a regular one: the directory may be writable by containers.
    public init(directory: String, path: String) throws(SyscallError) {
        let fd = shim_open_append_beneath(directory, path, 0o666)
        guard fd >= 0 else { throw SyscallError("open(\(directory)/\(path))", errno: errno) }
        self.path = "\(directory)/\(path)"
        state = Mutex((fd, nil))
    }

    deinit { close() }

    /// The write error that stopped the copying, if one did.
    public var error: SyscallError? { state.withLock { $0.error } }

    /// Closes the file; later appends are dropped.
    public func close() {
        state.withLock { s in
            if s.fd >= 0 { Glibc.close(s.fd) }
            s.fd = -1
        }
    }

    /// Appends `bytes` whole (through short writes); false once the file has failed or closed.
    @discardableResult
    func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        state.withLock { s in
            guard s.fd >= 0, s.error == nil else { return false }
            guard let base = bytes.baseAddress else { return true }
            var offset = 0
            while offset < bytes.count {
                let n = write(s.fd, base + offset, bytes.count - offset)
                if n > 0 { offset += n; continue }
                if n < 0 && errno == EINTR { continue }
                s.error = SyscallError("write(\(path))", errno: n < 0 ? errno : EIO)
                return false
            }
            return true
        }
    }
}
