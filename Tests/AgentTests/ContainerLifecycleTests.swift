@testable import Agent
import Bridge
import EventLoop
import Glibc
import HostSupport
import Synchronization
import Testing

@Suite("End to end: containers", .timeLimit(.minutes(5)))
struct ContainerLifecycleTests {
    @Test("create, start, exec, wait, exit codes 0/1/137, delete; state cleaned", arguments: ["pass-through", "relay"])
    func lifecycle(execStdio: String) async throws {
        try await withGuest("lifecycle-\(execStdio)", arguments: ["--exec-stdio", execStdio]) { guest in
            let id = "lifecycle-\(execStdio)"  // distinct per mode, for readable logs
            let initPID = try await startContainer(guest, id: id)
            #expect(initPID > 0)
            let ok = try await guest.run(.exec(id, Busybox.process(args: ["sh", "-c", "echo hello; echo oops >&2"])))
            #expect(ok.exitCode == 0)
            #expect(ok.stdoutText == "hello\n")
            #expect(ok.stderrText == "oops\n")
            // Relayed (the default, as in Go's guest), fds 0-2 are pipes, which /dev/stdout and
            // /dev/stderr open; the host's sockets passed through do not (ENXIO): why pass-through
            // is not the default.
            let devices = try await guest.run(.exec(id, Busybox.process(args: ["sh", "-c", "echo out > /dev/stdout; echo err > /dev/stderr"])))
            if execStdio == "relay" {
                #expect(devices.exitCode == 0 && devices.stdoutText == "out\n" && devices.stderrText == "err\n", "\(devices.stderrText)")
            } else {
                #expect(devices.exitCode != 0 && devices.stdoutText.isEmpty && devices.stderrText.contains("No such device or address"), "\(devices.stderrText)")
            }
            let fail = try await guest.run(.exec(id, Busybox.process(args: ["sh", "-c", "exit 1"])))
            #expect(fail.exitCode == 1)
            // An exec waited for is forgotten, with its files: a second wait finds no such process.
            #expect(access("\(guest.workDirectory)/gcsrunc/\(id)/\(fail.pid)", F_OK) != 0)
            #expect(await hresult { _ = try await wait(guest, id, fail.pid) } == .notFound)
            let stdin = try await guest.run(.exec(id, Busybox.process(args: ["cat"])), input: Array("echo through cat\n".utf8))
            #expect(stdin.stdoutText == "echo through cat\n")
            let big = try await guest.run(.exec(id, Busybox.process(args: ["sh", "-c", "dd if=/dev/zero bs=4096 count=256 2>/dev/null; echo tail >&2"])))
            #expect(big.stdout.count == 1 << 20 && big.stdout.allSatisfy { $0 == 0 })
            #expect(big.stderrText == "tail\n")
            // GetProperties: process list and cgroup statistics of the running container.
            let properties = try await guest.client.send(try GetPropertiesRequest(base: RequestBase(containerId: id),
                                                                                   propertyTypes: ["ProcessList", "Statistics", "Memory"]))
            #expect(properties.properties.contains("{\"ProcessId\":\(initPID)}"))
            #expect(properties.properties.contains("\"LCOWMetrics\":{"))
            #expect(properties.properties.contains("\"current\":1"))
            #expect(properties.properties.contains("\"memory\":{"))
            _ = try await guest.client.send(SignalProcessRequest(base: RequestBase(containerId: id), processId: initPID,
                                                                   options: SignalProcessOptions(signal: SIGKILL)))
            #expect(try await wait(guest, id, initPID) == 137)
            // wait after exit returns at once
            #expect(try await wait(guest, id, initPID) == 137)
            var notification: ContainerNotification?
            for await n in guest.client.notifications { notification = n; break }
            #expect(notification?.type == "ForcedExit")
            #expect(notification?.base.containerId == id)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            #expect(access("\(guest.workDirectory)/gcsrunc/\(id)", F_OK) != 0)
            #expect(access("\(guest.workDirectory)/bundles/\(id)", F_OK) != 0)
            #expect(access("\(guest.workDirectory)/runc/\(id)", F_OK) != 0)
        }
    }

