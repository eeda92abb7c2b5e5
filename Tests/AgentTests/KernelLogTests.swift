@testable import Agent
import Bridge
import Glibc
import HostSupport
import Testing

/// The kernel's log reaches the agent's (guest-behaviour §3.2 step 4).
@Suite("Kernel log forwarding", .timeLimit(.minutes(5)))
struct KernelLogTests {
    @Test("a /dev/kmsg record: level from the priority's low bits, sequence, the text up to the first newline")
    func parseRecords() {
        func parse(_ text: String) -> KernelLogForwarder.Record? {
            Array(text.utf8).withUnsafeBytes { KernelLogForwarder.parse($0) }
        }
        #expect(parse("3,1234,5678,-;EXT4-fs error: bad block\n SUBSYSTEM=block\n DEVICE=b8:0\n")
                == .init(level: 3, sequence: 1234, message: "EXT4-fs error: bad block"))
        #expect(parse("30,7,1,c,more;systemd[1]: started\n") == .init(level: 6, sequence: 7, message: "systemd[1]: started"))
        #expect(parse("no semicolon here\n") == nil)
        #expect(parse("x,1,2,-;text\n") == nil)
        #expect(KernelLogForwarder.logLevel(0) == .critical && KernelLogForwarder.logLevel(4) == .warning
                && KernelLogForwarder.logLevel(7) == .debug)
    }

    @Test("a kernel error written while gcs runs shows up in its log; a notice (above -kmsgLogLevel 4) does not",
          .timeLimit(.minutes(1)), .enabled(if: access("/dev/kmsg", W_OK) == 0, "needs a writable /dev/kmsg (root)"))
    func forwarded() async throws {
        try await withGuest("kmsg") { guest in
            let marker = "gcs-kmsg-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC)
            try #require(fd >= 0, "cannot write /dev/kmsg (errno \(errno))")
            defer { close(fd) }
            // With the newline: the kernel holds a record without one open for a continuation,
            // and readers see it only once the next record arrives.
            for line in ["<5>\(marker) quiet\n", "<3>\(marker) loud\n"] {
                var text = line
                _ = text.withUTF8 { write(fd, $0.baseAddress, $0.count) }
            }
            // The kernel wakes /dev/kmsg readers from an irq_work, not in the write.
            let seen = try await waitForLog(guest, containing: "\(marker) loud")
            #expect(seen, "\(guest.log().suffix(1000))")
            #expect(!guest.log().contains("\(marker) quiet"))
        }
    }
}
