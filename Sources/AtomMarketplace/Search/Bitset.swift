/// A growable set of small integers (document slots) as 64-bit words.
struct Bitset: Sendable, Equatable {
    var words: [UInt64]

    init(capacity: Int = 0) {
        words = [UInt64](repeating: 0, count: (capacity + 63) / 64)
    }

    /// Every slot below `count` set.
    static func all(_ count: Int) -> Bitset {
        var set = Bitset(capacity: count)
        for index in 0..<(count / 64) { set.words[index] = ~0 }
        if count % 64 != 0 { set.words[count / 64] = (1 << UInt64(count % 64)) - 1 }
        return set
    }

    @inline(__always)
    func contains(_ slot: Int) -> Bool {
        let word = slot >> 6
        return word < words.count && words[word] & (1 << UInt64(slot & 63)) != 0
    }

    @inline(__always)
    mutating func insert(_ slot: Int) {
        let word = slot >> 6
        if word >= words.count { words.append(contentsOf: repeatElement(0, count: word - words.count + 1 + words.count / 2)) }
        words[word] |= 1 << UInt64(slot & 63)
    }

    @inline(__always)
    mutating func remove(_ slot: Int) {
        let word = slot >> 6
        if word < words.count { words[word] &= ~(1 << UInt64(slot & 63)) }
    }

    var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    mutating func formIntersection(_ other: Bitset) {
        let shared = min(words.count, other.words.count)
        words.withUnsafeMutableBufferPointer { mine in
            other.words.withUnsafeBufferPointer { theirs in
                for index in 0..<shared { mine[index] &= theirs[index] }
            }
            for index in shared..<mine.count { mine[index] = 0 }
        }
    }

    /// The set slots in increasing order.
    func forEach(_ body: (Int) -> Void) {
        for (index, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                let bit = bits.trailingZeroBitCount
                body(index << 6 | bit)
                bits &= bits - 1
            }
        }
    }
}