    @Test("a container without a pid namespace of its own: when the init exits, the rest is killed and the exit reported",
          .timeLimit(.minutes(1)))
    func sharedPidNamespace() async throws {
        try await withGuest("shared-pidns") { guest in
            let id = "shared-pidns"
            guard case .object(var spec) = Busybox.spec(rootfs: sharedRootfs, args: ["sh", "-c", "sleep 3600 & echo started"]),
                  let linux = spec.firstIndex(where: { $0.key == "linux" }),
                  case .array(let namespaces)? = spec[linux].value["namespaces"] else { Issue.record("busybox spec"); return }
            spec[linux].value.setMember(["namespaces"], .array(namespaces.filter { $0["type"] != .string("pid") }))
            try await guest.createContainer(id: id, spec: .object(spec))
            // The background sleep holds the init's stdout: without the kill, the output never
            // ends and the exit is never reported.
            let (initPID, stdio) = try await guest.start(.containerInit(id), stdout: true, stderr: false)
            #expect(String(decoding: try await stdio.stdout?.readToEnd() ?? [], as: UTF8.self) == "started\n")
            stdio.close()
            #expect(try await wait(guest, id, initPID, timeoutMs: 20_000) == 0)
            let procs = "/sys/fs/cgroup/pids\(guest.cgroupParent)/\(id)/cgroup.procs"
            if access(procs, F_OK) == 0 {
                // SIGKILL is sent, not yet acted on, when the exit is reported: give it 5 s.
                let deadline = ContinuousClock.now.advanced(by: .seconds(5))
                while !(try HostFiles.read(procs)).isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
                let left = String(decoding: try HostFiles.read(procs), as: UTF8.self)
                #expect(left.isEmpty, "left running: \(left)")
            }
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("SIGTERM to a process, graceful and forced container shutdown")
    func signalsAndShutdown() async throws {
        try await withGuest("signals") { guest in
            let id = "signals"
            let initPID = try await startContainer(guest, id: id, args: Self.exitsOnTerm)
            let (sleeper, stdio) = try await guest.start(.exec(id, Busybox.process(args: ["sleep", "100"])), stdout: false, stderr: false)
            stdio.close()
            #expect(access("\(guest.workDirectory)/gcsrunc/\(id)/\(sleeper)/process.json", F_OK) == 0)
            _ = try await guest.client.send(SignalProcessRequest(base: RequestBase(containerId: id), processId: sleeper,
                                                                   options: SignalProcessOptions(signal: SIGTERM)))
            #expect(try await wait(guest, id, sleeper) == 128 + UInt32(SIGTERM))
            #expect(access("\(guest.workDirectory)/gcsrunc/\(id)/\(sleeper)", F_OK) != 0)
            try await shutDownGracefully(guest, id, initPID)

            let forced = "forced"
            let forcedInit = try await startContainer(guest, id: forced, args: ["sh", "-c", "trap '' TERM; sleep 3600"])
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: forced)))
            #expect(try await wait(guest, forced, forcedInit) == 137)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: forced)))
        }
    }

    @Test("a graceful shutdown reports GracefulExit even when the init is gone before runc kill returns")
    func shutdownRace() async throws {
        // The init's exit, and its notification, come while ShutdownGraceful still waits for runc
        // kill: the order in which the exit type was once reported as UnexpectedExit.
        try await withSlowRunc(command: "kill") { runc in
            try await withGuest("shutdown-race", arguments: ["--runc", runc]) { guest in
                let initPID = try await startContainer(guest, id: "race", args: Self.exitsOnTerm)
                try await shutDownGracefully(guest, "race", initPID)
            }
        }
    }

    @Test("a runc that writes megabytes to stderr and fails: the request fails with the start of it, the agent does not wait for good",
          .timeLimit(.minutes(1)))
    func chattyRunc() async throws {
        try #require(access("/usr/bin/perl", X_OK) == 0, "the runc stand-in is a perl one-liner (perl-base is essential in Debian)")
        let script = #"""
            #!/bin/sh
            case " $* " in *" kill "*) exec perl -e '
                use Fcntl; $| = 1;
                # Waits for room as runc (Go) does: the pipe from the agent comes non-blocking.
                fcntl(STDERR, F_SETFL, fcntl(STDERR, F_GETFL, 0) & ~O_NONBLOCK);
                syswrite(STDERR, "kill failed:" . ("x" x 3000000)) == 3000012 or exit 2; exit 1' ;;
            esac
            exec /usr/sbin/runc "$@"
            """#
        try await withRuncWrapper(script) { runc in
            try await withGuest("chatty-runc", arguments: ["--runc", runc]) { guest in
                try await startContainer(guest, id: "chatty")
                do {
                    _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: "chatty")))
                    Issue.record("runc kill failed, the shutdown did not")
                } catch let error as GuestRPCError {
                    #expect(error.base.errorMessage.contains("runc: kill failed:"), "\(error.base.errorMessage.prefix(100))")
                }
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: "chatty")))
            }
        }
    }

    @Test("an init that exits while runc start runs leaves the container stopped, not running")
    func startRace() async throws {
        try await withSlowRunc(command: "start") { runc in
            try await withGuest("start-race", arguments: ["--runc", runc]) { guest in
                let id = "quick"
                let initPID = try await startContainer(guest, id: id, args: ["true"])
                #expect(try await wait(guest, id, initPID) == 0)
                // Refused by the agent, which knows the container stopped (runc, asked, would say
                // the same words, without the container's id first).
                do {
                    _ = try await guest.start(.exec(id, Busybox.process(args: ["true"])), stdout: false, stderr: false)
                    Issue.record("an exec into a stopped container ran")
                } catch let error as GuestRPCError {
                    #expect(error.hresult == .fail)
                    #expect(error.base.errorMessage.contains("container \(id): cannot exec in a stopped container"), "\(error.base.errorMessage)")
                }
                let dump = try await guest.client.send(DumpStacksRequest(base: RequestBase(containerId: uvmContainerID)))
                #expect(dump.guestStacks.contains("container \(id) stopped"), "\(dump.guestStacks.prefix(400))")
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            }
        }
    }

    /// An init that exits with 42 on SIGTERM.
    static let exitsOnTerm = ["sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done"]

    /// ShutdownGraceful of a container whose init is `exitsOnTerm`: the init exits with 42, the
    /// host is told GracefulExit; then the container is deleted.
    private func shutDownGracefully(_ guest: LocalGuest, _ id: String, _ initPID: UInt32) async throws {
        _ = try await guest.client.send(ShutdownGracefulRequest(base: RequestBase(containerId: id)))
        #expect(try await wait(guest, id, initPID) == 42)
        var notification: ContainerNotification?
        for await n in guest.client.notifications { notification = n; break }
        #expect(notification?.type == "GracefulExit")
        _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
    }

    /// Runs `body` with the path of a runc whose `command` (`start` or `kill`) returns only once
    /// the container's init has exited and been reaped (by gcs): the init's exit then always
    /// reaches the agent while it still waits for runc, the order that races are made of.
    private func withSlowRunc(command: String, _ body: (String) async throws -> Void) async throws {
        let script = #"""
            #!/bin/sh
            /usr/sbin/runc "$@" || exit $?
            slow=\#(command)
            case " $* " in *" $slow "*) ;; *) exit 0 ;; esac
            globals=""; for a in "$@"; do [ "$a" = "$slow" ] && break; globals="$globals $a"; done
            case "$slow" in kill) eval "id=\${$(($# - 1))}" ;; *) eval "id=\${$#}" ;; esac
            pid=$(/usr/sbin/runc $globals state "$id" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
            i=0
            while [ -n "$pid" ] && [ "$pid" != 0 ] && [ -e "/proc/$pid" ] && [ $i -lt 1000 ]; do i=$((i + 1)); sleep 0.01; done
            exit 0

            """#
        try await withRuncWrapper(script, body)
    }

    /// Runs `body` with the path of an executable `script`, for gcs's `--runc`.
    private func withRuncWrapper(_ script: String, _ body: (String) async throws -> Void) async throws {
        let directory = "/tmp/gcs-e2e-runc-wrapper-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(directory, 0o755)
        defer { HostFiles.removeTree(directory) }
        let wrapper = "\(directory)/runc"
        // Written by a child shell, never through a descriptor of this process: a process that
        // other tests fork meanwhile would inherit it, and exec'ing the script while any process
        // holds it open for writing fails with ETXTBSY.
        let writer = try Spawn.start(SpawnRequest(path: "/bin/sh", arguments: ["sh", "-c", #"printf '%s' "$1" > "$2" && chmod 755 "$2""#,
                                                                               "sh", script, wrapper]), stdio: [])
        #expect(try await ChildProcess(pid: writer, loop: .shared).wait() == .exited(0))
        try await body(wrapper)
    }

    @Test("an exec into a created container that was not started yet runs, as in Go's guest (runc execs into its namespaces)")
    func execBeforeStart() async throws {
        try await withGuest("exec-created") { guest in
            let id = "not-started"
            try await guest.createContainer(id: id, spec: Busybox.spec(rootfs: sharedRootfs, args: ["sleep", "3600"]))
            let early = try await guest.run(.exec(id, Busybox.process(args: ["sh", "-c", "echo early"])))
            #expect(early.exitCode == 0 && early.stdoutText == "early\n", "\(early.stderrText)")
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("a TTY exec: output through the pty, resize visible to stty")
    func terminal() async throws {
        try await withGuest("tty") { guest in
            let id = "tty"
            try await startContainer(guest, id: id)
            let (pid, stdio) = try await guest.start(.exec(id, Busybox.process(args: ["sh", "-c", "read line; echo \"got $line\"; stty size"], terminal: true)),
                                                     stdin: true, terminal: true)
            _ = try await guest.client.send(ResizeConsoleRequest(base: RequestBase(containerId: id), processId: pid, height: 33, width: 111))
            try await stdio.stdin?.writeAll(Array("ping\n".utf8))
            let output = String(decoding: try await stdio.stdout!.readToEnd(), as: UTF8.self)
            stdio.close()
            #expect(output.contains("got ping"))
            #expect(output.contains("33 111"))
            #expect(try await wait(guest, id, pid) == 0)
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("the exit notification waits until the host has been told the init's exit code (guest-behaviour §7.6)", .timeLimit(.minutes(2)))
    func notificationAfterWait() async throws {
        try await withGuest("notify-after-wait") { guest in
            let id = "notify-after-wait"
            let initPID = try await startContainer(guest, id: id)
            let arrived = Mutex(false)
            let collector = Task { () -> ContainerNotification? in
                for await n in guest.client.notifications {
                    arrived.withLock { $0 = true }
                    return n
                }
                return nil
            }
            #expect(kill(pid_t(initPID), SIGKILL) == 0)
            // Once the agent has taken the exit (the container shows as stopped)...
            let dump = DumpStacksRequest(base: RequestBase(containerId: uvmContainerID))
            while try await !guest.client.send(dump).guestStacks.contains("container \(id) stopped") {
                try await Task.sleep(for: .milliseconds(2))
            }
            // ...no notification within half a second (a bound on something that must not
            // come): nobody has asked for the exit code.
            try await Task.sleep(for: .milliseconds(500))
            #expect(!arrived.withLock { $0 })
            #expect(try await wait(guest, id, initPID) == 137)
            let notification = await collector.value
            #expect(notification?.type == "UnexpectedExit")
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("ShutdownGraceful on the VM's id: no response; the agent stops serving and exits 0 on its own")
    func vmShutdown() async throws {
        try await withGuest("vm-shutdown") { guest in
            do {
                _ = try await guest.client.send(ShutdownGracefulRequest(base: RequestBase(containerId: uvmContainerID)))
                Issue.record("the VM's shutdown was answered")
            } catch is BridgeClientError {
                // The agent closed the bridge without answering.
            }
            // A deadline, not synchronisation: an agent that hangs is killed and the test fails.
            let deadline = Task {
                try await Task.sleep(for: .seconds(30))
                guest.kill()
            }
            let status = try await guest.waitForExit()
            deadline.cancel()
            #expect(status == .exited(0))
            let log = guest.log()
            #expect(log.contains("UVM shutdown requested by the host"))
            #expect(log.contains("gcs stopped") && !log.contains("stopping on signal"))
        }
    }

    @Test("wait with a timeout fails with the VMCOMPUTE timeout HRESULT, then the real wait works")
    func waitTimeout() async throws {
        try await withGuest("timeout") { guest in
            let id = "timeout"
            let initPID = try await startContainer(guest, id: id)
            let code = await hresult { _ = try await wait(guest, id, initPID, timeoutMs: 50) }
            #expect(code == .timeout)
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
            #expect(try await wait(guest, id, initPID) == 137)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }

    @Test("errors: bad spec, missing rootfs, unknown container, unknown pid; the agent keeps serving")
    func errors() async throws {
        try await withGuest("errors") { guest in
            // No process/root/linux: the Go agent crashes here; we answer.
            let bad = await hresult { try await guest.createContainer(id: "bad", spec: .object([("ociVersion", .string("1.0.2"))])) }
            #expect(bad == .invalidArgument || bad == .fail)
            let missing = await hresult {
                try await guest.createContainer(id: "missing", spec: Busybox.spec(rootfs: "/nonexistent/rootfs", args: ["true"]))
            }
            #expect(missing != nil)
            // A failed create leaves neither its bundle nor its run directory.
            #expect(access("\(guest.workDirectory)/bundles/missing", F_OK) != 0)
            #expect(access("\(guest.workDirectory)/gcsrunc/missing", F_OK) != 0)
            let unknown = await hresult { _ = try await wait(guest, "no-such-container", 1) }
            #expect(unknown == .systemNotFound)
            let id = "errors"
            try await startContainer(guest, id: id)
            let noPid = await hresult { _ = try await wait(guest, id, 999_999) }
            #expect(noPid == .notFound)
            // ProcessIds above Int32.max name no process, in a container or in the VM.
            for pid: UInt32 in [0x8000_0000, .max] {
                #expect(await hresult { _ = try await wait(guest, id, pid) } == .notFound)
                #expect(await hresult { _ = try await wait(guest, uvmContainerID, pid) } == .notFound)
                let signal = SignalProcessRequest(base: RequestBase(containerId: uvmContainerID), processId: pid,
                                                  options: SignalProcessOptions(signal: SIGTERM))
                #expect(await hresult { _ = try await guest.client.send(signal) } == .notFound)
            }
            let duplicate = await hresult { try await guest.createContainer(id: id, spec: Busybox.spec(rootfs: sharedRootfs, args: ["true"])) }
            #expect(duplicate == .systemAlreadyExists)
            // still serving
            let ok = try await guest.run(.exec(id, Busybox.process(args: ["echo", "alive"])))
            #expect(ok.stdoutText == "alive\n")
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }
}
