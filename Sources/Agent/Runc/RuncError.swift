import Bridge

/// Turns runc's failures into the HRESULTs hcsshim's host understands (guest-behaviour §10):
/// the last error-level line of runc's JSON log when there is one, its stderr otherwise.
enum RuncErrorMapping {
    /// The most specific message of a failed runc run.
    static func message(log: String?, stderr: String) -> String {
        if let log, let line = lastErrorLine(ofJSONLog: log) { return line }
        let trimmed = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? "runc failed without a message" : trimmed
    }

    /// The HRESULT for a runc error text, matched as Go's guest matches it: case-sensitive, and
    /// "does not exist" only as `container … does not exist`, the whole text. That rule thus
    /// fires for a log-file message (create, exec, start) and not for the `time=… level=error
    /// msg=…` stderr of kill, delete, ps or update: a host told "does not exist" (0xC037010E)
    /// treats the container as gone, which must not hide a real failure.
    static func hresult(for message: String) -> HResult {
        if message.hasPrefix("container") && message.hasSuffix("does not exist") { return .systemNotFound }
        if message.contains("container with id exists") || message.contains("container with given ID already exists") { return .systemAlreadyExists }
        if message.contains("invalid id format") || message.contains("invalid container ID format") { return .invalidArgument }
        if message.contains("container") && message.contains("that is not stopped") { return .invalidState }
        if message.contains("container still running") { return .invalidState }
        if message.contains("container not running") { return .systemAlreadyStopped }
        return .fail
    }

    /// Scans JSON lines `{"level":"error","msg":"..."}` and returns the last message at level
    /// error, fatal or panic. Hand-parsed: the log is small and a full JSON decode per line
    /// would pull Foundation into the error path for nothing.
    static func lastErrorLine(ofJSONLog log: String) -> String? {
        var found: String?
        for line in log.split(separator: "\n") {
            guard let level = stringField("level", in: line), ["error", "fatal", "panic"].contains(level),
                  let msg = stringField("msg", in: line) else { continue }
            found = msg
        }
        return found
    }

    /// The string value of `"key":"..."` in one JSON line, with \" and \\ unescaped.
    static func stringField(_ key: String, in line: Substring) -> String? {
        guard let range = line.firstRange(of: "\"\(key)\":\"") else { return nil }
        var value = ""
        var escaped = false
        for ch in line[range.upperBound...] {
            if escaped {
                switch ch {
                case "n": value.append("\n")
                case "t": value.append("\t")
                default: value.append(ch)
                }
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else if ch == "\"" {
                return value
            } else {
                value.append(ch)
            }
        }
        return nil
    }
}

extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let first = s.first, set.contains(first) { s = s.dropFirst() }
        while let last = s.last, set.contains(last) { s = s.dropLast() }
        return String(s)
    }
}

extension Set where Element == Character {
    static let whitespacesAndNewlines: Set<Character> = [" ", "\t", "\n", "\r"]
}
