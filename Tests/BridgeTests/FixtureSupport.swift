import Bridge
import FoundationEssentials

/// Loads the spec fixtures copied into Tests/BridgeTests/Fixtures (the tests stand alone; the
/// files are also declared as resources).
enum Fixtures {
    static let directory: String = {
        var path = #filePath
        while let last = path.last, last != "/" { path.removeLast() }
        return path + "Fixtures/"
    }()

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: directory + name))
    }

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try data(name)) }

    static func text(_ name: String) throws -> String { String(decoding: try data(name), as: UTF8.self) }

    /// All *.json fixture names.
    static var names: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory))?.filter { $0.hasSuffix(".json") }.sorted() ?? []
    }

    /// One row of the header table in Fixtures/README.md.
    struct HeaderRow: Sendable, CustomStringConvertible {
        var file: String
        var identifier: UInt32
        var id: UInt64
        var size: Int
        var headerHex: [UInt8]
        var description: String { file }
    }

    static let headerRows: [HeaderRow] = {
        guard let readme = try? text("README.md") else { return [] }
        var rows: [HeaderRow] = []
        for line in readme.split(separator: "\n") where line.hasPrefix("| `") && line.contains(".json`") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { cell in
                String(cell.filter { $0 != "`" }).trimmedSpaces
            }
            // | file | dir | identifier | message | id | size | header | notes |
            guard cells.count >= 8, let identifier = UInt32(cells[3].dropFirst(2), radix: 16),
                  let id = UInt64(cells[5]), let size = Int(cells[6]) else { continue }
            let hex = cells[7].split(separator: " ").compactMap { UInt8($0, radix: 16) }
            rows.append(HeaderRow(file: cells[1], identifier: identifier, id: id, size: size, headerHex: hex))
        }
        return rows
    }()
}

/// Parses JSON into a `JSONValue` for comparisons that ignore key order.
func jsonValue(_ data: Data) throws -> JSONValue {
    try BridgeJSON.decoder.decode(JSONValue.self, from: data)
}

func jsonValue(_ text: String) throws -> JSONValue { try jsonValue(Data(text.utf8)) }

extension String {
    var trimmedSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
