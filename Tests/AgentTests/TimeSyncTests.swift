import Bridge
import Glibc
import HostSupport
import Testing

/// Time sync end to end, on a fake PTP class directory and a fake chronyd (a script that
/// records its command line and fails, so the restart monitor has work).
@Suite("End to end: time sync", .timeLimit(.minutes(5)))
struct TimeSyncTests {
    static func write(_ path: String, _ text: String, mode: mode_t = 0o644) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        #expect(fd >= 0)
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }

    static func read(_ path: String) -> String {
        (try? HostFiles.read(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    @Test("chronyd runs on the Hyper-V clock with hcsshim's configuration, and is restarted when it ends")
    func restarted() async throws {
        let fake = "/tmp/gcs-timesync-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { HostFiles.removeTree(fake) }
        for directory in [fake, "\(fake)/ptp", "\(fake)/ptp/ptp0", "\(fake)/ptp/ptp1"] { #expect(mkdir(directory, 0o755) == 0) }
        Self.write("\(fake)/ptp/ptp0/clock_name", "some other clock\n")
        Self.write("\(fake)/ptp/ptp1/clock_name", "hyperv\n")
        Self.write("\(fake)/chronyd", "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \(fake)/calls\nexit 3\n", mode: 0o755)
        let arguments = ["-disable-time-sync=false", "--ptp-class-dir", "\(fake)/ptp", "--chronyd", "\(fake)/chronyd",
                         "--chronyd-config", "\(fake)/chronyd.conf"]
        try await withGuest("time-sync", arguments: arguments) { guest in
            // The monitor pauses 0.5 s, then 0.75 s: a deadline, not a synchronisation.
            let deadline = ContinuousClock.now.advanced(by: .seconds(20))
            while Self.read("\(fake)/calls").split(separator: "\n").count < 2 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            // Each run with hcsshim's command line (a third may have started since).
            #expect(Self.read("\(fake)/calls").hasPrefix(String(repeating: "-n -f \(fake)/chronyd.conf\n", count: 2)))
            #expect(Self.read("\(fake)/chronyd.conf") == "refclock PHC /dev/ptp1 poll 3 dpoll -2 offset 0 stratum 2\nmakestep 0.1 -1\n")
            #expect(guest.log().contains("chronyd ended; restarting"))
            // The agent serves meanwhile.
            _ = try await guest.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID)))
        }
    }

    @Test("without a Hyper-V clock the agent says so and serves on; -disable-time-sync looks for none")
    func noClock() async throws {
        let fake = "/tmp/gcs-timesync-none-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { HostFiles.removeTree(fake) }
        #expect(mkdir(fake, 0o755) == 0)
        try await withGuest("time-sync-none", arguments: ["-disable-time-sync=false", "--ptp-class-dir", fake]) { guest in
            _ = try await guest.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID)))
            #expect(guest.log().contains("no Hyper-V PTP clock"))
        }
        // A clock, but no chronyd: said once, no restart loop.
        #expect(mkdir("\(fake)/ptp0", 0o755) == 0)
        Self.write("\(fake)/ptp0/clock_name", "hyperv\n")
        try await withGuest("time-sync-no-chronyd", arguments: ["-disable-time-sync=false", "--ptp-class-dir", fake,
                                                               "--chronyd", "\(fake)/no-such-chronyd", "--chronyd-config", "\(fake)/c.conf"]) { guest in
            _ = try await guest.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID)))
            #expect(guest.log().contains("no-such-chronyd not found (or not executable)"))
            #expect(!guest.log().contains("restarting"))
        }
        try await withGuest("time-sync-off", arguments: ["--ptp-class-dir", fake]) { guest in
            _ = try await guest.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID)))
            #expect(!guest.log().contains("time sync"))
        }
    }
}
