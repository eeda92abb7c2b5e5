/// The 16-byte little-endian header that precedes every bridge message (§2). A value type with
/// explicit load/store so neither side depends on struct layout or host endianness.
public struct FrameHeader: Hashable, Sendable {
    /// Bytes in a header; also the smallest legal `size`.
    public static let byteCount = 16
    /// The largest message hcsshim's host accepts (`prot.MaxMsgSize`): every frame we send to
    /// the host must have `16 <= size <= 65536`.
    public static let hostMaxMessageSize = 0x10000

    public var type: MessageIdentifier
    /// Total length including the header.
    public var size: UInt32
    /// Sequence id; 0 for notifications.
    public var id: UInt64

    @inlinable
    public init(type: MessageIdentifier, size: UInt32, id: UInt64) {
        self.type = type
        self.size = size
        self.id = id
    }

    /// Body length implied by `size` (never negative: callers validate `size >= 16` first).
    @inlinable public var bodyCount: Int { Int(size) - Self.byteCount }

    /// Reads a header from the first 16 bytes of `bytes` (which must hold at least 16).
    @inlinable
    public init(loading bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count >= Self.byteCount)
        let type = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        let size = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let id = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        self.init(type: MessageIdentifier(type), size: size, id: id)
    }

    /// Writes the header into the first 16 bytes of `bytes`.
    @inlinable
    public func store(into bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= Self.byteCount)
        bytes.storeBytes(of: type.rawValue.littleEndian, toByteOffset: 0, as: UInt32.self)
        bytes.storeBytes(of: size.littleEndian, toByteOffset: 4, as: UInt32.self)
        bytes.storeBytes(of: id.littleEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// The 16 header bytes as an array (tests, tools).
    public var bytes: [UInt8] {
        var result = [UInt8](repeating: 0, count: Self.byteCount)
        result.withUnsafeMutableBytes { store(into: $0) }
        return result
    }
}

/// Why a byte stream cannot be framed any further. Any of these ends the connection: once a
/// header is wrong there is no way to find the next message boundary.
public enum FramingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `Size` below 16: the header claims to be shorter than itself.
    case sizeTooSmall(size: UInt32, type: UInt32, id: UInt64)
    /// `Size` above the configured maximum for incoming messages.
    case sizeTooLarge(size: UInt32, limit: Int, type: UInt32, id: UInt64)
    /// The peer closed the stream in the middle of a message.
    case truncated(bufferedBytes: Int)

    public var description: String {
        switch self {
        case .sizeTooSmall(let size, let type, let id):
            return "invalid message size \(size) (< 16) in header type 0x\(String(type, radix: 16)) id \(id)"
        case .sizeTooLarge(let size, let limit, let type, let id):
            return "invalid message size \(size) (> limit \(limit)) in header type 0x\(String(type, radix: 16)) id \(id)"
        case .truncated(let n):
            return "connection closed in the middle of a message (\(n) bytes buffered)"
        }
    }
}
