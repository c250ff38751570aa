internal import AtomSkillFormat

/// Validation's view of a step's inputs: checks that the text is a JSON object and reports
/// the root of every `${...}` reference in its string values, without building a tree (the
/// engine compiles the inputs once a workflow is valid). Allocation-free for strings without
/// escapes or references, which keeps validating 1,000 steps well under a millisecond.
enum InputsScan {
    struct Failure: Error {
        let message: String
        /// A reference problem (BAD_REFERENCE) rather than bad JSON (BAD_INPUTS).
        let isReference: Bool
    }

    static func scan(_ text: String, into roots: inout [Reference.Root]) -> Failure? {
        var text = text
        return text.withUTF8 { bytes -> Failure? in
            var scanner = Scanner(parser: JSONParser(bytes: bytes))
            do throws(Failure) {
                scanner.parser.skipByteOrderMark()
                scanner.parser.skipWhitespace()
                guard scanner.index < bytes.count, bytes[scanner.index] == UInt8(ascii: "{") else {
                    throw Failure(message: "must be a JSON object", isReference: false)
                }
                try scanner.value(depth: 0, roots: &roots)
                scanner.parser.skipWhitespace()
                guard scanner.index == bytes.count else { throw scanner.error("unexpected text after the JSON value") }
                return nil
            } catch {
                return error
            }
        }
    }

    /// The shared parser's grammar, walked without building values: strings are scanned in
    /// place for references, everything else is the parser's.
    struct Scanner {
        var parser: JSONParser
        var bytes: UnsafeBufferPointer<UInt8> { parser.bytes }
        var index: Int {
            get { parser.offset }
            set { parser.offset = newValue }
        }

        func error(_ message: String) -> Failure { failure(parser.error(message)) }

        func failure(_ error: JSONParseError) -> Failure { Failure(message: "not JSON: \(error)", isReference: false) }

        mutating func closes(_ close: UInt8, _ container: StaticString) throws(Failure) -> Bool {
            do throws(JSONParseError) { return try parser.closes(close, container) } catch { throw failure(error) }
        }

        mutating func value(depth: Int, roots: inout [Reference.Root]) throws(Failure) {
            guard depth < JSONValue.maxDepth else { throw error("nested more than \(JSONValue.maxDepth) levels deep") }
            parser.skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of the text") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                if parser.closesEmpty(UInt8(ascii: "}")) { return }
                repeat {
                    parser.skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a member name in quotes") }
                    try string(isValue: false, roots: &roots)
                    parser.skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
                    index += 1
                    try value(depth: depth + 1, roots: &roots)
                } while try !closes(UInt8(ascii: "}"), "an object")
            case UInt8(ascii: "["):
                index += 1
                if parser.closesEmpty(UInt8(ascii: "]")) { return }
                repeat {
                    try value(depth: depth + 1, roots: &roots)
                } while try !closes(UInt8(ascii: "]"), "an array")
            case UInt8(ascii: "\""):
                try string(isValue: true, roots: &roots)
            default:
                // Literals and numbers: the parser's own checks (a number too large for a
                // Double fails here as it would when the engine parses the inputs).
                do throws(JSONParseError) {
                    let _: JSONValue = try parser.parseValue(depth: depth)
                } catch {
                    throw failure(error)
                }
            }
        }

        mutating func string(isValue: Bool, roots: inout [Reference.Root]) throws(Failure) {
            let open = index
            index += 1
            let start = index
            var dollar = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    if isValue && dollar { try references(start, index - 1, roots: &roots) }
                    return
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { throw error("control character in a string (escape it)") }
                if byte == UInt8(ascii: "$") { dollar = true }
                index += 1
            }
            // Rare: escapes (`$` may hide behind \u0024). The parser decodes the string and
            // reports what is wrong with it.
            index = open
            let text: String
            do throws(JSONParseError) { text = try parser.parseString() } catch { throw failure(error) }
            guard isValue, text.utf8.contains(UInt8(ascii: "$")) else { return }
            switch Template.compile(text) {
            case .success(let template): for reference in template?.references ?? [] { roots.append(reference.root) }
            case .failure(let failure): throw Failure(message: failure.description, isReference: true)
            }
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
