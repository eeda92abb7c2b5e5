import EventLoop
import Testing

/// Bridge buffers are sized for bursts; between bursts only their first pages may stay resident.
@Suite("Page buffers")
struct PageBufferTests {
    @Test("a fill beyond the kept bytes is given back, the kept bytes keep their contents")
    func discardAfterFill() {
        var buffer = PageBuffer(capacity: 64 << 10)
        #expect(buffer.capacity == 64 << 10)
        #expect(buffer.residentBytes == 0)
        buffer.bytes.initializeMemory(as: UInt8.self, repeating: 0xA5)
        buffer.noteWritten(upTo: 64 << 10)
        #expect(buffer.residentBytes == 64 << 10)

        buffer.discard(keeping: 16 << 10)
        #expect(buffer.residentBytes == 16 << 10)
        #expect(buffer.bytes[(16 << 10) - 1] == 0xA5)
        #expect(buffer.bytes[16 << 10] == 0)  // reads as zero (and faults that page in again)

        // Nothing written since: a second discard has nothing to give back beyond `keep`.
        buffer.noteWritten(upTo: (16 << 10) + 1)
        buffer.discard(keeping: 16 << 10)
        #expect(buffer.residentBytes == 16 << 10)
    }

    @Test("resizing keeps the contents that fit")
    func resize() {
        var buffer = PageBuffer(capacity: 10)
        #expect(buffer.capacity == PageBuffer.pageSize)
        buffer.bytes[0] = 1
        buffer.resize(to: 1 << 20)
        #expect(buffer.capacity == 1 << 20)
        #expect(buffer.bytes[0] == 1)
        buffer.bytes[(1 << 20) - 1] = 2
        buffer.resize(to: 4096)
        #expect(buffer.capacity == 4096)
        #expect(buffer.bytes[0] == 1)
    }
}
