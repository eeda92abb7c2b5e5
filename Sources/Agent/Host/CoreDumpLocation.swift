import Bridge
import Glibc

/// `-core-dump-location`: where the VM's processes dump core. hcsshim passes it when the
/// host asked for process dumps; the agent writes it, verbatim, as the kernel's core pattern
/// before it serves (guest-behaviour §3.2 step 3).
public enum CoreDumpLocation {
    /// Writes `pattern` to `file` (the kernel's core pattern outside tests).
    public static func apply(_ pattern: String, file: String = "/proc/sys/kernel/core_pattern") throws(BridgeError) {
        let fd = open(file, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw BridgeError(.fail, "core dump location: open \(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var pattern = pattern
        let written = pattern.withUTF8 { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == pattern.utf8.count else {
            throw BridgeError(.fail, "core dump location: write \(file): \(String(cString: strerror(errno)))")
        }
    }
}
