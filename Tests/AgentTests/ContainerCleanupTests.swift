@testable import Agent
import Bridge
import EventLoop
import Glibc
import HostSupport
import Shims
import Testing

/// What the agent removes, and what it must never remove, when containers go away or fail.
@Suite("End to end: container clean-up", .timeLimit(.minutes(5)))
struct ContainerCleanupTests {
    @Test("runc's container ID rule, applied before any path is built from an ID")
    func idRule() {
        for valid in ["a", "0f3c9a1e7b2d", "pod-sandbox", "a+b,c-d.e_F9", "...", "a..b"] { #expect(ContainerID.isValid(valid), "\(valid)") }
        for invalid in ["", ".", "..", "a/b", "../x", "x y", "tab\t", "ü", "a:b", "a*"] { #expect(!ContainerID.isValid(invalid), "\(invalid)") }
    }

    @Test("a Create with an ID such as '..' is refused with E_INVALIDARG and removes nothing; the agent serves on")
    func invalidIDs() async throws {
        try await withGuest("bad-ids") { guest in
            // The run directory's parent: a failed create once removed `<run dir>/<id>`, which for
            // `..` is this directory, with everything in it.
            let sentinel = "\(guest.workDirectory)/sentinel"
            try writeFile(sentinel, Array("keep\n".utf8))
            for id in ["..", ".", "a/../..", "x y"] {
                let result = await hresult {
                    try await guest.createContainer(id: id, spec: Busybox.spec(rootfs: sharedRootfs, args: ["true"]),
                                                    bundle: "\(guest.workDirectory)/bundles/\(id)")
                }
                #expect(result == .invalidArgument, "\(id)")
            }
            #expect(access(sentinel, F_OK) == 0)
            #expect(access("\(guest.workDirectory)/gcs.log", F_OK) == 0)
            let alive = try await guest.run(.utilityVM, args: ["/bin/echo", "alive"])
            #expect(alive.stdoutText == "alive\n")
        }
    }

    @Test("DeleteContainerState removes the scratch directory and, for a sandbox in the shim v2 layout, its pod directory")
    func scratchAndPodDirectory() async throws {
        try await withGuest("scratch") { guest in
            let id = "scratch-sandbox"
            let podDirectory = "\(guest.workDirectory)/pods/pod-1", bundle = "\(podDirectory)/\(id)"
            // The host's scratch disk: a writable layer the container filled.
            let scratch = "\(guest.workDirectory)/scratch-disk/scratch/pod-1/\(id)"
            try makeDirectory("\(scratch)/upper/var/log", mode: 0o755)
            try makeDirectory("\(scratch)/work", mode: 0o755)
            try writeFile("\(scratch)/upper/var/log/app.log", Array(repeating: UInt8(ascii: "x"), count: 4096))
            guard case .object(var spec) = Busybox.spec(rootfs: sharedRootfs, args: ["sleep", "3600"]) else { return }
            spec.append(("annotations", .object([("io.kubernetes.cri.container-type", .string("sandbox"))])))
            try await guest.createContainer(id: id, spec: .object(spec), bundle: bundle, scratch: scratch)
            let initPID = try await guest.start(.containerInit(id), stdout: false, stderr: false).pid
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
            #expect(try await wait(guest, id, initPID) == 137)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            #expect(access(scratch, F_OK) != 0)
            #expect(access(bundle, F_OK) != 0)
            #expect(access(podDirectory, F_OK) != 0)
            // What is not the container's stays: the scratch disk and the pods directory.
            #expect(access("\(guest.workDirectory)/scratch-disk/scratch/pod-1", F_OK) == 0)
            #expect(access("\(guest.workDirectory)/pods", F_OK) == 0)
        }
    }

    @Test("DeleteContainerState with a filesystem still mounted in the bundle: the error is answered, the mount's files kept, the container forgotten")
    func mountLeftInBundle() async throws {
        try await withGuest("mount-left") { guest in
            let id = "mount-left"
            let initPID = try await startContainer(guest, id: id, args: ["true"])
            #expect(try await wait(guest, id, initPID) == 0)
            // What the host may leave there: e.g. a layer it has not unmounted yet.
            let mountPoint = "\(guest.workDirectory)/bundles/\(id)/extra"
            try makeDirectory(mountPoint)
            try #require(shim_mount_fs("tmpfs", mountPoint, "tmpfs", "size=1m") == 0)
            defer { _ = shim_umount(mountPoint) }
            try writeFile("\(mountPoint)/keep", Array("x".utf8))
            let refused = await #expect(throws: GuestRPCError.self) {
                _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
            }
            #expect(refused?.hresult == .fail)
            #expect(refused?.description.contains("another filesystem is mounted there") == true)
            #expect(access("\(mountPoint)/keep", F_OK) == 0)
            // Forgotten all the same (§7.11 step 8).
            #expect(await hresult { _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id))) }
                    == .systemNotFound)
        }
    }

    @Test("a failed exec leaves nothing in the container's run directory")
    func failedExec() async throws {
        try await withGuest("failed-exec") { guest in
            let id = "failed-exec"
            let initPID = try await startContainer(guest, id: id)
            let runDirectory = "\(guest.workDirectory)/gcsrunc/\(id)"
            let before = Set(LocalDirectory.entries(runDirectory))
            #expect(before == ["initpid", "\(initPID)"])
            for _ in 0..<3 {
                let missing = await hresult { _ = try await guest.run(.exec(id, Busybox.process(args: ["/no/such/binary"]))) }
                #expect(missing != nil)
            }
            #expect(Set(LocalDirectory.entries(runDirectory)) == before)
            _ = try await guest.client.send(ShutdownForcedRequest(base: RequestBase(containerId: id)))
            #expect(try await wait(guest, id, initPID) == 137)
            _ = try await guest.client.send(DeleteContainerStateRequest(base: RequestBase(containerId: id)))
        }
    }
}
