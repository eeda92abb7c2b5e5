import EventLoop
import Glibc
import Testing

@Suite("Blocking work")
struct BlockingWorkTests {
    @Test("blocking calls run off the caller's thread, concurrently; each caller gets its own result")
    func ownThread() async throws {
        let caller = pthread_self()
        let results = await withTaskGroup(of: (pthread_t, Int).self) { group in
            for i in 0..<8 { group.addTask { await BlockingWork.run { (pthread_self(), i * i) } } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.map { $0.1 }.sorted() == (0..<8).map { $0 * $0 })
        #expect(results.allSatisfy { pthread_equal($0.0, caller) == 0 })
        // Concurrently: two calls that each wait for the other finish only if neither blocks
        // the other's thread.
        let gate = UnsafeMutablePointer<pthread_barrier_t>.allocate(capacity: 1)
        defer { gate.deallocate() }
        pthread_barrier_init(gate, nil, 2)
        defer { pthread_barrier_destroy(gate) }
        let address = Int(bitPattern: gate)
        async let a: Void = BlockingWork.run { _ = pthread_barrier_wait(UnsafeMutablePointer<pthread_barrier_t>(bitPattern: address)!) }
        async let b: Void = BlockingWork.run { _ = pthread_barrier_wait(UnsafeMutablePointer<pthread_barrier_t>(bitPattern: address)!) }
        _ = await (a, b)
    }
}
