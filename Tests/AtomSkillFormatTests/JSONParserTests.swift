import AtomSkillFormat
import Testing

/// The error `text` gives, or nil when it parses.
private func failure(_ text: String, duplicateMembers: JSONParser.DuplicateMembers = .lastWins) -> JSONParseError? {
    do {
        _ = try JSONParser.parse(text, as: JSONValue.self, duplicateMembers: duplicateMembers)
        return nil
    } catch {
        return error
    }
}

private func number(_ text: String) throws -> JSONNumber? {
    struct Number: JSONParsable {
        var parsed: JSONNumber?
        static var null: Number { Number() }
        static func bool(_ value: Bool) -> Number { Number() }
        static func string(_ value: String) -> Number { Number() }
        static func array(_ elements: [Number]) -> Number { Number() }
        static func object(_ members: [String: Number]) -> Number { Number() }
        static func number(parsed: JSONNumber) -> Number { Number(parsed: parsed) }
    }
    return try JSONParser.parse(text, as: Number.self).parsed
}

@Suite("The shared JSON parser")
struct JSONParserTests {
    @Test("escapes, Unicode, numbers, and clear errors (the marketplace's bundle lines)")
    func basics() throws {
        let value = try JSONParser.parse(#"{"a": [1, -2.5e3, true, false, null], "b": "x\"\\\/\n\u00e9\ud83c\udf89", "c": {}}"#, as: JSONValue.self)
        #expect(value["a"] == .array([.number(1), .number(-2500), .bool(true), .bool(false), .null]))
        #expect(value["b"] == .string("x\"\\/\né🎉"))
        #expect(value["c"] == .object([:]))
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"\\x\"", "tru", "1 2", "\"\u{1}\"", "{\"a\":1}x", "\"\\ud800\""] {
            #expect(failure(bad) != nil, "\(bad)")
        }
    }

    @Test("surrogate pairs decode; lone or reversed surrogates are errors at their byte")
    func surrogates() throws {
        #expect(try JSONParser.parse(#""\uD83D\uDE00 \u00e9\u0000""#, as: JSONValue.self) == .string("😀 é\u{0}"))
        #expect(failure(#""\ud800""#) == JSONParseError(message: "unpaired surrogate in a string", offset: 7))
        #expect(failure(#""\ud800x""#)?.message == "unpaired surrogate in a string")
        #expect(failure(#""\ud800\u0041""#)?.message == "unpaired surrogate in a string")
        #expect(failure(#""\udc00\ud800""#) == JSONParseError(message: "unpaired surrogate in a string", offset: 7))
        #expect(failure(#""\u12g4""#)?.message == "invalid \\u escape: four hex digits expected")
        #expect(failure(#""\u12"#)?.message == "invalid \\u escape: four hex digits expected")
    }

    @Test("nesting: 64 levels parse, 65 are refused at the byte where they start")
    func depth() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(failure(ok) == nil)
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(failure(deep) == JSONParseError(message: "nested more than 64 levels deep", offset: 64))
        let deepObjects = String(repeating: #"{"a":"#, count: 100_000)
        #expect(failure(deepObjects)?.message == "nested more than 64 levels deep")
        #expect(throws: JSONParseError.self) { try JSONParser.parse(ok, as: JSONValue.self, maxDepth: 10) }
    }

    @Test("numbers: exact integers, doubles, the RFC grammar and range")
    func numbers() throws {
        #expect(try number("0") == .int(0))
        #expect(try number("-0") == .int(0))
        #expect(try number("-0.0") == .double(-0.0))
        #expect(try number("123456789012345678") == .int(123_456_789_012_345_678))
        #expect(try number("9223372036854775807") == .int(.max))
        #expect(try number("-9223372036854775808") == .int(.min))
        #expect(try number("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try number("1e3") == .double(1000))
        #expect(try number("1E+3") == .double(1000))
        #expect(try number("2.5e-3") == .double(0.0025))
        #expect(try number("1.7976931348623157e308") == .double(.greatestFiniteMagnitude))
        #expect(try number("1e-400") == .double(0))
        #expect(try number("4.9e-324") == .double(.leastNonzeroMagnitude))
        #expect(try JSONParser.parse("12345678901234567890123", as: JSONValue.self) == .number(1.2345678901234568e22))
        #expect(failure("1e400") == JSONParseError(message: "number out of range", offset: 0))
        #expect(failure("[0, -1e400]") == JSONParseError(message: "number out of range", offset: 4))
        #expect(failure("01") == JSONParseError(message: "invalid number: a leading zero", offset: 1))
        #expect(failure("-01")?.message == "invalid number: a leading zero")
        for bad in ["+1", ".5", "1.", "1.e3", "1e", "1e+", "-", "- 1", "0x10", "Infinity", "NaN", "--1"] {
            #expect(failure(bad) != nil, "\(bad)")
        }
    }

