@testable import Bridge
import EventLoop
import Testing

/// A sender that must not lose its frame (an exit notification) learns whether the frame was
/// written, also when it was queued behind another task's write.
@Suite("Frame writer", .timeLimit(.minutes(5)))
struct FrameWriterTests {
    /// 8 MiB: more than a Unix socket pair buffers, so the drainer waits for the peer to read.
    static let bigBody = [UInt8](repeating: 0x20, count: 8 << 20)
    static let notification = Array(#"{"ContainerId":"c"}"#.utf8)

    /// Makes `writer`'s drainer busy with the big frame; returns the task running the drain.
    static func startBigDrain(_ writer: FrameWriter) throws -> Task<Void, any Error> {
        let mustDrain = try bigBody.withUnsafeBytes { bytes in
            try writer.append { $0.appendFrame(type: .executeProcess, id: 1, body: bytes) }
        }
        #expect(mustDrain)
        return Task { try await writer.drain() }
    }

    /// Queues the notification behind the drainer and waits until it is parked there.
    static func queueNotification(_ writer: FrameWriter) async -> Task<Void, any Error> {
        let sender = Task {
            try await writer.sendAwaitingWrite { buffer in
                notification.withUnsafeBytes { buffer.appendFrame(type: .containerNotification, id: 0, body: $0) }
            }
        }
        while writer.awaitingWriteCount == 0 { await Task.yield() }
        return sender
    }

    @Test("a frame queued behind a write that fails: its sender gets the error", .timeLimit(.minutes(1)))
    func queuedFrameFailsWithTheWrite() async throws {
        let (guestEnd, hostEnd) = try AsyncFD.socketPair()
        defer { guestEnd.close() }
        let writer = FrameWriter(connection: guestEnd)
        let drainer = try Self.startBigDrain(writer)
        let sender = await Self.queueNotification(writer)
        hostEnd.close()  // the host goes away mid-write
        await #expect(throws: (any Error).self) { try await drainer.value }
        await #expect(throws: (any Error).self) { try await sender.value }
        #expect(writer.awaitingWriteCount == 0)
        // Later senders fail at once.
        await #expect(throws: (any Error).self) {
            try await writer.sendAwaitingWrite { $0.appendFrame(type: .containerNotification, id: 0, body: UnsafeRawBufferPointer(start: nil, count: 0)) }
        }
    }

    @Test("a frame queued behind a write that succeeds: its sender returns once it is written", .timeLimit(.minutes(1)))
    func queuedFrameReportsItsWrite() async throws {
        let (guestEnd, hostEnd) = try AsyncFD.socketPair()
        defer { guestEnd.close(); hostEnd.close() }
        let writer = FrameWriter(connection: guestEnd)
        let drainer = try Self.startBigDrain(writer)
        let sender = await Self.queueNotification(writer)
        let expected = 2 * FrameHeader.byteCount + Self.bigBody.count + Self.notification.count
        let reader = Task {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 8)
            defer { buffer.deallocate() }
            var total = 0, tail: [UInt8] = []
            while total < expected {
                let n = try await hostEnd.read(into: buffer)
                if n == 0 { break }
                total += n
                tail = Array((tail + buffer[..<n]).suffix(Self.notification.count))
            }
            return (total, tail)
        }
        try await sender.value
        try await drainer.value
        let (total, tail) = try await reader.value
        #expect(total == expected)
        #expect(tail == Self.notification)
        #expect(writer.awaitingWriteCount == 0)
    }

    @Test("a frame that was written is reported written even when a later batch of the same drain fails",
          .timeLimit(.minutes(1)))
    func writtenFrameIsNotReportedLost() async throws {
        let (guestEnd, hostEnd) = try AsyncFD.socketPair()
        defer { guestEnd.close() }
        let writer = FrameWriter(connection: guestEnd)
        // The sender drains itself: its (big) frame is the first batch.
        let sender = Task {
            try await writer.sendAwaitingWrite { buffer in
                Self.bigBody.withUnsafeBytes { buffer.appendFrame(type: .containerNotification, id: 0, body: $0) }
            }
        }
        while writer.queueState != (1, 0) { await Task.yield() }  // taken by the drainer
        // A second big frame queues behind it: the second batch.
        #expect(try !Self.bigBody.withUnsafeBytes { bytes in
            try writer.append { $0.appendFrame(type: .executeProcess, id: 1, body: bytes) }
        })
        // The host reads exactly the first frame, then goes away while the second is written.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 8)
        defer { buffer.deallocate() }
        var remaining = FrameHeader.byteCount + Self.bigBody.count
        while remaining > 0 {
            let n = try await hostEnd.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(remaining, buffer.count)]))
            #expect(n > 0)
            remaining -= n
        }
        hostEnd.close()
        try await sender.value  // written: no error, so no resend that the host would see twice
        await #expect(throws: (any Error).self) {
            try await writer.sendAwaitingWrite { $0.appendFrame(type: .containerNotification, id: 0, body: UnsafeRawBufferPointer(start: nil, count: 0)) }
        }
    }
}

