import Bridge
import Glibc
import Logging
import Synchronization

/// `-log-format json`: one JSON object per line on stderr, as hcsshim's host expects from the
/// guest's log stream (logrus JSON: "time" in RFC 3339 with nanoseconds, "level", "msg", then
/// the metadata as string fields). The host decodes the stream line by line and stops reading
/// it for good at the first broken line, so every line goes out whole (`LogLineWriter`).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let label: String
    /// Where the lines go: standard error, or a test's descriptor.
    let writer: LogLineWriter

    /// A handler writing to `fd`: standard error (the agent's), or a test's descriptor.
    public init(logLevel: Logger.Level = .info, label: String, fd: Int32 = 2) {
        self.logLevel = logLevel
        self.label = label
        writer = fd == 2 ? LogLineWriter.standardError : LogLineWriter(fd: fd)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Strings escaped by the bridge's own JSON writer, straight into the line's bytes.
        var line: [UInt8] = []
        line.reserveCapacity(128)
        func member(_ key: String, _ value: String, first: Bool = false) {
            line.append(UInt8(ascii: first ? "{" : ","))
            JSONValue.writeString(key, to: &line)
            line.append(UInt8(ascii: ":"))
            JSONValue.writeString(value, to: &line)
        }
        member("time", Self.timestamp(), first: true)
        member("level", Self.name(event.level))
        member("msg", event.message.description)
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() { member(key, merged[key]!.description) }
        line.append(contentsOf: [UInt8(ascii: "}"), UInt8(ascii: "\n")])
        writer.write(line)
    }

    /// logrus level names.
    static func name(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "trace"
        case .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warning"
        case .error: "error"
        case .critical: "fatal"
        }
    }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var tm = tm()
        var seconds = ts.tv_sec
        gmtime_r(&seconds, &tm)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &tm)
        let base = buffer.withUnsafeBufferPointer { String(decoding: UnsafeRawBufferPointer($0).prefix(n), as: UTF8.self) }
        let nanos = String(ts.tv_nsec)
        return base + "." + String(repeating: "0", count: 9 - nanos.count) + nanos + "Z"
    }
}

/// Writes whole lines to one descriptor: one writer at a time (every thread logs), and each line
/// to its end, through short writes (a signal arriving mid-write; a full non-blocking
/// descriptor is waited on). A line the descriptor refuses (EPIPE, EBADF...) is dropped whole
/// from that point: logging never stops the agent.
final class LogLineWriter: Sendable {
    static let standardError = LogLineWriter(fd: 2)
    let fd: Int32
    private let lock = Mutex<Void>(())

    init(fd: Int32) { self.fd = fd }

    func write(_ line: [UInt8]) {
        line.withUnsafeBufferPointer { bytes in
            guard let base = bytes.baseAddress else { return }
            lock.withLock { _ in
                var offset = 0
                while offset < bytes.count {
                    let n = Glibc.write(fd, base + offset, bytes.count - offset)
                    if n > 0 { offset += n; continue }
                    if n < 0 && errno == EINTR { continue }
                    guard n < 0 && errno == EAGAIN else { return }
                    var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&ready, 1, -1)
                }
            }
        }
    }
}
