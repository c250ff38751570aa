/// A JSON syntax error: what is wrong and the byte offset (from 0, in the UTF-8 text) where.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public let offset: Int

    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) at byte \(offset)" }
}

/// A JSON number as parsed: an integer (no fraction, no exponent) that fits `Int64`, otherwise
/// the nearest `Double`.
public enum JSONNumber: Sendable, Hashable {
    case int(Int64)
    case double(Double)
}

/// A JSON value type `JSONParser` can build. An enum with cases of these names and payloads
/// satisfies all but `number(parsed:)`: the parser does the grammar, the type only says how a
/// number is kept (the skill format keeps every number as a Double, the workflow keeps integers
/// apart).
public protocol JSONParsable {
    static var null: Self { get }
    static func bool(_ value: Bool) -> Self
    static func string(_ value: String) -> Self
    static func array(_ elements: [Self]) -> Self
    static func object(_ members: [String: Self]) -> Self
    static func number(parsed: JSONNumber) -> Self
}

/// The package's one JSON parser: strict RFC 8259 over the UTF-8 bytes of a string, building
/// any `JSONParsable` type directly (generic and inlinable, so each value type gets its own
/// specialised copy and no intermediate tree). Marketplace bundles parse 100,000 lines of it per
/// import, so it stays byte-level: Foundation's decoder tries every type in turn for each value.
///
/// - Nesting deeper than `maxDepth` is an error, not a stack overflow.
/// - Numbers follow the JSON grammar exactly (no `+`, no leading zeros, digits on both sides
///   of `.`); one too large for a Double (`1e400`) is an error.
/// - `\u` escapes must pair surrogates; control characters in strings must be escaped.
/// - A leading byte order mark is skipped (RFC 8259 section 8.1 allows it; Windows tools write it).
/// - Duplicate member names: the last one wins, or, with `.rejected`, an error.
/// - Every error names the problem and its byte offset.
public struct JSONParser {
    /// The default nesting limit.
    public static let defaultMaxDepth = 64

    /// What a repeated member name in an object does.
    public enum DuplicateMembers: Sendable {
        case lastWins
        case rejected
    }

    /// The text's UTF-8 bytes: those of a Swift string, so valid UTF-8.
    public let bytes: UnsafeBufferPointer<UInt8>
    /// Where the parser is.
    public var offset: Int
    @usableFromInline let maxDepth: Int
    @usableFromInline let duplicateMembers: DuplicateMembers

    @inlinable
    public init(
        bytes: UnsafeBufferPointer<UInt8>, offset: Int = 0, maxDepth: Int = JSONParser.defaultMaxDepth,
        duplicateMembers: DuplicateMembers = .lastWins
    ) {
        self.bytes = bytes
        self.offset = offset
        self.maxDepth = maxDepth
        self.duplicateMembers = duplicateMembers
    }

    /// Parses `text`, which must hold exactly one JSON value (and whitespace).
    @inlinable
    public static func parse<Value: JSONParsable>(
        _ text: String, as type: Value.Type = Value.self, maxDepth: Int = defaultMaxDepth,
        duplicateMembers: DuplicateMembers = .lastWins
    ) throws(JSONParseError) -> Value {
        var text = text
        let result = text.withUTF8 { bytes -> Result<Value, JSONParseError> in
            var parser = JSONParser(bytes: bytes, maxDepth: maxDepth, duplicateMembers: duplicateMembers)
            do throws(JSONParseError) {
                return .success(try parser.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    @inlinable
    public func error(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: offset) }

    /// One value from the start of the bytes to their end.
    @inlinable
    public mutating func parseDocument<Value: JSONParsable>() throws(JSONParseError) -> Value {
        skipByteOrderMark()
        skipWhitespace()
        let value: Value = try parseValue(depth: 0)
        skipWhitespace()
        guard offset == bytes.count else { throw error("unexpected text after the JSON value") }
        return value
    }

    @inlinable
    public mutating func skipByteOrderMark() {
        if offset == 0, bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { offset = 3 }
    }

    @inlinable
    public mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x0A, 0x0D, 0x09: offset += 1
            default: return
            }
        }
    }

