internal import Foundation

/// A PEP 508 dependency specification: `name [extras] (specifiers | @ url) [; marker]`.
public struct PythonRequirement: Sendable, Hashable, CustomStringConvertible {
    /// As written.
    public let text: String
    public let name: String
    /// PEP 503 normalised: lower case, runs of `-`, `_`, `.` collapsed to `-`.
    public let normalizedName: String
    public let extras: [String]
    public let specifiers: [PythonSpecifier]
    /// `name @ url`: a direct reference.
    public let url: String?
    /// The environment marker after `;`, as written (empty when none).
    public let marker: String

    public var description: String { text }

    /// The requirement in a canonical spelling: normalised name, sorted extras, sorted
    /// specifiers, marker. Two spellings of the same requirement give the same string.
    public var canonical: String {
        var text = normalizedName
        if !extras.isEmpty { text += "[" + extras.map(PythonRequirement.normalize).sorted().joined(separator: ",") + "]" }
        if let url { text += " @ " + url }
        text += specifiers.map(\.description).sorted().joined(separator: ",")
        if !marker.isEmpty { text += "; " + marker }
        return text
    }

    /// The versions all specifiers allow together.
    public var allowed: VersionSet<PythonVersion> {
        specifiers.reduce(VersionSet.all) { $0.intersection($1.allowed) }
    }

    /// PEP 503 name normalisation.
    public static func normalize(_ name: String) -> String {
        var result = ""
        var lastWasSeparator = false
        for character in name.lowercased() {
            if character == "-" || character == "_" || character == "." {
                if !lastWasSeparator { result.append("-") }
                lastWasSeparator = true
            } else {
                result.append(character)
                lastWasSeparator = false
            }
        }
        return result
    }

    /// Parses a requirement string; a `RequirementError` names the position of the problem.
    public static func parse(_ text: String) throws(RequirementError) -> PythonRequirement {
        var parser = RequirementParser(text)
        return try parser.parse()
    }

    init(text: String, name: String, extras: [String], specifiers: [PythonSpecifier], url: String?, marker: String) {
        self.text = text
        self.name = name
        self.normalizedName = Self.normalize(name)
        self.extras = extras
        self.specifiers = specifiers
        self.url = url
        self.marker = marker
    }
}

/// A malformed requirement string: what is wrong and at which character (0-based).
public struct RequirementError: Error, Sendable, Hashable, CustomStringConvertible {
    public let requirement: String
    public let position: Int
    public let message: String

    public var description: String { "\"\(requirement)\": \(message) at position \(position)" }
}

private struct RequirementParser {
    let text: String
    let chars: [Character]
    var index = 0

    init(_ text: String) {
        self.text = text
        chars = Array(text)
    }

    func fail(_ message: String, at position: Int? = nil) -> RequirementError {
        RequirementError(requirement: text, position: position ?? index, message: message)
    }

    var current: Character? { index < chars.count ? chars[index] : nil }

    mutating func skipSpaces() {
        while let c = current, c == " " || c == "\t" { index += 1 }
    }

