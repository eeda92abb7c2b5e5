import Bridge
import EventLoop
import Glibc
import HostSupport
import Testing

@Suite("End to end: processes in the VM", .timeLimit(.minutes(5)))
struct ExternalProcessTests {
    @Test("1 MiB on stdout and on stderr, byte-exact; stdin echoed through cat")
    func bulkOutput() async throws {
        try await withGuest("bulk") { guest in
            let result = try await guest.run(.utilityVM, args: ["/bin/sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' a; head -c 1048576 /dev/zero | tr '\\0' b >&2"])
            #expect(result.exitCode == 0, "stderr: \(String(decoding: result.stderr.prefix(300), as: UTF8.self))")
            #expect(result.stdout.count == 1 << 20 && result.stdout.allSatisfy { $0 == UInt8(ascii: "a") })
            #expect(result.stderr.count == 1 << 20 && result.stderr.allSatisfy { $0 == UInt8(ascii: "b") })
            let input = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let echoed = try await guest.run(.utilityVM, args: ["cat"], input: input)
            #expect(echoed.stdout == input)
        }
    }

    @Test("output written just before exit is never lost (1,000 runs)")
    func noLostTail() async throws {
        try await withGuest("tail") { guest in
            var lost = 0
            for i in 0..<1000 {
                let result = try await guest.run(.utilityVM, args: ["/usr/bin/printf", "run %d\\n", "\(i)"])
                if result.stdoutText != "run \(i)\n" || result.exitCode != 0 { lost += 1 }
            }
            #expect(lost == 0)
        }
    }

