import Bridge

/// Kernel control files (cgroupfs, procfs): the value is written with the agent's file helper
/// (`writeFile`), and a failure says which file and why, prefixed with `what`.
enum ControlFile {
    static func write(_ text: String, to path: String, what: String) throws(BridgeError) {
        do { try writeFile(path, Array(text.utf8)) } catch { throw BridgeError(.fail, "\(what): \(error)") }
    }
}