    /// The value at `offset`, `depth` levels down.
    @inlinable
    public mutating func parseValue<Value: JSONParsable>(depth: Int) throws(JSONParseError) -> Value {
        guard depth < maxDepth else { throw error("nested more than \(maxDepth) levels deep") }
        guard offset < bytes.count else { throw error("unexpected end of the text") }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try parseLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try parseLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try parseLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(parsed: try parseNumber())
        case let byte:
            throw error("expected a JSON value, found \(Self.describe(byte))")
        }
    }

    @inlinable
    mutating func parseObject<Value: JSONParsable>(depth: Int) throws(JSONParseError) -> Value {
        offset += 1
        var members: [String: Value] = [:]
        if closesEmpty(UInt8(ascii: "}")) { return .object(members) }
        repeat {
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw error("expected a member name in quotes") }
            let nameOffset = offset
            let name = try parseString()
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
            offset += 1
            skipWhitespace()
            let value: Value = try parseValue(depth: depth + 1)
            if members.updateValue(value, forKey: name) != nil, duplicateMembers == .rejected {
                throw JSONParseError(message: "duplicate member \"\(name)\"", offset: nameOffset)
            }
        } while try !closes(UInt8(ascii: "}"), "an object")
        return .object(members)
    }

    @inlinable
    mutating func parseArray<Value: JSONParsable>(depth: Int) throws(JSONParseError) -> Value {
        offset += 1
        var elements: [Value] = []
        if closesEmpty(UInt8(ascii: "]")) { return .array(elements) }
        repeat {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
        } while try !closes(UInt8(ascii: "]"), "an array")
        return .array(elements)
    }

    /// Just after a container's opening bracket: true (the bracket `close` consumed) when the
    /// container is empty.
    @inlinable
    public mutating func closesEmpty(_ close: UInt8) -> Bool {
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == close else { return false }
        offset += 1
        return true
    }

    /// After a member or an element: false after a ',' (more follow), true after `close` (the
    /// container ends); anything else is an error naming the `container`.
    @inlinable
    public mutating func closes(_ close: UInt8, _ container: StaticString) throws(JSONParseError) -> Bool {
        skipWhitespace()
        guard offset < bytes.count else { throw error("unexpected end of the text in \(container)") }
        let byte = bytes[offset]
        guard byte == UInt8(ascii: ",") || byte == close else {
            throw error("expected ',' or '\(Character(Unicode.Scalar(close)))' in \(container)")
        }
        offset += 1
        return byte == close
    }

    @inlinable
    public mutating func parseLiteral(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        let start = word.utf8Start
        for index in 0..<count where offset + index >= bytes.count || bytes[offset + index] != start[index] {
            throw error("invalid literal (expected \(word))")
        }
        offset += count
    }

    @inlinable
    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    /// A number at `offset` (which holds '-' or a digit).
    @inlinable
    public mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
        let start = offset
        let negative = bytes[offset] == UInt8(ascii: "-")
        if negative { offset += 1 }
        guard offset < bytes.count, Self.isDigit(bytes[offset]) else { throw error("invalid number: a digit expected") }
        // Up to 18 digits always fit an Int64: the common case needs no text conversion.
        var magnitude: Int64 = 0
        var digits = 0
        if bytes[offset] == UInt8(ascii: "0") {
            offset += 1
            if offset < bytes.count, Self.isDigit(bytes[offset]) { throw error("invalid number: a leading zero") }
        } else {
            while offset < bytes.count, Self.isDigit(bytes[offset]) {
                magnitude = magnitude &* 10 &+ Int64(bytes[offset] &- UInt8(ascii: "0"))
                digits += 1
                offset += 1
            }
        }
        var isInteger = true
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            isInteger = false
            offset += 1
            guard offset < bytes.count, Self.isDigit(bytes[offset]) else { throw error("invalid number: digits expected after '.'") }
            while offset < bytes.count, Self.isDigit(bytes[offset]) { offset += 1 }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            isInteger = false
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard offset < bytes.count, Self.isDigit(bytes[offset]) else { throw error("invalid number: digits expected in the exponent") }
            while offset < bytes.count, Self.isDigit(bytes[offset]) { offset += 1 }
        }
        if isInteger, digits <= 18 { return .int(negative ? -magnitude : magnitude) }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
        if isInteger, let value = Int64(text) { return .int(value) }
        guard let value = Double(text), value.isFinite else { throw JSONParseError(message: "number out of range", offset: start) }
        return .double(value)
    }

    /// A string at `offset` (which holds its opening quote), escapes decoded.
    @inlinable
    public mutating func parseString() throws(JSONParseError) -> String {
        offset += 1
        let start = offset
        // Fast path: no escapes.
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
                offset += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("control character in a string (escape it)") }
            offset += 1
        }
        var out = Array(UnsafeBufferPointer(rebasing: bytes[start..<offset]))
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                offset += 1
                return String(decoding: out, as: UTF8.self)
            }
            if byte < 0x20 { throw error("control character in a string (escape it)") }
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                offset += 1
                continue
            }
            offset += 1
            guard offset < bytes.count else { break }
            let escape = bytes[offset]
            offset += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired surrogate in a string")
                    }
                    offset += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate in a string") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw error("unpaired surrogate in a string")
                }
                // Not a surrogate and at most 0x10FFFF: always a scalar.
                UTF8.encode(Unicode.Scalar(code)!) { out.append($0) }
            default:
                offset -= 2
                throw error("invalid escape in a string")
            }
        }
        throw error("unterminated string")
    }

    @inlinable
    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard offset < bytes.count else { throw error("invalid \\u escape: four hex digits expected") }
            let byte = bytes[offset]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape: four hex digits expected")
            }
            value = value << 4 | digit
            offset += 1
        }
        return value
    }

    /// A byte for an error message: the character if it is printable ASCII, else its hex value.
    @usableFromInline
    static func describe(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }
}
