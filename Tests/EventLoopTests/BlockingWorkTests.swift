import EventLoop
import Glibc
import Testing

@Suite("Blocking work", .timeLimit(.minutes(5)))
struct BlockingWorkTests {
    @Test("blocking calls run off the calling thread; each caller gets its own result")
    func ownThread() async throws {
        let results = await withTaskGroup(of: (caller: pthread_t, body: pthread_t, value: Int).self) { group in
            for i in 0..<8 {
                group.addTask {
                    // The caller's thread right before the call: a body run inline would be on it.
                    let caller = pthread_self()
                    return await BlockingWork.run { (caller, pthread_self(), i * i) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.map(\.value).sorted() == (0..<8).map { $0 * $0 })
        #expect(results.allSatisfy { pthread_equal($0.caller, $0.body) == 0 })
    }
}