    static func isNameCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_" || c == ".")
    }

    mutating func identifier(what: String) throws(RequirementError) -> String {
        let start = index
        while let c = current, Self.isNameCharacter(c) { index += 1 }
        let name = String(chars[start..<index])
        guard let first = name.first else {
            if let c = current { throw fail("unexpected character '\(c)' where a \(what) should start") }
            throw fail("expected a \(what)")
        }
        guard first.isLetter || first.isNumber else { throw fail("a \(what) must start with a letter or digit", at: start) }
        guard let last = name.last, last.isLetter || last.isNumber else {
            throw fail("a \(what) must end with a letter or digit", at: index - 1)
        }
        return name
    }

    mutating func parse() throws(RequirementError) -> PythonRequirement {
        guard !text.isEmpty else { throw fail("empty requirement") }
        guard !text.contains(where: { $0.isNewline || $0 == "\0" }) else {
            throw fail("control characters are not allowed", at: chars.firstIndex(where: { $0.isNewline || $0 == "\0" }))
        }
        skipSpaces()
        let name = try identifier(what: "package name")
        skipSpaces()
        var extras: [String] = []
        if current == "[" {
            index += 1
            skipSpaces()
            if current != "]" {
                while true {
                    skipSpaces()
                    extras.append(try identifier(what: "extra name"))
                    skipSpaces()
                    if current == "," { index += 1; continue }
                    if current == "]" { break }
                    throw fail(current == nil ? "missing ']' to close the extras" : "expected ',' or ']' in the extras")
                }
            }
            index += 1
            skipSpaces()
        }
        var specifiers: [PythonSpecifier] = []
        var url: String?
        if current == "@" {
            index += 1
            skipSpaces()
            let start = index
            while let c = current, !c.isWhitespace { index += 1 }
            let reference = String(chars[start..<index])
            guard reference.contains(":") else { throw fail("expected a URL after '@'", at: start) }
            url = reference
            skipSpaces()
            if current != nil && current != ";" { throw fail("expected ';' or the end after the URL") }
        } else {
            let parenthesised = current == "("
            if parenthesised { index += 1 }
            specifiers = try specifierList(closing: parenthesised)
        }
        skipSpaces()
        var marker = ""
        if current == ";" {
            index += 1
            skipSpaces()
            let start = index
            marker = String(chars[index...]).trimmingCharacters(in: .whitespaces)
            guard !marker.isEmpty else { throw fail("expected an environment marker after ';'", at: start) }
            try validateMarker(marker, offset: start)
            index = chars.count
        }
        if let c = current { throw fail("unexpected character '\(c)'") }
        return PythonRequirement(text: text, name: name, extras: extras, specifiers: specifiers, url: url, marker: marker)
    }

    mutating func specifierList(closing: Bool) throws(RequirementError) -> [PythonSpecifier] {
        var result: [PythonSpecifier] = []
        skipSpaces()
        if closing && current == ")" {
            index += 1
            return result
        }
        guard let first = current, "=<>!~".contains(first) else {
            if closing { throw fail(current == nil ? "missing ')'" : "expected a version operator") }
            return result
        }
        while true {
            skipSpaces()
            let start = index
            while let c = current, c != ",", c != ";", c != ")" { index += 1 }
            let clause = String(chars[start..<index])
            let trimmedLead = clause.prefix(while: { $0 == " " }).count
            switch PythonSpecifier.parse(clause) {
            case .success(let specifier): result.append(specifier)
            case .failure(let problem): throw fail(problem.message, at: start + trimmedLead + problem.offset)
            }
            if current == "," { index += 1; continue }
            break
        }
        if closing {
            guard current == ")" else { throw fail("missing ')'") }
            index += 1
        }
        return result
    }

    /// Markers are evaluated by the resolver; here only their shape is checked: known
    /// variables, quoted strings, comparison operators, `and`/`or`, balanced parentheses.
    func validateMarker(_ marker: String, offset: Int) throws(RequirementError) {
        let variables: Set<String> = [
            "python_version", "python_full_version", "os_name", "sys_platform", "platform_release",
            "platform_system", "platform_version", "platform_machine", "platform_python_implementation",
            "implementation_name", "implementation_version", "extra", "os.name", "sys.platform",
            "platform.version", "platform.machine", "platform.python_implementation", "python_implementation",
        ]
        let chars = Array(marker)
        var index = 0
        var depth = 0
        var expectValue = true
        while index < chars.count {
            let c = chars[index]
            if c == " " || c == "\t" { index += 1; continue }
            if c == "(" { depth += 1; index += 1; continue }
            if c == ")" {
                depth -= 1
                guard depth >= 0 else { throw fail("unbalanced ')' in the marker", at: offset + index) }
                index += 1
                continue
            }
            if c == "'" || c == "\"" {
                guard let end = chars[(index + 1)...].firstIndex(of: c) else {
                    throw fail("unterminated string in the marker", at: offset + index)
                }
                index = end + 1
                expectValue = false
                continue
            }
            if "=<>!~".contains(c) {
                while index < chars.count, "=<>!~".contains(chars[index]) { index += 1 }
                expectValue = true
                continue
            }
            if c.isLetter || c == "_" {
                let start = index
                while index < chars.count, chars[index].isLetter || chars[index] == "_" || chars[index] == "." || chars[index].isNumber {
                    index += 1
                }
                let word = String(chars[start..<index])
                if ["and", "or", "in", "not"].contains(word) { expectValue = true; continue }
                guard variables.contains(word) else { throw fail("unknown marker variable '\(word)'", at: offset + start) }
                expectValue = false
                continue
            }
            throw fail("unexpected character '\(c)' in the marker", at: offset + index)
        }
        guard depth == 0 else { throw fail("missing ')' in the marker", at: offset + chars.count) }
        guard !expectValue else { throw fail("the marker ends where a value is expected", at: offset + chars.count) }
    }
}
