/// The last bytes a relay delivered, kept so that they can be sent again after its destination
/// is replaced (a host connection re-dialled after it dropped). Whatever the old connection's
/// buffers held when it went is lost; sending this tail again recovers it, at the cost of
/// repeating some bytes the host had read (fine for logs, which is what it is used for).
///
/// A ring of `capacity` bytes, allocated at the first byte: one copy per delivered byte, which
/// is why only relays that may be re-dialled keep one. Loop-thread state of its relay's engine.
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
        if storage == nil { storage = .allocate(byteCount: capacity, alignment: 16) }
        let base = storage!.baseAddress!
        let first = min(length, capacity - end)
        (base + end).copyMemory(from: source, byteCount: first)
        if length > first { base.copyMemory(from: source + first, byteCount: length - first) }
        end = (end + length) % capacity
        count = min(capacity, count + length)
    }

    /// The kept bytes, oldest first.
    func contents() -> [UInt8] {
        guard let storage, count > 0 else { return [] }
        let start = (end - count + capacity) % capacity
        if start + count <= capacity { return Array(storage[start..<(start + count)]) }
        return Array(storage[start..<capacity]) + Array(storage[0..<(count - (capacity - start))])
    }

    mutating func release() {
        storage?.deallocate()
        storage = nil
        end = 0
        count = 0
    }
}
