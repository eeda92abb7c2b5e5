import CTestSupport
import EventLoop
import Glibc
import Shims
import Testing

@Suite("Signals and children")
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
        #expect(throws: SyscallError("posix_spawn(/nonexistent/program)", errno: ENOENT)) {
            try Spawn.start(SpawnRequest(path: "/nonexistent/program", arguments: ["x"]), stdio: [])
        }
    }

    private func spawn(_ args: [String]) -> pid_t {
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cArgs.append(nil)
        defer { for p in cArgs { free(p) } }
        return ts_spawn(&cArgs, -1, -1, -1)
    }
}
