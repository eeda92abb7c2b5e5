import EventLoop
import Glibc
import Logging

/// Keeps the VM's clock on the host's (guest-behaviour §3.2 step 10): chronyd, disciplined by
/// the PTP clock Hyper-V exposes to the guest, run under a restart monitor for the agent's
/// life. A utility VM is paused, saved and migrated, and its clock jumps; without this its
/// containers see the wrong time (TLS certificates, tokens, logs).
///
/// Where the Go agent treats a missing Hyper-V clock as fatal, this one logs an error and runs
/// on: the containers still work, and a VM image without the device should not lose its agent.
public struct TimeSync: Sendable, Equatable {
    /// Where the PTP clocks are listed (`<dir>/<ptpN>/clock_name`).
    public var ptpClassDirectory = "/sys/class/ptp"
    /// The chrony configuration written at start.
    public var configurationPath = "/tmp/chronyd.conf"
    /// The chronyd program (a bare name is looked up in the agent's PATH).
    public var chronyd = "chronyd"
    /// The restart monitor's first pause; each failure multiplies it by 1.5, up to `maxBackoff`.
    public var initialBackoff: Duration = .milliseconds(500)
    public var maxBackoff: Duration = .seconds(600)

    public init() {}

    /// The PTP device whose clock is Hyper-V's (`ptp0`), if any.
    public func hyperVClock() -> String? {
        LocalDirectory.entries(ptpClassDirectory).sorted().first { device in
            (try? readFile("\(ptpClassDirectory)/\(device)/clock_name")) == "hyperv\n"
        }
    }

    /// The chrony configuration for `/dev/<device>`: the host's clock as reference, stepped
    /// when more than 0.1 s off (at any time: the VM may have been paused).
    static func configuration(device: String) -> String {
        "refclock PHC /dev/\(device) poll 3 dpoll -2 offset 0 stratum 2\nmakestep 0.1 -1\n"
    }

    /// Writes the configuration and starts the restart monitor; nil (after logging why) when
    /// there is no Hyper-V clock, no chronyd, or the configuration cannot be written.
    public func start(reaper: Reaper, loop: EventLoop, logger: Logger) -> Task<Void, Never>? {
        guard let device = hyperVClock() else {
            logger.error("time sync: no Hyper-V PTP clock (clock_name 'hyperv') in \(ptpClassDirectory); the VM's clock is not synchronised")
            return nil
        }
        guard let program = try? ExternalProcess.resolve(chronyd), access(program, X_OK) == 0 else {
            logger.error("time sync: \(chronyd) not found (or not executable); the VM's clock is not synchronised")
            return nil
        }
        do {
            try writeFile(configurationPath, Array(Self.configuration(device: device).utf8))
        } catch {
            logger.error("time sync: the chronyd configuration was not written", metadata: ["path": "\(configurationPath)", "error": "\(error)"])
            return nil
        }
        let request = SpawnRequest(path: program, arguments: [program, "-n", "-f", configurationPath],
                                   environment: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        logger.info("time sync: chronyd on /dev/\(device)", metadata: ["config": "\(configurationPath)"])
        return Task(executorPreference: loop) { [initialBackoff, maxBackoff] in
            var backoff = initialBackoff
            while !Task.isCancelled {
                let started = ContinuousClock.now
                var outcome: String
                do {
                    let pid = try Spawn.start(request, stdio: [nil, nil, nil])
                    // The stop signal goes through a pidfd (ChildProcess, used only to signal:
                    // the Reaper reaps), opened before the Reaper (on this loop) can run: once
                    // chronyd is reaped its pid may be reused, the pidfd not.
                    let child: ChildProcess?
                    do { child = try ChildProcess(pid: pid, loop: loop) } catch {
                        logger.warning("time sync: no pidfd for chronyd; it is stopped by pid", metadata: ["error": "\(error)"])
                        child = nil
                    }
                    let status = await withTaskCancellationHandler {
                        await reaper.wait(pid: pid)
                    } onCancel: {
                        // The agent is stopping: so does chronyd.
                        if let child { try? child.signal(SIGTERM) } else { _ = kill(pid, SIGTERM) }
                    }
                    outcome = "\(status)"
                } catch let error as SyscallError where [ENOENT, EACCES, ENOEXEC].contains(error.errno) {
                    // Restarting cannot help a program that cannot be run.
                    logger.error("time sync: chronyd cannot be started; the VM's clock is not synchronised", metadata: ["error": "\(error)"])
                    return
                } catch {
                    outcome = "\(error)"
                }
                if Task.isCancelled { return }
                // A chronyd that ran for long was healthy: start again from the first pause.
                if ContinuousClock.now - started >= maxBackoff { backoff = initialBackoff }
                logger.warning("time sync: chronyd ended; restarting", metadata: ["result": "\(outcome)", "in": "\(backoff)"])
                do { try await loop.sleep(for: backoff) } catch { return }
                backoff = min(backoff * 1.5, maxBackoff)
            }
        }
    }
}
