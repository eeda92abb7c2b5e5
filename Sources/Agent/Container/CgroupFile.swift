import Glibc

/// Reading cgroupfs control files: the statistics of a container (`ContainerStatistics`) and
/// the memory figures of the agent's own cgroups (`MemoryCgroup`) read the same kinds of file.
enum CgroupFile {
    /// Whether the cgroupfs at `root` is a unified (v2) hierarchy.
    static func isUnified(root: String) -> Bool { access("\(root)/cgroup.controllers", F_OK) == 0 }

    /// A file holding one number, or "max" (unlimited: UInt64.max). nil when absent.
    static func number(_ path: String) -> UInt64? {
        guard let text = try? readFile(path) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed == "max" ? .max : UInt64(trimmed)
    }

    /// A file of whitespace-separated numbers (cpuacct.usage_percpu); empty when absent or
    /// when any is not a number.
    static func numbers(_ path: String) -> [UInt64] {
        guard let text = try? readFile(path) else { return [] }
        let values = text.split(whereSeparator: \.isWhitespace).map { UInt64($0) }
        return values.contains(nil) ? [] : values.compactMap { $0 }
    }

    /// A flat-keyed file (`key value` per line), e.g. memory.stat, cpu.stat.
    static func keyValues(_ path: String) -> [String: UInt64] {
        guard let text = try? readFile(path) else { return [:] }
        var result: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = UInt64(parts[1]) { result[String(parts[0])] = value }
        }
        return result
    }
}
