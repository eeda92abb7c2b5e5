import CTestSupport
import EventLoop
import Glibc
import Shims
import Testing

@Suite("Signals and children", .timeLimit(.minutes(5)))
struct ProcessTests {
    @Test("a signal sent to the loop thread arrives through signalfd")
    func signalDelivery() async throws {
        try await withLoop("signals") { loop in
            let source = try await SignalSource(signals: [SIGUSR1], loop: loop)
            defer { source.close() }
            #expect(shim_tgkill(loop.threadID, SIGUSR1) == 0)
            #expect(try await source.next() == SIGUSR1)
        }
    }

    @Test("drain takes every signal the handler forwarded, then waits for the next one")
    func signalDrain() async throws {
        try await withLoop("signal-drain") { loop in
            // The only test using SIGUSR2: a handler source is one per signal per process.
            let source = try await SignalSource(signals: [SIGUSR2], mechanism: .handler, loop: loop)
            defer { source.close() }
            // Sent by the loop thread to itself: each is handled before the next is sent, so
            // none coalesces with a pending one.
            let sent = await loop.run { (0..<3).filter { _ in shim_tgkill(shim_gettid(), SIGUSR2) == 0 }.count }
            #expect(sent == 3)
            #expect(try await source.drain() == 3)
            // The short read marked the pipe drained; a later signal must still be seen.
            #expect(shim_tgkill(loop.threadID, SIGUSR2) == 0)
            #expect(try await source.drain() == 1)
        }
    }

    @Test("child exit codes arrive through pidfd", arguments: [0, 1, 7])
    func childExit(code: Int32) async throws {
        try await withLoop("child") { loop in
            let pid = spawn(["/bin/sh", "-c", "exit \(code)"])
            #expect(pid > 0)
            let child = try ChildProcess(pid: pid, loop: loop)
            #expect(try await child.wait() == .exited(code))
        }
    }

    @Test("a killed child reports the signal and the 128+n code")
    func childKilled() async throws {
        try await withLoop("child-kill") { loop in
            let pid = spawn(["/bin/sleep", "100"])
            let child = try ChildProcess(pid: pid, loop: loop)
            try child.signal(SIGKILL)
            let status = try await child.wait()
            #expect(status == .signaled(SIGKILL))
            #expect(status.code == 137)
        }
    }

    @Test("Spawn maps stdio, environment and working directory")
    func spawnStdio() async throws {
        try await withLoop("spawn") { loop in
            let pipe = try Pipes.make()
            var request = SpawnRequest(path: "/bin/sh", arguments: ["sh", "-c", "echo $GREETING; pwd; echo oops >&2"],
                                       environment: ["GREETING=hello"], workingDirectory: "/tmp")
            request.newSession = true
            let pid = try Spawn.start(request, stdio: [nil, pipe.second.rawValue, pipe.second.rawValue])
            let output = try AsyncFD(pipe.first, loop: loop)
            pipe.second.close()  // the parent's write end goes, so the reader sees EOF at exit
            let child = try ChildProcess(pid: pid, loop: loop)
            let text = String(decoding: try await output.readToEnd(), as: UTF8.self)
            #expect(text == "hello\n/tmp\noops\n")
            #expect(try await child.wait() == .exited(0))
        }
    }

    @Test("Spawn reports a missing program as an error with its path")
    func spawnMissing() throws {
        #expect(throws: SyscallError("spawn(/nonexistent/program)", errno: ENOENT)) {
            try Spawn.start(SpawnRequest(path: "/nonexistent/program", arguments: ["x"]), stdio: [])
        }
        // A failure in the child before exec (here chdir) is reported the same way.
        #expect(throws: SyscallError("spawn(/bin/true)", errno: ENOENT)) {
            try Spawn.start(SpawnRequest(path: "/bin/true", arguments: ["true"], workingDirectory: "/nonexistent/dir"), stdio: [])
        }
    }

    @Test("children start with no blocked signals and SIGPIPE back at its default")
    func spawnSignalState() async throws {
        signal(SIGPIPE, SIG_IGN)  // as the agent does
        try await withLoop("spawn-signals") { loop in
            let pipe = try Pipes.make()
            let request = SpawnRequest(path: "/bin/sh", arguments: ["sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status"])
            let pid = try Spawn.start(request, stdio: [nil, pipe.second.rawValue, nil])
            let output = try AsyncFD(pipe.first, loop: loop)
            pipe.second.close()
            let child = try ChildProcess(pid: pid, loop: loop)
            let text = String(decoding: try await output.readToEnd(), as: UTF8.self)
            #expect(try await child.wait() == .exited(0))
            var masks: [String: UInt64] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: ":")
                masks[String(parts[0])] = UInt64(parts[1].filter { !$0.isWhitespace }, radix: 16)
            }
            #expect(masks["SigBlk"] == 0, "\(text)")
            let pipeBit = UInt64(1) << (UInt64(SIGPIPE) - 1)
            #expect(masks["SigIgn"].map { $0 & pipeBit } == 0, "\(text)")
        }
    }

    @Test("stdio left unset is /dev/null: reads see EOF, writes are taken")
    func spawnUnsetStdio() async throws {
        try await withLoop("spawn-dev-null") { loop in
            let script = "readlink /proc/self/fd/0 /proc/self/fd/2; cat; echo x >&2 && echo wrote"
            for _ in 0..<2 {  // the second spawn reuses the kept /dev/null descriptor
                let pipe = try Pipes.make()
                let pid = try Spawn.start(SpawnRequest(path: "/bin/sh", arguments: ["sh", "-c", script]),
                                          stdio: [nil, pipe.second.rawValue, nil])
                let output = try AsyncFD(pipe.first, loop: loop)
                pipe.second.close()
                let child = try ChildProcess(pid: pid, loop: loop)
                let text = String(decoding: try await output.readToEnd(), as: UTF8.self)
                #expect(try await child.wait() == .exited(0))
                #expect(text == "/dev/null\n/dev/null\nwrote\n")
            }
        }
    }

    @Test("shim_is_child: true for a running or exited-unreaped child, false once reaped or for a stranger")
    func isChild() async throws {
        try await withLoop("is-child") { loop in
            let pid = try Spawn.start(SpawnRequest(path: "/bin/true", arguments: ["true"]), stdio: [])
            #expect(shim_is_child(pid) == 1)  // running or a zombie: ours either way, nothing reaped
            let child = try ChildProcess(pid: pid, loop: loop)
            #expect(try await child.wait() == .exited(0))
            #expect(shim_is_child(pid) == 0)
            #expect(shim_is_child(getppid()) == 0)
        }
    }

    private func spawn(_ args: [String]) -> pid_t {
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cArgs.append(nil)
        defer { for p in cArgs { free(p) } }
        return ts_spawn(&cArgs, -1, -1, -1)
    }
}
