/// Splits `ProcessParameters.CommandLine` into argv as the Go guest does: go-shellwords'
/// `Parse` (the v1.0.13 hcsshim builds with) with its defaults, no variable expansion and no
/// command substitution (§8.5). In short:
///
/// - whitespace (space, tab, CR, LF) separates words;
/// - single quotes are literal; double quotes group and let backslash escape;
/// - a backslash outside single quotes takes the next character as is, except that `\t` and
///   `\n` become a tab and a newline;
/// - backticks and `$(...)` are kept, with their spaces, as part of one word (not run);
/// - parsing stops at the first unquoted `;`, `&`, `|`, `<` or `>`; before `>`, a word that
///   begins with a digit (`2>/dev/null`) is a redirection and is dropped;
/// - a `(` not right after `$`, an unmatched `)`, or an unterminated quote, backtick, `$(` or
///   trailing backslash makes the whole line invalid.
public enum CommandLineSplitter {
    /// The words of `line`, or nil when go-shellwords rejects it ("invalid command line string").
    public static func split(_ line: String) -> [String]? {
        enum Got { case none, plain, quoted }
        var words: [String] = []
        var word = ""
        var got = Got.none
        var escaped = false, single = false, double = false, backQuote = false, dollarQuote = false
        // Unicode scalars, as Go ranges over runes: "\r\n" is one Character but two runes.
        loop: for var ch in line.unicodeScalars {
            if escaped {
                if ch == "t" { ch = "\t" } else if ch == "n" { ch = "\n" }
                word.unicodeScalars.append(ch)
                escaped = false
                got = .plain
                continue
            }
            if ch == "\\" {
                if single { word.unicodeScalars.append(ch) } else { escaped = true }
                continue
            }
            if ch == " " || ch == "\t" || ch == "\r" || ch == "\n" {
                if single || double || backQuote || dollarQuote {
                    word.unicodeScalars.append(ch)
                } else if got != .none {
                    words.append(word)
                    word = ""
                    got = .none
                }
                continue
            }
            switch ch {
            case "`" where !single && !double && !dollarQuote:
                backQuote.toggle()  // kept in the word, below
            case ")" where !single && !double && !backQuote:
                guard dollarQuote else { return nil }
                dollarQuote = false
            case "(" where !single && !double && !backQuote:
                guard !dollarQuote && word.hasSuffix("$") else { return nil }
                dollarQuote = true
            case "\"" where !single && !dollarQuote:
                if double { got = .quoted }
                double.toggle()
                continue
            case "'" where !double && !dollarQuote:
                if single { got = .quoted }
                single.toggle()
                continue
            case ";", "&", "|", "<", ">":
                guard single || double || backQuote || dollarQuote else {
                    if ch == ">", let first = word.utf8.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) {
                        got = .none
                    }
                    break loop
                }
            default:
                break
            }
            word.unicodeScalars.append(ch)
            got = .plain
        }
        if got != .none { words.append(word) }
        if escaped || single || double || backQuote || dollarQuote { return nil }
        return words
    }
}
