import Glibc

/// Reads a process's resource figures from /proc (the agent under test is a child process).
enum Probe {
    /// VmRSS in bytes.
    static func rss(_ pid: pid_t) -> Double { Double(statusField(pid, "VmRSS:") ?? 0) * 1024 }
    /// RssAnon in bytes: the part of the RSS that is the process's own memory (heap, stacks),
    /// as opposed to pages of its binary.
    static func rssAnon(_ pid: pid_t) -> Double { Double(statusField(pid, "RssAnon:") ?? 0) * 1024 }
    /// Number of threads.
    static func threads(_ pid: pid_t) -> Int { statusField(pid, "Threads:") ?? 0 }

    /// CPU time of all the process's threads, in seconds, to the nanosecond (the process CPU
    /// clock; /proc's utime + stime count 10 ms ticks, too coarse for a per-exec figure).
    static func cpuSeconds(_ pid: pid_t) -> Double {
        var clock = clockid_t()
        var now = timespec()
        guard clock_getcpuclockid(pid, &clock) == 0, clock_gettime(clock, &now) == 0 else { return 0 }
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Writes back and drops `path`'s pages from the page cache, so a process started from it
    /// maps its binary as at a VM's boot. Without this, idle RSS depends on how the cache got
    /// the file: pages the linker just wrote sit in large folios that one fault maps whole
    /// (the same static gcs measured 5.47 MiB idle right after its link and 4.89 once its pages
    /// had been dropped and read back).
    static func dropFromPageCache(_ path: String) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        Glibc.close(fd)
    }

    private static func statusField(_ pid: pid_t, _ key: String) -> Int? {
        guard let text = read("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return Int(line.dropFirst(key.count).filter { $0.isNumber })
        }
        return nil
    }

    private static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
    }
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}
