import Glibc
import Shims

/// A growable I/O buffer whose memory is its own anonymous mapping (whole pages) rather than a
/// block of malloc's heap, so that what a burst touched can be handed back as soon as the buffer
/// is empty again.
///
/// Why it exists: the bridge's read and write buffers are sized for bursts (a thousand requests
/// in one read, a thousand responses in one write) but hold a few hundred bytes between them.
/// Inside malloc's heap every page a burst wrote stays resident for as long as the buffer lives
/// (`malloc_trim` only returns free memory), and a buffer re-allocated after a burst lands
/// wherever the heap has room, pinning more of it. As a mapping of its own, the buffer keeps its
/// first pages and gives the rest back with one `madvise` after a fill beyond them; pages never
/// written cost nothing.
///
/// Non-copyable: it uniquely owns its mapping, unmapped in `deinit`.
public struct PageBuffer: ~Copyable {
    /// The mapping: the capacity asked for, rounded up to whole pages. Moves when resized.
    public private(set) var bytes: UnsafeMutableRawBufferPointer
    /// The end of what was written since the last `discard`: `discard` gives back pages up to
    /// here (pages beyond it were never written, so hold no memory unless read).
    private var written = 0

    /// The kernel's page size.
    public static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Maps at least `capacity` bytes (no memory is used until written). Traps when the kernel
    /// has no address space left, as a failed heap allocation does.
    public init(capacity: Int) {
        let length = Self.roundUp(max(capacity, 1))
        guard let base = shim_map_pages(length) else {
            fatalError("PageBuffer: mmap(\(length)) failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeMutableRawBufferPointer(start: base, count: length)
    }

    deinit { _ = munmap(bytes.baseAddress, bytes.count) }

    /// Usable size in bytes.
    public var capacity: Int { bytes.count }

    /// Notes that bytes up to `end` hold data (so `discard` knows how far to give back).
    @inline(__always)
    public mutating func noteWritten(upTo end: Int) {
        if end > written { written = end }
    }

    /// Resizes to at least `capacity` bytes, keeping the contents that still fit (the kernel
    /// moves the pages; nothing is copied).
    public mutating func resize(to capacity: Int) {
        let length = Self.roundUp(max(capacity, 1))
        guard length != bytes.count else { return }
        guard let base = shim_remap_pages(bytes.baseAddress, bytes.count, length) else {
            fatalError("PageBuffer: mremap(\(bytes.count) -> \(length)) failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeMutableRawBufferPointer(start: base, count: length)
        written = min(written, length)
    }

    /// Gives the pages beyond the first `keep` bytes that were written since the last discard
    /// back to the kernel; they read as zero afterwards. Call only when nothing beyond `keep`
    /// is still needed. One `madvise` when a fill went past `keep`; nothing otherwise.
    ///
    /// No hysteresis: a steady load that fills just past `keep` between two empties pays one
    /// `madvise` and the re-faulting of the pages beyond `keep` per fill, a few microseconds
    /// against the hundred-odd messages such a fill holds.
    public mutating func discard(keeping keep: Int) {
        let start = Self.roundUp(keep)
        let end = min(Self.roundUp(written), bytes.count)
        written = min(written, keep)
        guard end > start else { return }
        _ = shim_discard_pages(bytes.baseAddress! + start, end - start)
    }

    /// How many of its bytes are resident now (whole pages; `mincore`). For tests and
    /// diagnostics.
    public var residentBytes: Int {
        let pages = bytes.count / Self.pageSize
        var vector = [UInt8](repeating: 0, count: pages)
        guard mincore(bytes.baseAddress, bytes.count, &vector) == 0 else { return -1 }
        return vector.reduce(0) { $0 + Int($1 & 1) } * Self.pageSize
    }

    /// `n` rounded up to whole pages.
    public static func roundUp(_ n: Int) -> Int { (n + pageSize - 1) & ~(pageSize - 1) }
}
