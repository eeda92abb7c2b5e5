import EventLoop
import Testing

/// Bridge buffers are sized for bursts; between bursts only their first pages may stay resident.
@Suite("Page buffers", .timeLimit(.minutes(5)))
struct PageBufferTests {
    @Test("a fill beyond the kept bytes is given back, the kept bytes keep their contents")
    func discardAfterFill() {
        let page = PageBuffer.pageSize
        var buffer = PageBuffer(capacity: 16 * page)
        #expect(buffer.capacity == 16 * page)
        #expect(buffer.residentBytes == 0)
        buffer.bytes.initializeMemory(as: UInt8.self, repeating: 0xA5)
        buffer.noteWritten(upTo: 16 * page)
        #expect(buffer.residentBytes == 16 * page)

        buffer.discard(keeping: 4 * page)
        #expect(buffer.residentBytes == 4 * page)
        #expect(buffer.bytes[4 * page - 1] == 0xA5)

        // Nothing written beyond the kept pages since: nothing more to give back, and the kept
        // pages stay.
        buffer.discard(keeping: 4 * page)
        #expect(buffer.residentBytes == 4 * page)

        // A second fill is given back the same way; what was given back reads as zero.
        buffer.bytes[8 * page] = 1
        buffer.noteWritten(upTo: 8 * page + 1)
        #expect(buffer.residentBytes == 5 * page)
        buffer.discard(keeping: 4 * page)
        #expect(buffer.residentBytes == 4 * page)
        #expect(buffer.bytes[8 * page] == 0)
    }

    @Test("resizing keeps the contents that fit")
    func resize() {
        let page = PageBuffer.pageSize
        var buffer = PageBuffer(capacity: 10)
        #expect(buffer.capacity == page)
        buffer.bytes[0] = 1
        buffer.resize(to: 256 * page)
        #expect(buffer.capacity == 256 * page)
        #expect(buffer.bytes[0] == 1)
        buffer.bytes[256 * page - 1] = 2
        buffer.resize(to: page)
        #expect(buffer.capacity == page)
        #expect(buffer.bytes[0] == 1)
    }
}