    @Test("strings: control characters must be escaped; escapes are the RFC's")
    func strings() throws {
        #expect(failure("\"a\u{1}b\"") == JSONParseError(message: "control character in a string (escape it)", offset: 2))
        #expect(failure("\"a\nb\"") != nil)
        #expect(failure("\"a\tb\"") != nil)
        #expect(failure(#""a\qb""#) == JSONParseError(message: "invalid escape in a string", offset: 2))
        #expect(failure(#""abc"#) == JSONParseError(message: "unterminated string", offset: 4))
        #expect(failure(#""abc\"#)?.message == "unterminated string")
        #expect(try JSONParser.parse(#""\b\f\n\r\t\/\u007f\u0001""#, as: JSONValue.self) == .string("\u{8}\u{c}\n\r\t/\u{7f}\u{1}"))
        #expect(try JSONParser.parse("\"\u{7f} é 😀\"", as: JSONValue.self) == .string("\u{7f} é 😀"))
    }

    @Test("the whole text is one value: empty text, trailing text and stray bytes are errors with offsets")
    func document() throws {
        #expect(failure("") == JSONParseError(message: "unexpected end of the text", offset: 0))
        #expect(failure(" \n\t ") == JSONParseError(message: "unexpected end of the text", offset: 4))
        #expect(failure(#"{"a":1} x"#) == JSONParseError(message: "unexpected text after the JSON value", offset: 8))
        #expect(failure("[1] [2]")?.offset == 4)
        #expect(failure("[1 2]") == JSONParseError(message: "expected ',' or ']' in an array", offset: 3))
        #expect(failure(#"{"a" 1}"#) == JSONParseError(message: "expected ':' after a member name", offset: 5))
        #expect(failure("{a:1}") == JSONParseError(message: "expected a member name in quotes", offset: 1))
        #expect(failure("[1,]") == JSONParseError(message: "expected a JSON value, found ']'", offset: 3))
        #expect(failure("[\u{00e9}]") == JSONParseError(message: "expected a JSON value, found byte 0xC3", offset: 1))
        #expect(failure("nul") == JSONParseError(message: "invalid literal (expected null)", offset: 0))
        #expect(failure("trUe")?.message == "invalid literal (expected true)")
        #expect(failure(" \r\n[ 1 ,\t2 ] \n") == nil)
    }

    @Test("a leading byte order mark is skipped (RFC 8259 8.1); one anywhere else is an error")
    func byteOrderMark() throws {
        #expect(try JSONParser.parse("\u{FEFF}{\"a\": 1}", as: JSONValue.self) == .object(["a": .number(1)]))
        #expect(failure("\u{FEFF}") == JSONParseError(message: "unexpected end of the text", offset: 3))
        #expect(failure(" \u{FEFF}{}") == JSONParseError(message: "expected a JSON value, found byte 0xEF", offset: 1))
        #expect(failure("[\u{FEFF}1]")?.offset == 1)
    }

    @Test("a repeated member name: the last wins, or it is an error naming the name where asked")
    func duplicateMembers() throws {
        #expect(try JSONParser.parse(#"{"a": 1, "a": 2}"#, as: JSONValue.self) == .object(["a": .number(2)]))
        #expect(failure(#"{"a": 1, "b": {"a": 2}, "a": 3}"#, duplicateMembers: .rejected) == JSONParseError(message: #"duplicate member "a""#, offset: 24))
        #expect(failure(#"{"a": 1, "b": {"a": 2}}"#, duplicateMembers: .rejected) == nil)
    }

    @Test("skill inputs, outputs and JSON manifests use it too: 512 levels, errors with their offset")
    func skillJSON() throws {
        let deep = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(throws: Never.self) { try JSONValue.parse(json: deep) }
        let deeper = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(throws: JSONParseError(message: "nested more than 512 levels deep", offset: 512)) { try JSONValue.parse(json: deeper) }
        #expect(throws: JSONParseError(message: "expected a member name in quotes", offset: 8)) { try JSONValue.parse(json: #"{"a": 1,}"#) }
        #expect(throws: JSONParseError(message: "expected a JSON value, found ']'", offset: 3)) { try JSONValue.parse(json: "[1,]") }
        #expect(try JSONValue.parse(json: #"{"a": 1, "a": 2}"#) == .object(["a": .number(2)]))
        #expect { _ = try SkillManifest.parse(#"{"name": "x",, }"#, json: true) } throws: { error in
            (error as? SkillFormatError)?.message == "the manifest is not valid JSON: expected a member name in quotes at byte 13"
        }
    }
}

@Suite("JSON Lines")
struct JSONLinesTests {
    @Test("lines keep their numbers, blank ones are skipped, and what no JSON text holds is named")
    func lines() {
        var bytes = Array("{\"a\":1}\r\n\n  \t\r\n[2]\n".utf8)
        bytes += [UInt8(ascii: "x"), 0, UInt8(ascii: "\n"), 0xC3, 0x28, UInt8(ascii: "\n")] + Array("\"é\"".utf8)
        let lines = JSONLines.lines(of: bytes)
        #expect(lines.map(\.number) == [1, 4, 5, 6, 7])
        #expect((try? lines[0].text.get()) == "{\"a\":1}\r")
        #expect((try? lines[1].text.get()) == "[2]")
        #expect(problem(lines[2]) == "invalid JSON: a NUL byte at byte 2")
        #expect(problem(lines[3]) == "the line is not UTF-8 text")
        #expect((try? lines[4].text.get()) == "\"é\"")
        #expect(JSONLines.lines(of: [UInt8]()).isEmpty)
    }

    func problem(_ line: JSONLines.Line) -> String? {
        if case .failure(let problem) = line.text { return problem.description }
        return nil
    }
}
