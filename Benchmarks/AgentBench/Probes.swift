import BenchReport
import Glibc
import HostSupport

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

    /// The whole file, or nil when it cannot be read (the process has gone).
    private static func read(_ path: String) -> String? {
        (try? HostFiles.read(path)).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// The `p` percentile of `values` (not empty): the median for 0.5, otherwise nearest-rank (the
/// smallest value with at least `p` of the samples at or below it).
func percentile(_ values: [Double], _ p: Double) -> Double {
    if p == 0.5 { return median(values) }
    let sorted = values.sorted()
    let rank = Int((Double(sorted.count) * p).rounded(.up))
    return sorted[min(sorted.count - 1, max(0, rank - 1))]
}

extension Probe {
    /// With `BENCH_PAGEMAP_DIR` set, writes `<dir>/<label>.txt`: every mapping of `pid` and the
    /// addresses of its resident pages (from /proc/<pid>/pagemap), to find which code and data
    /// a workload left mapped (`scripts/resident-pages.py` names the functions on them).
    static func snapshotResidentPages(_ pid: pid_t, label: String) {
        guard let dir = getenv("BENCH_PAGEMAP_DIR").map({ String(cString: $0) }) else { return }
        guard let maps = read("/proc/\(pid)/maps") else { return }
        let pagemap = open("/proc/\(pid)/pagemap", O_RDONLY)
        guard pagemap >= 0 else { return }
        defer { Glibc.close(pagemap) }
        var out = ""
        for line in maps.split(separator: "\n") {
            let range = line.prefix { $0 != " " }.split(separator: "-")
            guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16) else { continue }
            out += "map \(line)\n"
            let pages = Int((end - start) / 4096)
            guard pages > 0, pages < 1 << 22 else { continue }
            var entries = [UInt64](repeating: 0, count: pages)
            let n = entries.withUnsafeMutableBytes { pread(pagemap, $0.baseAddress, $0.count, off_t(start / 4096 * 8)) }
            guard n == pages * 8 else { continue }
            for (i, entry) in entries.enumerated() where entry & (1 << 63) != 0 {
                out += String(start + UInt64(i) * 4096, radix: 16) + "\n"
            }
        }
        let fd = open("\(dir)/\(label).txt", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return }
        _ = out.utf8CString.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
        Glibc.close(fd)
    }
}
