/// Splits `ProcessParameters.CommandLine` into argv the way the Go guest does (go-shellwords
/// defaults, §8.5): whitespace separates words; single quotes are literal; double quotes group
/// and allow backslash escapes; a backslash outside single quotes escapes the next character;
/// no variable or backtick expansion; parsing stops silently at the first unquoted `;`, `&`,
/// `|`, `<` or `>`. An unterminated quote or trailing backslash yields no words (the caller
/// rejects an empty argv).
public enum CommandLineSplitter {
    public static func split(_ line: String) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var single = false
        var double = false
        var escaped = false
        // Scalars, not Characters: "\r\n" is one Character, and a combining mark would fuse
        // with the quote or backslash before it; go-shellwords reads runes.
        loop: for ch in line.unicodeScalars {
            if escaped {
                word.unicodeScalars.append(ch); escaped = false; inWord = true
                continue
            }
            if ch == "\\" {
                if single { word.unicodeScalars.append(ch); inWord = true } else { escaped = true }
                continue
            }
            if ch == " " || ch == "\t" || ch == "\n" || ch == "\r" {
                if single || double {
                    word.unicodeScalars.append(ch)
                } else if inWord {
                    words.append(word); word = ""; inWord = false
                }
                continue
            }
            switch ch {
            case "\"" where !single:
                if double { inWord = true }
                double.toggle()
                continue
            case "'" where !double:
                if single { inWord = true }
                single.toggle()
                continue
            case ";", "&", "|", "<", ">":
                if !single && !double { break loop }
            default:
                break
            }
            word.unicodeScalars.append(ch)
            inWord = true
        }
        if escaped || single || double { return [] }
        if inWord { words.append(word) }
        return words
    }
}
