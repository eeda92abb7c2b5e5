import EventLoop

/// Splits a byte stream into bridge frames, in place, from one reusable buffer.
///
/// Exists so the hot path copies nothing it need not: the caller reads from the socket straight
/// into `writableBytes()`, then takes as many complete frames as arrived with `nextFrame()`;
/// each frame's body is a view into the buffer (valid until the next call that mutates the
/// reader). Memory grows only as bytes actually arrive and never beyond `maxMessageSize`, so a
/// header announcing a huge size costs nothing until the peer really sends that much. The
/// buffer is a `PageBuffer`: after a burst (or a large message) has been consumed, the pages it
/// filled beyond the first 16 KiB go back to the kernel.
///
/// Not thread-safe: one reading task owns it.
public final class FrameReader {
    /// One framed message: the header and a borrowed view of its body.
    public struct Frame {
        public var header: FrameHeader
        /// Valid until the next call to `writableBytes`, `nextFrame` or `deinit`.
        public var body: UnsafeRawBufferPointer
    }

    /// Largest accepted `Size` (header included).
    public let maxMessageSize: Int
    /// The memory: its own mapping, so the pages a burst filled go back once it is consumed.
    private var pages: PageBuffer
    /// The usable size (the mapping is this rounded up to whole pages).
    public private(set) var capacity: Int
    /// The size the buffer returns to once a large message has been consumed.
    private let initialCapacity: Int
    /// What stays resident between bursts: a fill beyond it is given back once consumed.
    public static let keptBytes = 16 << 10
    /// Start of unconsumed bytes.
    private var readIndex = 0
    /// End of received bytes.
    private var writeIndex = 0

    /// - Parameters:
    ///   - maxMessageSize: frames whose `Size` exceeds this are a fatal framing error.
    ///   - initialCapacity: starting buffer size; many small frames fit per read.
    public init(maxMessageSize: Int = 16 << 20, initialCapacity: Int = 64 << 10) {
        precondition(maxMessageSize >= FrameHeader.byteCount)
        self.maxMessageSize = maxMessageSize
        let capacity = max(FrameHeader.byteCount, min(initialCapacity, maxMessageSize))
        self.initialCapacity = capacity
        self.capacity = capacity
        pages = PageBuffer(capacity: capacity)
    }

    /// Bytes received but not yet returned as frames.
    public var bufferedCount: Int { writeIndex - readIndex }

    /// Bytes of the buffer resident in memory (tests and diagnostics).
    public var residentBytes: Int { pages.residentBytes }

    /// Bytes mapped for the buffer: `capacity` rounded up to whole pages (tests).
    public var mappedBytes: Int { pages.capacity }

    /// Space to read into. Compacts consumed bytes away and, when the buffer is full of one
    /// incomplete frame, grows it (doubling, capped at `maxMessageSize`). Never empty.
    public func writableBytes() -> UnsafeMutableRawBufferPointer {
        if writeIndex == capacity {
            if readIndex > 0 {
                compact()
            } else {
                grow()
            }
        }
        return UnsafeMutableRawBufferPointer(rebasing: pages.bytes[writeIndex..<capacity])
    }

    /// Records that `count` bytes were written into the space from `writableBytes()`.
    public func didWrite(_ count: Int) {
        precondition(count >= 0 && writeIndex + count <= capacity)
        writeIndex += count
        pages.noteWritten(upTo: writeIndex)
    }

    /// Copies `bytes` in (tests and the fuzzer; the socket path reads in place).
    public func append(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let space = writableBytes()
            let n = min(space.count, bytes.count - offset)
            space.baseAddress!.copyMemory(from: bytes.baseAddress! + offset, byteCount: n)
            didWrite(n)
            offset += n
        }
    }

    /// The next complete frame, or nil when more bytes are needed. Throws when the header at
    /// the front can never be framed (size < 16 or > `maxMessageSize`); the stream is then
    /// unusable.
    public func nextFrame() throws(FramingError) -> Frame? {
        let available = writeIndex - readIndex
        if available < FrameHeader.byteCount {
            if available == 0 {
                readIndex = 0
                writeIndex = 0
                // A large message grew the buffer, or a burst filled it: give the memory back
                // once it has been consumed (nothing happens after ordinary reads).
                if capacity > initialCapacity {
                    capacity = initialCapacity
                    pages.resize(to: capacity)
                }
                pages.discard(keeping: Self.keptBytes)
            }
            return nil
        }
        let front = UnsafeRawBufferPointer(rebasing: pages.bytes[readIndex..<writeIndex])
        let header = FrameHeader(loading: front)
        if header.size < UInt32(FrameHeader.byteCount) {
            throw .sizeTooSmall(size: header.size, type: header.type.rawValue, id: header.id)
        }
        if Int(header.size) > maxMessageSize {
            throw .sizeTooLarge(size: header.size, limit: maxMessageSize, type: header.type.rawValue, id: header.id)
        }
        let total = Int(header.size)
        if available < total { return nil }
        let body = UnsafeRawBufferPointer(rebasing: front[FrameHeader.byteCount..<total])
        readIndex += total
        return Frame(header: header, body: body)
    }

    /// At end of stream: throws if a partial message is left over.
    public func finish() throws(FramingError) {
        if bufferedCount > 0 { throw .truncated(bufferedBytes: bufferedCount) }
    }

    private func compact() {
        let live = writeIndex - readIndex
        if live > 0 {
            pages.bytes.baseAddress!.copyMemory(from: pages.bytes.baseAddress! + readIndex, byteCount: live)
        }
        readIndex = 0
        writeIndex = live
    }

    private func grow() {
        // Only reached with the buffer full of one incomplete frame whose header was accepted
        // (size <= maxMessageSize), or of fewer than 16 bytes, which cannot happen since the
        // capacity is at least 16. Growth is proportional to bytes really received.
        let newCapacity = min(capacity * 2, maxMessageSize)
        precondition(newCapacity > capacity, "frame reader full at its maximum size")
        capacity = newCapacity
        pages.resize(to: newCapacity)
    }
}
