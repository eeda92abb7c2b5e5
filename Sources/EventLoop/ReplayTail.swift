/// A re-dialled relay's replay state, boxed: every relay carries one pointer for it, not the
/// ring's fields (a thousand tty processes have two thousand relays, none of them re-dialled).
final class ReplayState {
    var tail: ReplayTail
    /// Bytes at the front of the engine's overflow that are the tail sent again to a
    /// replacement: already in `tail`, so not recorded a second time when delivered.
    var inOverflow = 0

    init(capacity: Int) { tail = ReplayTail(capacity: capacity) }
}

/// The last bytes a relay delivered, kept so that they can be sent again after its destination
/// is replaced (a host connection re-dialled after it dropped). Whatever the old connection's
/// buffers held when it went is lost; sending this tail again recovers it, at the cost of
/// repeating some bytes the host had read (fine for logs, which is what it is used for).
///
/// A ring of up to `capacity` bytes that grows with what is recorded (a container that logged
/// 2 KiB keeps 4 KiB, not 128): one copy per delivered byte, which is why only relays that may
/// be re-dialled keep one. Loop-thread state of its relay's engine.
struct ReplayTail {
    let capacity: Int
    private var storage: UnsafeMutableRawBufferPointer?
    /// Where the next byte goes.
    private var end = 0
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0, "an empty replay tail")
        self.capacity = capacity
    }

    /// Appends `bytes`, dropping the oldest beyond `capacity`.
    mutating func record(_ bytes: UnsafeRawBufferPointer) {
        guard var source = bytes.baseAddress, bytes.count > 0 else { return }
        var length = bytes.count
        if length > capacity {
            source += length - capacity
            length = capacity
        }
        grow(toHold: count + length)
        let size = storage!.count, base = storage!.baseAddress!
        let first = min(length, size - end)
        (base + end).copyMemory(from: source, byteCount: first)
        if length > first { base.copyMemory(from: source + first, byteCount: length - first) }
        end = (end + length) % size
        count = min(size, count + length)
    }

    /// Makes room for `needed` bytes (at most `capacity`), doubling from 4 KiB; the kept bytes
    /// move to the front of the new ring.
    private mutating func grow(toHold needed: Int) {
        let size = storage?.count ?? 0
        guard size < capacity, needed > size else { return }
        var newSize = max(4096, size)
        while newSize < needed { newSize *= 2 }
        newSize = min(newSize, capacity)
        let kept = contents()
        storage?.deallocate()
        storage = .allocate(byteCount: newSize, alignment: 16)
        kept.withUnsafeBytes { storage!.copyMemory(from: $0) }
        count = kept.count
        end = kept.count % newSize
    }

    /// The kept bytes, oldest first.
    func contents() -> [UInt8] {
        guard let storage, count > 0 else { return [] }
        let size = storage.count
        let start = (end - count + size) % size
        if start + count <= size { return Array(storage[start..<(start + count)]) }
        return Array(storage[start..<size]) + Array(storage[0..<(count - (size - start))])
    }

    mutating func release() {
        storage?.deallocate()
        storage = nil
        end = 0
        count = 0
    }
}
