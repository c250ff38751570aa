/// Validation's view of a step's inputs: checks that the text is a JSON object and reports
/// the root of every `${...}` reference in its string values, without building a tree (the
/// engine compiles the inputs once a workflow is valid). Allocation-free for strings without
/// references, which keeps validating 1,000 steps well under a millisecond.
enum InputsScan {
    struct Failure: Error {
        let message: String
        /// A reference problem (BAD_REFERENCE) rather than bad JSON (BAD_INPUTS).
        let isReference: Bool
    }

    static func scan(_ text: String, into roots: inout [Reference.Root]) -> Failure? {
        var text = text
        return text.withUTF8 { bytes -> Failure? in
            var scanner = Scanner(bytes: bytes)
            do throws(Failure) {
                scanner.skipWhitespace()
                guard scanner.index < bytes.count, bytes[scanner.index] == UInt8(ascii: "{") else {
                    throw Failure(message: "must be a JSON object", isReference: false)
                }
                try scanner.value(depth: 0, roots: &roots)
                scanner.skipWhitespace()
                guard scanner.index == bytes.count else { throw scanner.error("unexpected text after the JSON value") }
                return nil
            } catch {
                return error
            }
        }
    }

    struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        func error(_ message: String) -> Failure { Failure(message: "not JSON: \(message) at byte \(index)", isReference: false) }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int, roots: inout [Reference.Root]) throws(Failure) {
            guard depth < JSONValue.maxDepth else { throw error("nested more than \(JSONValue.maxDepth) levels deep") }
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of the text") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "}") { index += 1; return }
                while true {
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a member name in quotes") }
                    try string(isValue: false, roots: &roots)
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
                    index += 1
                    try value(depth: depth + 1, roots: &roots)
                    skipWhitespace()
                    guard index < bytes.count else { throw error("unexpected end of the text in an object") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return }
                    throw error("expected ',' or '}' in an object")
                }
            case UInt8(ascii: "["):
                index += 1
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "]") { index += 1; return }
                while true {
                    try value(depth: depth + 1, roots: &roots)
                    skipWhitespace()
                    guard index < bytes.count else { throw error("unexpected end of the text in an array") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return }
                    throw error("expected ',' or ']' in an array")
                }
            case UInt8(ascii: "\""):
                try string(isValue: true, roots: &roots)
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try number()
            default:
                throw error("unexpected character")
            }
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw error("unexpected end of the text") }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw error("invalid literal") }
            index += count
        }

        mutating func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            return index - start
        }

        mutating func number() throws(Failure) {
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count else { throw error("invalid number") }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else if digits() == 0 {
                throw error("invalid number")
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { throw error("invalid number: digits expected after '.'") }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { throw error("invalid number: digits expected in the exponent") }
            }
        }

        mutating func string(isValue: Bool, roots: inout [Reference.Root]) throws(Failure) {
            let open = index
            index += 1
            let start = index
            var escaped = false
            var dollar = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let end = index
                    index += 1
                    guard isValue && dollar else { return }
                    if escaped {
                        // Rare: decode the string first.
                        var parser = JSONParser(bytes: bytes)
                        parser.index = open
                        let text: String
                        do { text = try parser.parseString() } catch { throw Failure(message: "not JSON: \(error)", isReference: false) }
                        switch Template.compile(text) {
                        case .success(let template): for reference in template?.references ?? [] { roots.append(reference.root) }
                        case .failure(let failure): throw Failure(message: failure.description, isReference: true)
                        }
                        return
                    }
                    try references(start, end, roots: &roots)
                    return
                }
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    index += 1
                    guard index < bytes.count else { break }
                    switch bytes[index] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                         UInt8(ascii: "r"), UInt8(ascii: "t"):
                        index += 1
                    case UInt8(ascii: "u"):
                        guard index + 4 < bytes.count else { throw error("invalid \\u escape") }
                        for offset in 1...4 {
                            let digit = bytes[index + offset]
                            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(digit)
                                || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(digit)
                            else { throw error("invalid \\u escape") }
                        }
                        // `$` may hide behind \u0024: decode such strings fully.
                        dollar = true
                        index += 5
                    default:
                        throw error("invalid escape in a string")
                    }
                    continue
                }
                if byte < 0x20 { throw error("control character in a string") }
                if byte == UInt8(ascii: "$") { dollar = true }
                index += 1
            }
            throw error("unterminated string")
        }

        /// The references in bytes[start..<end] (a string without escapes).
        func references(_ start: Int, _ end: Int, roots: inout [Reference.Root]) throws(Failure) {
            var cursor = start
            while cursor < end {
                guard bytes[cursor] == UInt8(ascii: "$") else { cursor += 1; continue }
                if cursor + 2 < end, bytes[cursor + 1] == UInt8(ascii: "$"), bytes[cursor + 2] == UInt8(ascii: "{") {
                    cursor += 3  // "$${" is a literal "${"
                    continue
                }
                guard cursor + 1 < end, bytes[cursor + 1] == UInt8(ascii: "{") else { cursor += 1; continue }
                var close = cursor + 2
                while close < end, bytes[close] != UInt8(ascii: "}") { close += 1 }
                guard close < end else {
                    throw Failure(message: "\"\(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self).prefix(80))\": ${ without a closing }", isReference: true)
                }
                roots.append(try root(cursor + 2, close))
                cursor = close + 1
            }
        }

        /// The root of the reference in bytes[start..<end] (between "${" and "}").
        func root(_ start: Int, _ end: Int) throws(Failure) -> Reference.Root {
            var low = start
            var high = end
            while low < high, bytes[low] == UInt8(ascii: " ") { low += 1 }
            while high > low, bytes[high - 1] == UInt8(ascii: " ") { high -= 1 }
            // Segment boundaries: the first three dots.
            var dots: (Int, Int, Int) = (-1, -1, -1)
            var found = 0
            var valid = low < high
            var segmentStart = low
            for position in low..<high {
                let byte = bytes[position]
                if byte == UInt8(ascii: ".") {
                    if position == segmentStart { valid = false }
                    switch found {
                    case 0: dots.0 = position
                    case 1: dots.1 = position
                    case 2: dots.2 = position
                    default: break
                    }
                    found += 1
                    segmentStart = position + 1
                } else if !Identifier.isMemberByte(byte) {
                    valid = false
                }
            }
            if segmentStart >= high { valid = false }
            func text(_ from: Int, _ to: Int) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[from..<to]), as: UTF8.self) }
            func slow() -> Failure {
                // The precise message comes from the general parser.
                let body = text(start, end)
                if case .failure(let failure) = Reference.parse(Substring(body).trimmingSpaces) {
                    return Failure(message: failure.description, isReference: true)
                }
                return Failure(message: "${\(body)}: not a valid reference", isReference: true)
            }
            guard valid, found >= 1 else { throw slow() }
            let first = text(low, dots.0)
            if first == "inputs" {
                return .input(text(dots.0 + 1, found >= 2 ? dots.1 : high))
            }
            guard first == "steps", found >= 2 else { throw slow() }
            let id = text(dots.0 + 1, dots.1)
            let kind = text(dots.1 + 1, found >= 3 ? dots.2 : high)
            if kind == "output" { return .stepOutput(id) }
            if kind == "status" && found == 2 { return .stepStatus(id) }
            throw slow()
        }
    }
}

