import EventLoop
import Glibc
import Logging

/// Forwards the kernel's log (`/dev/kmsg`) into the agent's own (guest-behaviour §3.2 step 4),
/// so that the host, which reads the agent's log, also sees an OOM kill, a hung task or a
/// driver error in the VM. Records of `maxLevel` or more severe are logged (kernel levels:
/// 0 emergency ... 7 debug; `-kmsgLogLevel`, default 4: warnings and worse), from the start of
/// the kernel's buffer, as hcsshim's agent does.
public enum KernelLogForwarder {
    /// One `/dev/kmsg` record.
    struct Record: Equatable {
        var level: Int
        var sequence: UInt64
        var message: String
    }

    /// Starts forwarding on `loop`; nil (after a warning) when the log cannot be opened.
    public static func start(maxLevel: Int, path: String = "/dev/kmsg", loop: EventLoop, logger: Logger) -> Task<Void, Never>? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            logger.warning("kernel log not forwarded", metadata: ["path": "\(path)", "error": "\(SyscallError("open", errno: errno))"])
            return nil
        }
        let log: AsyncFD
        do { log = try AsyncFD(OwnedFD(adopting: fd), loop: loop) } catch {
            logger.warning("kernel log not forwarded", metadata: ["path": "\(path)", "error": "\(error)"])
            return nil
        }
        return Task(executorPreference: loop) {
            defer { log.close() }
            // A read returns one whole record; the kernel refuses buffers too small for it.
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 10, alignment: 1)
            defer { buffer.deallocate() }
            var records = 0
            while !Task.isCancelled {
                // At start the whole kernel buffer is there to read: let the loop's other work
                // in every 64 records.
                records += 1
                if records % 64 == 0 { await Task.yield() }
                let n: Int
                do {
                    n = try await log.read(into: buffer)
                } catch let error as SyscallError where error.errno == EPIPE {
                    continue  // records were overwritten before we read them: go on with the next
                } catch {
                    if !Task.isCancelled { logger.warning("kernel log forwarding stopped", metadata: ["error": "\(error)"]) }
                    return
                }
                if n == 0 { return }
                guard let record = parse(UnsafeRawBufferPointer(rebasing: buffer[..<n])), record.level <= maxLevel else { continue }
                logger.log(level: logLevel(record.level), "\(record.message)", metadata: ["source": "kmsg", "seq": "\(record.sequence)"])
            }
        }
    }

    /// Parses `prio,seq,usec,flags[,...];text\n[ KEY=value\n...]`. The level is the low three
    /// bits of the priority (the rest is the facility).
    static func parse(_ bytes: UnsafeRawBufferPointer) -> Record? {
        guard let semicolon = bytes.firstIndex(of: UInt8(ascii: ";")) else { return nil }
        let fields = bytes[..<semicolon].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard fields.count >= 3,
              let priority = Int(String(decoding: fields[0], as: UTF8.self)),
              let sequence = UInt64(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        let text = bytes[(semicolon + 1)...]
        let end = text.firstIndex(of: UInt8(ascii: "\n")) ?? text.endIndex
        return Record(level: priority & 7, sequence: sequence, message: String(decoding: text[..<end], as: UTF8.self))
    }

    /// The log level a kernel level is forwarded at.
    static func logLevel(_ kernelLevel: Int) -> Logger.Level {
        switch kernelLevel {
        case ...2: return .critical
        case 3: return .error
        case 4: return .warning
        case 5: return .notice
        case 6: return .info
        default: return .debug
        }
    }
}
