import Bridge
import EventLoop
import Glibc
import HostSupport
import Logging
import Testing

@Suite("End to end: host disconnect")
struct ReconnectTests {
    @Test("containers survive a host disconnect; the agent re-dials, renegotiates and delivers the queued exit notification")
    func reconnect() async throws {
        try await withGuest("reconnect") { guest in
            let dying = try await startContainer(guest, id: "dies-while-away")
            try await startContainer(guest, id: "keeps-running")
            var logger = Logger(label: "reconnect")
            logger.logLevel = .warning
            try await guest.reconnect(logger: logger) {
                // The host is away: the container's init dies (killed from outside the bridge).
                #expect(kill(pid_t(dying), SIGKILL) == 0)
            }
            var notification: ContainerNotification?
            for await n in guest.client.notifications { notification = n; break }
            #expect(notification?.base.containerId == "dies-while-away")
            #expect(notification?.type == "UnexpectedExit")
            #expect(try await wait(guest, "dies-while-away", dying) == 137)
            let alive = try await guest.run(.exec("keeps-running", Busybox.process(args: ["echo", "still here"])))
            #expect(alive.stdoutText == "still here\n")
            for id in ["dies-while-away", "keeps-running"] {
                _ = try? await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            }
        }
    }
}