    @Test("200 processes started concurrently, all outputs and exit codes right")
    func concurrent() async throws {
        try await withGuest("concurrent") { guest in
            let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<200 {
                    group.addTask {
                        let r = try await guest.run(.utilityVM, args: ["/bin/sh", "-c", "echo $0; exit $(($0 % 7))", "\(i)"])
                        return r.stdoutText == "\(i)\n" && r.exitCode == UInt32(i % 7) ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(wrong == 0)
        }
    }

    @Test("the agent raises its open-file limit to the hard one, holds more streams than the soft one allowed, and starts processes with the original")
    func openFileLimit() async throws {
        try await withGuest("nofile", launcher: ["/usr/bin/prlimit", "--nofile=256:8192", "--"]) { guest in
            #expect(softOpenFileLimit(of: guest.pid) == 8192)
            let shell = try await guest.run(.utilityVM, args: ["/bin/sh", "-c", "ulimit -n"])
            #expect(shell.stdoutText == "256\n")
            // 100 terminal processes: a pty master, two connections and a pidfd each in the
            // agent, well past the 256 it was started with.
            var running: [(UInt32, HostStdio)] = []
            for _ in 0..<100 {
                running.append(try await guest.start(.utilityVM, args: ["/bin/cat"], stdin: true, terminal: true))
            }
            #expect(resourceCounts(guest.pid).fds > 256)
            for (pid, stdio) in running {
                _ = try await guest.client.send(SignalProcessRequest(base: RequestBase(containerId: uvmContainerID), processId: pid,
                                                                       options: SignalProcessOptions(signal: SIGKILL)))
                _ = try await stdio.stdout!.readToEnd()
                stdio.close()
                #expect(try await wait(guest, uvmContainerID, pid) == UInt32.max)  // -1: signalled, as Go reports it
            }
        }
    }

    @Test("a program that is not there, or a NUL byte in an argument: a clear error, with and without stdio or a terminal; nothing leaks, the agent keeps serving")
    func missingProgram() async throws {
        try await withGuest("missing-program") { guest in
            _ = try await guest.run(.utilityVM, args: ["/bin/true"])
            let before = resourceCounts(guest.pid)
            for (stdout, terminal) in [(false, false), (true, false), (true, true)] {
                do {
                    _ = try await guest.start(.utilityVM, args: ["/nonexistent/program"], stdout: stdout, stderr: stdout, terminal: terminal)
                    Issue.record("a missing program started")
                } catch let error as GuestRPCError {
                    #expect(error.hresult == .fail)
                    #expect(error.base.errorMessage.contains("/nonexistent/program"), "\(error.base.errorMessage)")
                    #expect(error.base.errorMessage.contains("No such file or directory"), "\(error.base.errorMessage)")
                }
                do {
                    _ = try await guest.start(.utilityVM, args: ["no-such-program-anywhere"], stdout: stdout, stderr: stdout, terminal: terminal)
                    Issue.record("a missing program started")
                } catch let error as GuestRPCError {
                    #expect(error.base.errorMessage.contains("executable file not found in $PATH"), "\(error.base.errorMessage)")
                }
            }
            // A NUL byte (JSON \u0000) in an argument or the environment: refused, as Go refuses it
            // (EINVAL), not cut short at the NUL and run.
            for (args, environment) in [(["/bin/echo", "cut\u{0}short"], [:]), (["/bin/true"], ["A": "b\u{0}c"])] {
                do {
                    _ = try await guest.start(.utilityVM, args: args, stdout: false, stderr: false, environment: environment)
                    Issue.record("a NUL byte was passed on: \(args) \(environment)")
                } catch let error as GuestRPCError {
                    #expect(error.hresult == .fail)
                    #expect(error.base.errorMessage.contains("NUL byte"), "\(error.base.errorMessage)")
                }
            }
            let result = try await guest.run(.utilityVM, args: ["/bin/sh", "-c", "echo still serving"])
            #expect(result.stdoutText == "still serving\n")
            let after = resourceCounts(guest.pid)
            #expect(after.fds <= before.fds, "fds \(before.fds) -> \(after.fds)")
        }
    }

    @Test("a terminal process in the VM: output through the pty")
    func terminal() async throws {
        try await withGuest("vm-tty") { guest in
            let result = try await guest.run(.utilityVM, args: ["/bin/sh", "-c", "tty >/dev/null && echo is-a-tty"], terminal: true)
            #expect(result.stdoutText.contains("is-a-tty"))
            #expect(result.exitCode == 0)

            // A host that also asks for stderr with a terminal gets that connection too (every
            // requested port is dialled, §6.1), closed at once: a terminal has no stderr.
            let listeners = try guest.stdioListeners(stdin: false, stdout: true, stderr: true)
            defer { listeners.close() }
            var parameters = ProcessParameters()
            parameters.commandArgs = ["/bin/sh", "-c", "echo through-the-pty"]
            parameters.environment = ["PATH": "/usr/bin:/bin"]
            parameters.createStdOutPipe = true
            parameters.createStdErrPipe = true
            parameters.emulateConsole = true
            let request = listeners.executeProcess(in: uvmContainerID, parameters)
            async let out = listeners.stdout!.listener.accept()
            async let err = listeners.stderr!.listener.accept()
            let pid = try await guest.client.send(request).processId
            let (stdout, stderr) = try await (out, err)
            #expect(try await stderr.readToEnd().isEmpty)
            #expect(String(decoding: try await stdout.readToEnd(), as: UTF8.self).contains("through-the-pty"))
            stdout.close()
            stderr.close()
            #expect(try await wait(guest, uvmContainerID, pid) == 0)
        }
    }

    @Test("1,000 sequential runs leave the agent's fd and thread counts where they were")
    func noLeaks() async throws {
        try await withGuest("leaks") { guest in
            _ = try await guest.run(.utilityVM, args: ["/bin/true"])
            let before = resourceCounts(guest.pid)
            for _ in 0..<1000 { _ = try await guest.run(.utilityVM, args: ["/bin/echo", "x"]) }
            let after = resourceCounts(guest.pid)
            #expect(after.fds <= before.fds, "fds \(before.fds) -> \(after.fds)")
            #expect(after.threads <= before.threads + 1, "threads \(before.threads) -> \(after.threads)")
        }
    }
}

/// The soft RLIMIT_NOFILE of `pid`, from /proc/<pid>/limits.
func softOpenFileLimit(of pid: pid_t) -> Int? {
    guard let text = try? String(decoding: HostFiles.read("/proc/\(pid)/limits"), as: UTF8.self) else { return nil }
    guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") }) else { return nil }
    return line.dropFirst("Max open files".count).split(separator: " ").first.flatMap { Int($0) }
}
