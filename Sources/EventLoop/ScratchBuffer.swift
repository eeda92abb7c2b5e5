/// The buffer copy-mode relays read into: one per loop, shared by all its relays (a relay
/// copies what it read out before the next relay runs). Its memory is a `PageBuffer`, so its
/// pages can be given back.
///
/// Why it gives its pages back: a tty relay fills it on every read, and the touched pages would
/// otherwise stay resident in an idle agent for good (a sixth of its anonymous memory). It does
/// so once it has gone unused for `idleDelay`, never on the data path: a relay turn that read
/// into it bumps a counter, and the loop looks at that counter when it is about to block.
///
/// Loop thread only.
struct ScratchBuffer: ~Copyable {
    static let size = 128 << 10
    /// How long the buffer must go unused before its pages are given back.
    static let idleDelay: Int64 = 200_000_000

    private var pages = PageBuffer(capacity: ScratchBuffer.size)
    /// Relay turns that read into the buffer.
    private var uses: UInt64 = 0
    /// `uses` when the last check was scheduled.
    private var usesAtCheck: UInt64 = 0
    /// A check is scheduled.
    private var checkPending = false

    /// The memory, for one relay turn.
    var bytes: UnsafeMutableRawBufferPointer { pages.bytes }

    /// A relay turn read into the first `count` bytes.
    @inline(__always)
    mutating func noteUse(upTo count: Int) {
        uses &+= 1
        pages.noteWritten(upTo: count)
    }

    /// The loop is about to block. True when a check should run `idleDelay` from now: the
    /// buffer was used since the last check was scheduled, and none is pending.
    mutating func loopWillBlock() -> Bool {
        guard !checkPending, uses != usesAtCheck else { return false }
        usesAtCheck = uses
        checkPending = true
        return true
    }

    /// The scheduled check: gives the pages back if the buffer went unused since the check was
    /// scheduled, so at least `idleDelay` after its last use (else the loop schedules a new
    /// check the next time it blocks). True if it gave them back.
    mutating func check() -> Bool {
        checkPending = false
        guard uses == usesAtCheck else { return false }
        pages.discard(keeping: 0)
        return true
    }
}
