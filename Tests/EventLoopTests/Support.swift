import CTestSupport
import EventLoop
import Glibc
import Shims

/// A private loop for one test, so tests running in parallel never share a reactor thread.
func withLoop<T>(_ name: String = "test", useUring: Bool = true, _ body: (EventLoop) async throws -> T) async throws -> T {
    let loop = try EventLoop(name: name, useUring: useUring)
    do {
        let result = try await body(loop)
        loop.shutdown()
        return result
    } catch {
        loop.shutdown()
        throw error
    }
}

/// Lets `loop` turn (one queued closure per round, no sleeping) until `condition` holds or
/// `rounds` have passed; the caller asserts on the condition afterwards.
func turn(_ loop: EventLoop, until condition: () -> Bool, rounds: Int = 100_000) async {
    var turned = 0
    while !condition() && turned < rounds {
        await loop.run {}
        turned += 1
    }
}

/// Writes `count` pattern bytes (seeded by `seed`) into `fd`, in chunks of `chunk`, then closes it.
func producePattern(_ fd: AsyncFD, seed: UInt64, count: Int, chunk: Int = 64 << 10) async throws {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
    defer { buffer.deallocate() }
    var offset = 0
    while offset < count {
        let n = min(chunk, count - offset)
        ts_fill(seed, UInt64(offset), buffer.baseAddress, n)
        try await fd.writeAll(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        offset += n
    }
    fd.close()
}

/// Reads `fd` to EOF, checking every byte against the pattern; returns the byte count.
func consumePattern(_ fd: AsyncFD, seed: UInt64, bufferSize: Int = 256 << 10) async throws -> Int {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
    defer { buffer.deallocate() }
    var offset = 0
    while true {
        let n = try await fd.read(into: buffer)
        if n == 0 { return offset }
        let bad = ts_verify(seed, UInt64(offset), buffer.baseAddress, n)
        if bad >= 0 { throw PatternMismatch(offset: offset + Int(bad)) }
        offset += n
    }
}

struct PatternMismatch: Error { var offset: Int }

/// A pipe (read end, write end) registered with `loop`.
func asyncPipe(_ loop: EventLoop) throws -> (read: AsyncFD, write: AsyncFD) {
    let pipe = try Pipes.make()
    let r = try AsyncFD(pipe.first, loop: loop)
    return (r, try AsyncFD(pipe.second, loop: loop))
}

/// A pipe source relayed into a socket pair: (pipe write end, relay, socket the test reads).
func pipeToSocketRelay(_ loop: EventLoop, options: Relay.Options = .init()) throws -> (input: AsyncFD, relay: Relay, output: AsyncFD) {
    let (pipeRead, pipeWrite) = try asyncPipe(loop)
    let (relayEnd, testEnd) = try AsyncFD.socketPair(loop: loop)
    let relay = Relay(from: pipeRead, to: relayEnd, options: options)
    return (pipeWrite, relay, testEnd)
}

/// Inodes of the given descriptors, to check later that they were really closed.
func inodes(_ fds: [AsyncFD]) -> [UInt64] { fds.map { ts_inode($0.rawValue) } }

func openCount(_ inodes: [UInt64]) -> Int {
    Int(inodes.withUnsafeBufferPointer { ts_count_open_inodes($0.baseAddress, Int32($0.count)) })
}

/// Waits (bounded) until `condition` holds; used only where the loop closes descriptors
/// asynchronously after the operation we awaited returned.
func eventually(_ condition: () -> Bool, timeoutMs: Int = 5000) async throws -> Bool {
    let loop = EventLoop.shared
    for _ in 0..<(timeoutMs / 5) {
        if condition() { return true }
        try await loop.sleep(for: .milliseconds(5))
    }
    return condition()
}