/// Step id -> position: open addressing with FNV-1a over the UTF-8 bytes (a fraction of the
/// cost of `Dictionary<String, Int>`'s seeded SipHash, which matters at 4 lookups per step).
struct IDTable {
    private var positions: [Int32]
    private var hashes: [UInt32]
    private var keys: [String]
    private let mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        positions = [Int32](repeating: -1, count: size)
        hashes = [UInt32](repeating: 0, count: size)
        keys = [String](repeating: "", count: size)
        mask = size - 1
    }

    static func hash(_ text: String) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in text.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return hash
    }

    /// The position of `id`, or nil.
    subscript(id: String) -> Int? {
        let hash = Self.hash(id)
        var slot = Int(hash) & mask
        while true {
            let position = positions[slot]
            if position < 0 { return nil }
            if hashes[slot] == hash && keys[slot] == id { return Int(position) }
            slot = (slot + 1) & mask
        }
    }

    /// Adds `id` at `position`; returns the position it already had, if any (then nothing changes).
    mutating func insert(_ id: String, position: Int) -> Int? {
        let hash = Self.hash(id)
        var slot = Int(hash) & mask
        while true {
            let existing = positions[slot]
            if existing < 0 { break }
            if hashes[slot] == hash && keys[slot] == id { return Int(existing) }
            slot = (slot + 1) & mask
        }
        positions[slot] = Int32(position)
        hashes[slot] = hash
        keys[slot] = id
        return nil
    }

    /// As a dictionary (for the engine, once per run).
    var dictionary: [String: Int] {
        var result: [String: Int] = [:]
        result.reserveCapacity(positions.count / 2)
        for slot in positions.indices where positions[slot] >= 0 { result[keys[slot]] = Int(positions[slot]) }
        return result
    }
}
