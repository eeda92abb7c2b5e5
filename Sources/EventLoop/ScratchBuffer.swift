import Glibc
import Shims

/// The buffer copy-mode relays read into: one per loop, shared by all its relays (a relay
/// copies what it read out before the next relay runs), as a mapping of its own so that it can
/// be given back.
///
/// Why it gives its pages back: a tty relay fills it on every read, and 128 KiB of touched
/// pages would otherwise stay resident in an idle agent for good (a third of its anonymous
/// memory). It does so once it has gone unused for `idleDelay`, never on the data path: a busy
/// relay only bumps a counter per turn that read into it, and the loop looks at it when it is
/// about to block.
///
/// Loop thread only.
struct ScratchBuffer {
    static let size = 128 << 10
    /// How long the buffer must go unused before its pages are given back.
    static let idleDelay: Int64 = 200_000_000

    let bytes: UnsafeMutableRawBufferPointer
    /// Relay turns that read into the buffer.
    private var uses: UInt64 = 0
    /// `uses` when the last check was scheduled.
    private var usesAtCheck: UInt64 = 0
    /// Holds pages: used since it last gave them back.
    private var resident = false
    /// A check is scheduled.
    private var checkPending = false

    init() {
        guard let base = shim_map_pages(Self.size) else {
            fatalError("ScratchBuffer: mmap(\(Self.size)) failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeMutableRawBufferPointer(start: base, count: Self.size)
    }

    /// A relay turn read into the buffer (its pages are in use again).
    @inline(__always)
    mutating func noteUse() {
        uses &+= 1
    }

    /// The loop is about to block. True when a check should run `idleDelay` from now: the
    /// buffer was used since the last check was scheduled, and none is pending.
    mutating func loopWillBlock() -> Bool {
        guard !checkPending, uses != usesAtCheck else { return false }
        usesAtCheck = uses
        resident = true
        checkPending = true
        return true
    }

    /// The scheduled check: gives the pages back if the buffer went unused since the check was
    /// scheduled, so at least `idleDelay` after its last use (else the loop schedules a new
    /// check the next time it blocks). True if it gave them back.
    mutating func check() -> Bool {
        checkPending = false
        guard uses == usesAtCheck, resident else { return false }
        _ = shim_discard_pages(bytes.baseAddress!, bytes.count)
        resident = false
        return true
    }

    /// Unmaps the buffer (the loop's deinit).
    func release() { _ = munmap(bytes.baseAddress, bytes.count) }
}
