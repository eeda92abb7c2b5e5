import Bridge
import Glibc

/// `-core-dump-location`: where the VM's processes dump core. hcsshim passes it when the
/// host asked for process dumps; the agent writes it, verbatim, as the kernel's core pattern
/// before it serves (guest-behaviour §3.2 step 3).
public enum CoreDumpLocation {
    /// Writes `pattern` to `file` (the kernel's core pattern outside tests).
    public static func apply(_ pattern: String, file: String = "/proc/sys/kernel/core_pattern") throws(BridgeError) {
        try ControlFile.write(pattern, to: file, what: "core dump location")
    }
}
