import Glibc

/// One measured figure, in the output contract every benchmark of this project follows: the
/// value, the baseline it is compared with (measured in the same run unless the note says
/// otherwise) and their ratio.
public struct BenchResult: Sendable {
    public var benchmark: String
    public var metric: String
    public var value: Double
    public var unit: String
    public var baseline: Double?
    public var ratio: Double?

    public init(benchmark: String, metric: String, value: Double, unit: String, baseline: Double? = nil, ratio: Double? = nil) {
        self.benchmark = benchmark
        self.metric = metric
        self.value = value
        self.unit = unit
        self.baseline = baseline
        self.ratio = ratio ?? baseline.flatMap { $0 == 0 ? nil : value / $0 }
    }
}

/// Collects results, prints them as a table on stdout and writes them as a JSON list to
/// `Benchmarks/results/<name>.json` (or `$BENCH_RESULTS_DIR`).
public struct BenchReport {
    public let name: String
    public private(set) var results: [BenchResult] = []

    public init(name: String) { self.name = name }

    public mutating func add(_ result: BenchResult) {
        results.append(result)
        print(Self.row(result))
    }

    public static var header: String {
        pad("benchmark", 34) + pad("metric", 22) + lpad("value", 14) + " " + pad("unit", 10) + lpad("baseline", 14) + lpad("ratio", 9)
    }

    static func row(_ r: BenchResult) -> String {
        pad(r.benchmark, 34) + pad(r.metric, 22) + lpad(format(r.value), 14) + " " + pad(r.unit, 10)
            + lpad(r.baseline.map { format($0) } ?? "-", 14) + lpad(r.ratio.map { format($0, digits: 3) } ?? "-", 9)
    }

    /// Writes the JSON file (creating its directory); returns its path, or nil (said on
    /// stdout, with the table) when it could not be written.
    @discardableResult
    public func write() -> String? {
        let dir = getenv("BENCH_RESULTS_DIR").map { String(cString: $0) } ?? "Benchmarks/results"
        var prefix = dir.hasPrefix("/") ? "" : "."
        for part in dir.split(separator: "/") {
            prefix += "/\(part)"
            _ = mkdir(prefix, 0o755)
        }
        let path = "\(dir)/\(name).json"
        var json = "[\n"
        for (i, r) in results.enumerated() {
            json += "  {\"benchmark\": \(quote(r.benchmark)), \"metric\": \(quote(r.metric)), \"value\": \(number(r.value)), "
            json += "\"unit\": \(quote(r.unit)), \"baseline\": \(r.baseline.map(number) ?? "null"), \"ratio\": \(r.ratio.map(number) ?? "null")}"
            json += i + 1 < results.count ? ",\n" : "\n"
        }
        json += "]\n"
        guard let file = fopen(path, "w") else {
            print("results NOT written to \(path): \(String(cString: strerror(errno)))")
            return nil
        }
        let complete = fputs(json, file) >= 0
        guard fclose(file) == 0, complete else {
            print("results NOT written to \(path): \(String(cString: strerror(errno)))")
            return nil
        }
        print("results written to \(path)")
        return path
    }

    private func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    private func number(_ v: Double) -> String { v.isFinite ? "\(v)" : "null" }

    static func format(_ v: Double, digits: Int = 2) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v < 0 ? "-inf" : "inf" }
        if abs(v) >= 1000 { return String(Int(v.rounded())) }
        var scaled = (v * pow(10, Double(digits))).rounded() / pow(10, Double(digits))
        if scaled == -0 { scaled = 0 }
        return "\(scaled)"
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
    static func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }
}

/// CLOCK_MONOTONIC in nanoseconds.
public func benchNow() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// The median of `values` (which must not be empty).
public func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
