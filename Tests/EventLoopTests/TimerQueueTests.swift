@testable import EventLoop
import Testing

@Suite("Timer queue", .timeLimit(.minutes(5)))
struct TimerQueueTests {
    @Test("timers cancelled long before their deadline do not pile up in the heap; the live ones still fire in order")
    func cancelledTimersAreDropped() {
        var queue = TimerQueue()
        var fired: [Int] = []
        let far: Int64 = 40 * 86_400 * 1_000_000_000  // 40 days, like a WaitForProcess timeout
        var kept: [UInt64] = []
        for round in 0..<10_000 {
            let id = queue.schedule(at: far + Int64(round)) {}
            if round % 1000 == 0 { kept.append(id) } else { #expect(queue.cancel(id) != nil) }
            #expect(queue.heapCount <= 2 * (kept.count + 1) + 64)
        }
        #expect(queue.heapCount <= 2 * kept.count + 64)
        for (index, at) in [Int64(30), 10, 20].enumerated() { _ = queue.schedule(at: at) { fired.append(index) } }
        queue.fireDue(now: 25)
        #expect(fired == [1, 2])
        queue.fireDue(now: 30)
        #expect(fired == [1, 2, 0])
        #expect(queue.millisecondsUntilNext(now: 0) > 0)
        for id in kept { #expect(queue.cancel(id) != nil) }
        #expect(queue.isEmpty)
        #expect(queue.millisecondsUntilNext(now: 0) == -1)
    }
}
