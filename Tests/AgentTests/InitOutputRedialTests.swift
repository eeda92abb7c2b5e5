import Bridge
import EventLoop
import Glibc
import HostSupport
import Testing

/// A container init's output across a host reconnect of its stdio (live migration,
/// guest-behaviour §6 "reconnecting init output").
@Suite("End to end: init output re-dialled", .timeLimit(.minutes(5)))
struct InitOutputRedialTests {
    @Test("the init's stdout connection lost: the agent re-dials the port, sends the last output again, then the rest",
          .timeLimit(.minutes(1)))
    func redialled() async throws {
        try await withGuest("init-redial") { guest in
            let id = "talker"
            // Echoes each line of stdin to stdout: the test decides when output happens.
            try await guest.createContainer(id: id, spec: Busybox.spec(rootfs: sharedRootfs,
                                                                       args: ["sh", "-c", "while read line; do echo out $line; done"]))
            let listeners = try guest.stdioListeners(stdin: true, stdout: true, stderr: false)
            defer { listeners.close() }
            var parameters = ProcessParameters()
            parameters.createStdInPipe = true
            parameters.createStdOutPipe = true
            let request = listeners.executeProcess(in: id, parameters)
            async let stdinConnection = listeners.stdin!.listener.accept()
            async let stdoutConnection = listeners.stdout!.listener.accept()
            let pid = try await guest.client.send(request).processId
            let stdin = try await stdinConnection, firstStdout = try await stdoutConnection
            defer { stdin.close() }
            try await stdin.writeAll(Array("1\n".utf8))
            #expect(try await readExactly(firstStdout, 6) == "out 1\n")
            // The host's end goes away (a live migration's blackout). Shut down before it is
            // closed: a child another test is spawning (vfork, before exec) may hold a copy of
            // the descriptor, which would keep the socket up for the agent's next send.
            try firstStdout.shutdownRead()
            firstStdout.close()
            async let redial = listeners.stdout!.listener.accept()
            try await stdin.writeAll(Array("2\n".utf8))
            let secondStdout = try await redial
            defer { secondStdout.close() }
            // The kept tail first (the old connection's buffers may have held it), then the rest.
            #expect(try await readExactly(secondStdout, 12) == "out 1\nout 2\n")
            try await stdin.writeAll(Array("3\n".utf8))
            #expect(try await readExactly(secondStdout, 6) == "out 3\n")
            try stdin.shutdownWrite()  // the init reads EOF and exits
            #expect(try await secondStdout.readToEnd().isEmpty)
            secondStdout.close()
            #expect(try await wait(guest, id, pid) == 0)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("a host that stops listening, then shuts the container down: the re-dial stops and the init's exit is answered",
          .timeLimit(.minutes(1)))
    func redialStoppedByShutdown() async throws {
        // A grace far beyond the time limit: only the shutdown can end the re-dial in time.
        try await withGuest("init-redial-stop", arguments: ["--stdio-redial-grace-ms", "600000"]) { guest in
            let id = "abandoned"
            let (pid, stdin) = try await startWithStdoutGone(guest, id, script: "while read line; do echo out $line; done")
            defer { stdin.close() }
            // The relay re-dials in vain until the shutdown stops it; then the exit goes out.
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
            #expect(try await wait(guest, id, pid) == 137)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("a host that closes the init's stdout for good while the bridge stays up: the re-dial is abandoned after the grace, and the init's exit is answered",
          .timeLimit(.minutes(1)))
    func redialAbandonedWhileConnected() async throws {
        try await withGuest("init-redial-abandon", arguments: ["--stdio-redial-grace-ms", "300"]) { guest in
            let id = "closed-for-good"
            let (pid, stdin) = try await startWithStdoutGone(guest, id, script: "read line; echo out $line; exit 3")
            defer { stdin.close() }
            try await expectLog(guest, "init stdio re-dial abandoned")
            #expect(try await wait(guest, id, pid) == 3)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("a SIGTERM to the init while its output is re-dialled leaves the re-dial running (as Go's guest): the output reaches the host once it listens again",
          .timeLimit(.minutes(1)))
    func redialOutlivesSignal() async throws {
        // A grace far beyond the time limit: only the host's return can end the re-dial.
        try await withGuest("init-redial-signal", arguments: ["--stdio-redial-grace-ms", "600000"]) { guest in
            let id = "signalled"
            // The init (sh as its pid namespace's init) ignores SIGTERM: as an init shutting down
            // gracefully, it goes on writing.
            try await guest.createContainer(id: id, spec: Busybox.spec(rootfs: sharedRootfs,
                                                                       args: ["sh", "-c", "while read line; do echo out $line; done"]))
            let listeners = try guest.stdioListeners(stdin: true, stdout: true, stderr: false)
            var parameters = ProcessParameters()
            parameters.createStdInPipe = true
            parameters.createStdOutPipe = true
            async let stdinConnection = listeners.stdin!.listener.accept()
            async let stdoutConnection = listeners.stdout!.listener.accept()
            let pid = try await guest.client.send(listeners.executeProcess(in: id, parameters)).processId
            let stdin = try await stdinConnection, firstStdout = try await stdoutConnection
            listeners.close()  // re-dials are refused from now on
            defer { stdin.close() }
            try firstStdout.shutdownRead()  // (shut down first: see InitOutputRedialTests.redialled)
            firstStdout.close()
            try await stdin.writeAll(Array("1\n".utf8))
            try await expectLog(guest, "init stdio connection lost; re-dialling")
            _ = try await guest.client.send(SignalProcessRequest(base: RequestBase(containerId: id), processId: pid,
                                                                 options: SignalProcessOptions(signal: SIGTERM)))
            // The host is back on the port (after a migration): the re-dial reaches it.
            let port = try #require(listeners.stdout?.port)
            let listener = try UnixListener(path: "\(guest.prefix)_\(port)")
            defer { listener.close() }
            let secondStdout = try await listener.accept()
            #expect(try await readExactly(secondStdout, 6) == "out 1\n")
            try await stdin.writeAll(Array("2\n".utf8))
            #expect(try await readExactly(secondStdout, 6) == "out 2\n")
            #expect(!guest.log().contains("init stdio re-dial stopped"))
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
            // The host reads the output to its end and closes it, as hcsshim's copy does; the
            // exit is reported once the output is drained.
            #expect(try await secondStdout.readToEnd().isEmpty)
            secondStdout.close()
            #expect(try await wait(guest, id, pid) == 137)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    /// What the host sends to end a container whose init has already exited, and the error it
    /// gets (runc kill: the container is not running; the signal: the process is gone).
    enum FailingEnd: String, CaseIterable, Sendable {
        case shutdown, signal
    }

    /// The shutdown stops the re-dial (a grace beyond the time limit shows it); the signal does
    /// not, as in Go's guest, and the grace (short here) ends it.
    @Test("an init that exits while its output is re-dialled, then a shutdown or a SIGKILL, which fails: the exit is answered",
          .timeLimit(.minutes(1)), arguments: FailingEnd.allCases)
    func redialEndedAfterFailedEnd(_ end: FailingEnd) async throws {
        let grace = end == .shutdown ? "600000" : "300"
        try await withGuest("init-redial-dead-\(end)", arguments: ["--stdio-redial-grace-ms", grace]) { guest in
            let id = "exited-\(end)"
            let (pid, stdin) = try await startWithStdoutGone(guest, id, script: "read line; echo out $line; exit 3")
            defer { stdin.close() }
            try await waitUntilReaped(pid)
            let refused = await #expect(throws: GuestRPCError.self) {
                switch end {
                case .shutdown:
                    _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
                case .signal:  // what hcsshim's kill does
                    _ = try await guest.client.send(SignalProcessRequest(base: RequestBase(containerId: id), processId: pid,
                                                                         options: SignalProcessOptions(signal: SIGKILL)))
                }
            }
            #expect(refused?.hresult == (end == .shutdown ? .systemAlreadyStopped : .notFound))
            #expect(try await wait(guest, id, pid) == 3)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    /// Until the init has exited and been reaped (its pid gone); its exit is held with its output.
    private func waitUntilReaped(_ pid: UInt32) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while kill(pid_t(pid), 0) == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(kill(pid_t(pid), 0) != 0)
    }

    /// Creates and starts container `id` running `sh -c script` with stdin and stdout, closes
    /// the host's end of stdout (and its listener: re-dials are refused), sends one line, and
    /// returns once the agent is re-dialling the output that line produced.
    private func startWithStdoutGone(_ guest: LocalGuest, _ id: String, script: String) async throws -> (UInt32, AsyncFD) {
        try await guest.createContainer(id: id, spec: Busybox.spec(rootfs: sharedRootfs, args: ["sh", "-c", script]))
        let (pid, stdio) = try await guest.start(.containerInit(id), stdin: true, stdout: true, stderr: false)
        let stdin = try #require(stdio.stdin), stdout = try #require(stdio.stdout)
        try stdout.shutdownRead()  // (shut down first: see InitOutputRedialTests.redialled)
        stdout.close()
        try await stdin.writeAll(Array("1\n".utf8))
        try await expectLog(guest, "init stdio connection lost; re-dialling")
        return (pid, stdin)
    }

    private func expectLog(_ guest: LocalGuest, _ text: String) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while !guest.log().contains(text) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(guest.log().contains(text))
    }

    private func readExactly(_ connection: AsyncFD, _ count: Int) async throws -> String {
        var bytes: [UInt8] = []
        while bytes.count < count {
            let chunk = try await connection.read(upTo: count - bytes.count)
            if chunk.isEmpty { break }
            bytes += chunk
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
