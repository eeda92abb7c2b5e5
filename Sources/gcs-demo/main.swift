// gcs-demo: a local stand-in for hcsshim's host side. Starts the real `gcs` on the Unix-socket
// transport, negotiates, creates a busybox container with runc, runs a command with its output
// shown live, runs a TTY process (resized through the bridge), and tears everything down.
import Bridge
import EventLoop
import FoundationEssentials
import Glibc
import HostSupport
import Logging

func say(_ text: String) { print("[host] \(text)"); fflush(nil) }

/// Copies a stream to our stdout as it arrives, prefixed per line.
func show(_ conn: AsyncFD?, prefix: String) async throws {
    guard let conn else { return }
    var pending = ""
    while true {
        let chunk = try await conn.read(upTo: 4096)
        if chunk.isEmpty { break }
        pending += String(decoding: chunk, as: UTF8.self).replacingCarriageReturns()
        while let newline = pending.firstIndex(of: "\n") {
            print("\(prefix) \(pending[..<newline])")
            fflush(nil)
            pending = String(pending[pending.index(after: newline)...])
        }
    }
    if !pending.isEmpty { print("\(prefix) \(pending)") }
}

/// The gcs to drive: `$GCS_BINARY` when set (the static build, or a wrapper that profiles it),
/// else the one built next to this tool.
func gcsPath() -> String {
    if let override = getenv("GCS_BINARY") { return String(cString: override) }
    let me = CommandLine.arguments[0]
    guard let slash = me.lastIndex(of: "/") else { return "gcs" }
    return String(me[..<slash]) + "/gcs"
}

var logger = Logger(label: "gcs-demo")
logger.logLevel = .warning
let work = "/tmp/swift-gcs-demo-\(getpid())"
let id = "demo-busybox"
var started: LocalGuest?
do {
    say("starting gcs (\(gcsPath())) on the Unix-socket transport, state in \(work)")
    // `$GCS_DEMO_REQUEST_TIMEOUT` (seconds) replaces hcsshim's 5 minutes: scripts/order-file.sh
    // drives a single-stepped gcs, whose container create takes longer than that.
    var configuration = BridgeClient.Configuration()
    if let text = getenv("GCS_DEMO_REQUEST_TIMEOUT"), let seconds = Int(String(cString: text)) { configuration.requestTimeout = .seconds(seconds) }
    let guest = try await LocalGuest.start(gcsBinary: gcsPath(), workDirectory: work, configuration: configuration, logger: logger)
    started = guest
    say("negotiated protocol v4 with gcs pid \(guest.pid)")

    let bundle = "\(work)/bundles/\(id)"
    let rootfs = try Busybox.makeRootfs(in: "\(work)/images/busybox")
    _ = bundle
    try await guest.createContainer(id: id, spec: Busybox.spec(rootfs: rootfs, args: ["sleep", "3600"], hostname: "demo"))
    say("created container \(id) (runc create)")
    let initProcess = try await guest.start(.containerInit(id), stdout: false, stderr: false)
    say("started its init, pid \(initProcess.pid)")

    say("exec: sh -c 'echo hello; uname -a; echo to-stderr >&2'")
    let (pid, stdio) = try await guest.start(.exec(id, Busybox.process(args: ["sh", "-c", "echo hello; uname -a; echo to-stderr >&2"])))
    async let wait = guest.client.send(WaitForProcessRequest(base: RequestBase(containerId: id), processId: pid))
    async let out: Void = show(stdio.stdout, prefix: "  stdout |")
    async let err: Void = show(stdio.stderr, prefix: "  stderr |")
    _ = try await (out, err)
    stdio.close()
    say("pid \(pid) exited with \(try await wait.exitCode)")

    say("exec with a terminal: read a line, then print the terminal size")
    let tty = try await guest.start(.exec(id, Busybox.process(args: ["sh", "-c", "read line; echo \"got: $line\"; stty size"], terminal: true)),
                                    stdin: true, terminal: true)
    _ = try await guest.client.send(ResizeConsoleRequest(base: RequestBase(containerId: id), processId: tty.pid, height: 40, width: 120))
    say("resized the console to 40x120; typing \"hello tty\"")
    try await tty.stdio.stdin?.writeAll(Array("hello tty\n".utf8))
    async let ttyWait = guest.client.send(WaitForProcessRequest(base: RequestBase(containerId: id), processId: tty.pid))
    try await show(tty.stdio.stdout, prefix: "  tty    |")
    tty.stdio.close()
    say("pid \(tty.pid) exited with \(try await ttyWait.exitCode)")

    let list = try await guest.client.send(try GetPropertiesRequest(base: RequestBase(containerId: id), propertyTypes: ["ProcessList"]))
    say("process list: \(list.properties)")

    say("ShutdownForced (runc kill 9), wait for the init, DeleteContainerState")
    _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
    let code = try await guest.client.send(WaitForProcessRequest(base: RequestBase(containerId: id), processId: initProcess.pid)).exitCode
    say("init exited with \(code)")
    for await notification in guest.client.notifications {
        say("notification: \(notification.type) for \(notification.base.containerId)")
        break
    }
    _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
    let status = try await guest.stop()
    say("gcs stopped (\(status)); done")
    HostFiles.removeTree(work)
} catch {
    say("demo failed: \(error)")
    started?.kill()
    if let log = try? String(decoding: HostFiles.read("\(work)/gcs.log"), as: UTF8.self) { print(log) }
    say("state kept for a look in \(work)")
    exit(1)
}

extension String {
    /// Terminal output ends lines with \r\n; show it as plain lines.
    func replacingCarriageReturns() -> String { String(filter { $0 != "\r" }) }
}
