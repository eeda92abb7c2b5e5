@testable import EventLoop
import Glibc
import Shims
import Testing

/// A relay grows a source pipe that keeps arriving full, and only such a pipe.
@Suite("Relay: source pipe growth", .timeLimit(.minutes(5)))
struct PipeGrowthTests {
    /// Runs an engine from a fresh pipe to /dev/null: each round writes `chunk` bytes `perRound`
    /// times into the (empty) pipe, then gives the engine one turn. Returns the pipe's capacity
    /// after each round.
    func capacities(chunk: Int, perRound: Int, rounds: Int) throws -> [Int] {
        let pipe = try Pipes.make(nonBlocking: true)
        let sink = open("/dev/null", O_WRONLY | O_CLOEXEC)
        try #require(sink >= 0)
        defer { close(sink) }
        var engine = RelayEngine(source: pipe.first.rawValue, destination: sink, mechanism: .splice)
        defer { engine.releaseResources() }
        var scratch = ScratchBuffer()
        let bytes = [UInt8](repeating: 0x61, count: chunk)
        var sizes: [Int] = []
        for _ in 0..<rounds {
            for _ in 0..<perRound {
                #expect(bytes.withUnsafeBytes { write(pipe.second.rawValue, $0.baseAddress, chunk) } == chunk)
            }
            _ = try engine.run(budget: 1 << 20, scratch: &scratch)
            sizes.append(engine.sourcePipeSize ?? -1)
        }
        return sizes
    }

    @Test("grown to 256 KiB after four splices that found the default 64 KiB pipe full, not before")
    func bulkGrows() throws {
        let sizes = try capacities(chunk: 64 << 10, perRound: 1, rounds: 6)
        #expect(sizes == [65536, 65536, 65536, 262144, 262144, 262144])
    }

    @Test("a writer that never fills the pipe keeps the default size")
    func chattyStays() throws {
        let sizes = try capacities(chunk: 1024, perRound: 16, rounds: 12)
        #expect(sizes.allSatisfy { $0 == 65536 })
    }
}
