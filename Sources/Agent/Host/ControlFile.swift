import Bridge
import Glibc

/// Kernel control files (cgroupfs, procfs) take one value per write(2): the value is written
/// whole, in one call, and a failure says which file and why, prefixed with `what`.
enum ControlFile {
    static func write(_ text: String, to path: String, what: String) throws(BridgeError) {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw BridgeError(.fail, "\(what): open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var text = text
        let written = text.withUTF8 { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == text.utf8.count else {
            throw BridgeError(.fail, "\(what): write \(text) to \(path): \(String(cString: strerror(errno)))")
        }
    }
}
