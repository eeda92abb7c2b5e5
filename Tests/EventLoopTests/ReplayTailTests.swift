@testable import EventLoop
import Testing

@Suite("Replay tail", .timeLimit(.minutes(5)))
struct ReplayTailTests {
    @Test("keeps the last `capacity` bytes in order, through growth and wrap-around, whatever the record sizes")
    func lastBytes() {
        for capacity in [1, 7, 4096, 10_000] {
            var tail = ReplayTail(capacity: capacity)
            var all: [UInt8] = []
            var next: UInt8 = 0
            for size in [0, 1, 3, 100, 5000, 2, 4095, 12_000, 9, 4096] {
                let chunk = (0..<size).map { _ in next &+= 1; return next }
                chunk.withUnsafeBytes { tail.record($0) }
                all += chunk
                #expect(tail.contents() == Array(all.suffix(capacity)), "capacity \(capacity), after \(all.count) bytes")
            }
            tail.release()
            #expect(tail.contents().isEmpty)
        }
    }
}
