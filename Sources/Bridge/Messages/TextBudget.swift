/// Cuts free-form text (error messages, stack dumps, embedded documents) so that its JSON
/// string encoding fits a byte budget. Exists because every message the guest sends must stay
/// within the host's 64 KiB limit (§2), and only text can grow without bound.
public enum TextBudget {
    /// Appended to text that was cut.
    public static let marker = " ...[truncated]"

    /// Bytes `scalar` takes inside a JSON string (escapes counted).
    @inlinable
    static func encodedCost(_ scalar: Unicode.Scalar) -> Int {
        switch scalar.value {
        case 0x22, 0x5C, 0x08, 0x0C, 0x0A, 0x0D, 0x09: return 2
        case 0..<0x20: return 6
        case 0x2028, 0x2029: return 6
        case 0x20..<0x80: return 1
        case 0x80..<0x800: return 2
        case 0x800..<0x10000: return 3
        default: return 4
        }
    }

    /// Bytes of `text` once encoded as a JSON string, quotes excluded (upper bound).
    public static func encodedCount(_ text: String) -> Int {
        var total = 0
        for scalar in text.unicodeScalars { total += encodedCost(scalar) }
        return total
    }

    /// `text` unchanged if its encoding fits `budget` bytes, else its longest prefix that fits
    /// together with `marker`.
    public static func truncate(_ text: String, toEncodedBytes budget: Int) -> String {
        let budget = max(0, budget)
        if encodedCount(text) <= budget { return text }
        let room = budget - encodedCount(marker)
        if room <= 0 { return "" }
        var used = 0
        var end = text.unicodeScalars.startIndex
        for index in text.unicodeScalars.indices {
            let cost = encodedCost(text.unicodeScalars[index])
            if used + cost > room { break }
            used += cost
            end = text.unicodeScalars.index(after: index)
        }
        return String(text.unicodeScalars[..<end]) + marker
    }
}
