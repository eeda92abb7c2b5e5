/// A direct bytes → `JSONValue` parser and `JSONValue` → bytes writer.
///
/// Exists because pass-through documents (the OCI spec in `ContainerConfig`, `OciProcess`) are
/// large trees of unknown shape: going through `Decoder` containers costs a thrown error per
/// type probe (≈1 ms for the 4 KB workload create). This parser is strict RFC 8259 (UTF-8
/// validated by `String`), keeps integers exact (Int64/UInt64), and bounds nesting depth so
/// hostile input cannot exhaust the stack.
public struct JSONValueParser {
    public struct Error: Swift.Error, Equatable, Sendable, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "invalid JSON at offset \(offset): \(reason)" }
    }

    /// Deepest nesting accepted (Go's decoder allows 10000; FoundationEssentials 512).
    public static let maxDepth = 512

    /// Most values one document may hold. A tree costs 24 to ~100 bytes per value against one
    /// or a few bytes of text, so a 16 MiB body of tiny elements would take hundreds of MB in a
    /// VM that may have little more; the cap bounds a document's tree to a few tens of MB. The
    /// largest real bodies (a create with a big OCI spec) hold a few thousand values.
    public static let maxValues = 1 << 18

    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private var values = 0

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Parses one JSON document (surrounding whitespace allowed).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(Error) -> JSONValue {
        var parser = JSONValueParser(bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index != bytes.count { throw parser.error("trailing characters") }
        return value
    }

    public static func parse(_ text: String) throws(Error) -> JSONValue {
        var text = text
        let result = text.withUTF8 { buffer -> Result<JSONValue, Error> in
            do throws(Error) { return .success(try parse(UnsafeRawBufferPointer(buffer))) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private func error(_ reason: String) -> Error { Error(offset: index, reason: reason) }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ literal: StaticString) throws(Error) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("truncated literal") }
        let p = literal.utf8Start
        for i in 0..<count where bytes[index + i] != p[i] { throw error("invalid literal") }
        index += count
    }

    private mutating func parseValue(depth: Int) throws(Error) -> JSONValue {
        guard index < bytes.count else { throw error("unexpected end") }
        values += 1
        if values > Self.maxValues { throw error("more than \(Self.maxValues) values") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        default: return try parseNumber()
        }
    }

    private mutating func parseObject(depth: Int) throws(Error) -> JSONValue {
        if depth > Self.maxDepth { throw error("nesting too deep") }
        index += 1
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            skipWhitespace()
            members.append((key, try parseValue(depth: depth)))
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw error("expected ',' or '}'")
        }
    }

    private mutating func parseArray(depth: Int) throws(Error) -> JSONValue {
        if depth > Self.maxDepth { throw error("nesting too deep") }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw error("expected ',' or ']'")
        }
    }

    private mutating func parseString() throws(Error) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes.
        var high: UInt8 = 0  // OR of the bytes: below 0x80 means ASCII, which is valid UTF-8
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                index += 1
                // ASCII (nearly every string of the protocol) needs no validation, and
                // String(decoding:) is specialised where String(validating:) looks up its
                // generic metadata at run time on every call.
                if high < 0x80 { return String(decoding: raw, as: UTF8.self) }
                return String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self) ?? Self.goCoerced(raw)
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character in string") }
            high |= b
            index += 1
        }
        var scalars: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                return String(validating: scalars, as: UTF8.self) ?? scalars.withUnsafeBytes { Self.goCoerced($0) }
            }
            if b < 0x20 { throw error("control character in string") }
            if b != UInt8(ascii: "\\") { scalars.append(b); index += 1; continue }
            index += 1
            guard index < bytes.count else { break }
            let e = bytes[index]
            index += 1
            switch e {
            case UInt8(ascii: "\""): scalars.append(0x22)
            case UInt8(ascii: "\\"): scalars.append(0x5C)
            case UInt8(ascii: "/"): scalars.append(0x2F)
            case UInt8(ascii: "b"): scalars.append(0x08)
            case UInt8(ascii: "f"): scalars.append(0x0C)
            case UInt8(ascii: "n"): scalars.append(0x0A)
            case UInt8(ascii: "r"): scalars.append(0x0D)
            case UInt8(ascii: "t"): scalars.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), index + 6 <= bytes.count,
                   bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                    let save = index
                    index += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        index = save
                    }
                }
                // Lone surrogates become U+FFFD, as Go does.
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw error("invalid escape")
            }
        }
        throw error("unterminated string")
    }

    private mutating func hex4() throws(Error) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            let digit: UInt32
            switch b {
            case 0x30...0x39: digit = UInt32(b - 0x30)
            case 0x41...0x46: digit = UInt32(b - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(b - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    private mutating func parseNumber() throws(Error) -> JSONValue {
        let start = index
        if index < bytes.count && bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, (0x30...0x39).contains(bytes[index]) else { throw error("invalid value") }
        if bytes[index] == 0x30 {
            index += 1
        } else {
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
        }
        var integral = true
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard index < bytes.count, (0x30...0x39).contains(bytes[index]) else { throw error("invalid fraction") }
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            integral = false
            index += 1
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            guard index < bytes.count, (0x30...0x39).contains(bytes[index]) else { throw error("invalid exponent") }
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if integral {
            if let i = Int64(text) { return .int(i) }
            if let u = UInt64(text) { return .uint(u) }
        }
        guard let d = Double(text), d.isFinite else { throw Error(offset: start, reason: "number out of range") }
        return .double(d)
    }
}

extension JSONValueParser {
    /// A string's bytes made well-formed as Go's encoding/json makes them: every byte that does
    /// not begin a valid UTF-8 sequence (utf8.DecodeRune's RuneError of size 1: a stray
    /// continuation byte, an overlong form, a surrogate, beyond U+10FFFF, a truncated sequence)
    /// becomes U+FFFD, one per byte. Go does not reject such strings; only the slow path of a
    /// string that failed validation comes here.
    static func goCoerced(_ bytes: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var i = 0
        while i < bytes.count {
            let n = validSequenceLength(bytes, at: i)
            if n == 0 {
                out += [0xEF, 0xBF, 0xBD]
                i += 1
            } else {
                out += bytes[i..<(i + n)]
                i += n
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The length of the valid UTF-8 sequence at `i` (Go's acceptRanges), 0 when none starts there.
    private static func validSequenceLength(_ b: UnsafeRawBufferPointer, at i: Int) -> Int {
        let c = b[i]
        if c < 0x80 { return 1 }
        func continuation(_ k: Int, _ low: UInt8 = 0x80, _ high: UInt8 = 0xBF) -> Bool {
            i + k < b.count && (low...high).contains(b[i + k])
        }
        switch c {
        case 0xC2...0xDF: return continuation(1) ? 2 : 0
        case 0xE0: return continuation(1, 0xA0) && continuation(2) ? 3 : 0
        case 0xE1...0xEC, 0xEE...0xEF: return continuation(1) && continuation(2) ? 3 : 0
        case 0xED: return continuation(1, 0x80, 0x9F) && continuation(2) ? 3 : 0
        case 0xF0: return continuation(1, 0x90) && continuation(2) && continuation(3) ? 4 : 0
        case 0xF1...0xF3: return continuation(1) && continuation(2) && continuation(3) ? 4 : 0
        case 0xF4: return continuation(1, 0x80, 0x8F) && continuation(2) && continuation(3) ? 4 : 0
        default: return 0
        }
    }
}
