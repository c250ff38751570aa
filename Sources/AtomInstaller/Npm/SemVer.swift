internal import Foundation

/// A semantic version (`1.2.3-beta.1+build`), ordered as semver 2.0 says: build metadata is
/// ignored, a pre-release sorts before its release, numeric identifiers before alphanumeric.
public struct SemVer: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int
    public var prerelease: [String]

    public init(_ major: Int, _ minor: Int, _ patch: Int, prerelease: [String] = []) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.prerelease = prerelease
    }

    /// Parses `1.2.3`, `v1.2.3`, `1.2.3-rc.1+build`; nil otherwise.
    public init?(_ text: String) {
        var body = text.trimmingCharacters(in: .whitespaces)
        if body.hasPrefix("v") || body.hasPrefix("=") { body.removeFirst() }
        if let plus = body.firstIndex(of: "+") { body = String(body[..<plus]) }
        var pre: [String] = []
        if let dash = body.firstIndex(of: "-") {
            pre = body[body.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard pre.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") } }) else { return nil }
            body = String(body[..<dash])
        }
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let a = SemVer.component(parts[0]), let b = SemVer.component(parts[1]), let c = SemVer.component(parts[2]) else {
            return nil
        }
        self.init(a, b, c, prerelease: pre)
    }

    static func component(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 15, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }

    public var description: String {
        "\(major).\(minor).\(patch)" + (prerelease.isEmpty ? "" : "-" + prerelease.joined(separator: "."))
    }

    public static func < (a: Self, b: Self) -> Bool {
        if a.major != b.major { return a.major < b.major }
        if a.minor != b.minor { return a.minor < b.minor }
        if a.patch != b.patch { return a.patch < b.patch }
        if a.prerelease.isEmpty != b.prerelease.isEmpty { return !a.prerelease.isEmpty }
        for (x, y) in zip(a.prerelease, b.prerelease) where x != y {
            switch (Int(x), Int(y)) {
            case (let p?, let q?): return p < q
            case (.some, nil): return true
            case (nil, .some): return false
            default: return x < y
            }
        }
        return a.prerelease.count < b.prerelease.count
    }

    /// The lowest version of a release line (`1.2.3-0`): below every pre-release of 1.2.3.
    static func floor(_ major: Int, _ minor: Int, _ patch: Int) -> SemVer { SemVer(major, minor, patch, prerelease: ["0"]) }
}

/// An npm range (`^1.2.3`, `~1.2`, `1.x`, `1.2.3 - 2.3.4`, `>=1 <2`, `a || b`, `*`, `latest`).
public struct NpmRange: Sendable, CustomStringConvertible {
    public let text: String
    public let allowed: VersionSet<SemVer>

    public var description: String { text }

    /// Parses a range; the error says what and where (an offset into `text`).
    public static func parse(_ text: String) -> Result<NpmRange, SpecifierProblem> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed == "*" || trimmed == "latest" || trimmed == "x" {
            return .success(NpmRange(text: text, allowed: .all))
        }
        var sets: [VersionInterval<SemVer>] = []
        var offset = 0
        for alternative in trimmed.components(separatedBy: "||") {
            defer { offset += alternative.count + 2 }
            let body = alternative.trimmingCharacters(in: .whitespaces)
            if body.isEmpty || body == "*" {
                sets.append(.all)
                continue
            }
            switch comparatorSet(body) {
            case .success(let interval): sets.append(interval)
            case .failure(let problem): return .failure(SpecifierProblem(offset: offset + problem.offset, message: problem.message))
            }
        }
        return .success(NpmRange(text: text, allowed: VersionSet(sets)))
    }

    /// A partial version: `1`, `1.2`, `1.2.3`, with `x`/`X`/`*` wildcards.
    struct Partial {
        var major: Int?
        var minor: Int?
        var patch: Int?
        var prerelease: [String]

        var full: SemVer? {
            guard let major, let minor, let patch else { return nil }
            return SemVer(major, minor, patch, prerelease: prerelease)
        }

        static func parse(_ text: String) -> Partial? {
            var body = text
            if body.hasPrefix("v") || body.hasPrefix("=") { body.removeFirst() }
            if let plus = body.firstIndex(of: "+") { body = String(body[..<plus]) }
            var pre: [String] = []
            if let dash = body.firstIndex(of: "-") {
                pre = body[body.index(after: dash)...].split(separator: ".").map(String.init)
                guard !pre.isEmpty else { return nil }
                body = String(body[..<dash])
            }
            let parts = body.split(separator: ".", omittingEmptySubsequences: false)
            guard (1...3).contains(parts.count) else { return nil }
            var values: [Int?] = []
            var wild = false
            for part in parts {
                if part == "x" || part == "X" || part == "*" {
                    wild = true
                    values.append(nil)
                } else {
                    guard !wild, let value = SemVer.component(part) else { return nil }
                    values.append(value)
                }
            }
            while values.count < 3 { values.append(nil) }
            if !pre.isEmpty && values.contains(where: { $0 == nil }) { return nil }
            return Partial(major: values[0], minor: values[1], patch: values[2], prerelease: pre)
        }

        /// The versions `=partial` allows: `1.2` -> [1.2.0-0, 1.3.0-0).
        var range: VersionInterval<SemVer> {
            if let full { return .exactly(full) }
            guard let major else { return .all }
            guard let minor else { return VersionInterval(lower: .inclusive(SemVer(major, 0, 0)), upper: .exclusive(SemVer.floor(major + 1, 0, 0))) }
            return VersionInterval(lower: .inclusive(SemVer(major, minor, 0)), upper: .exclusive(SemVer.floor(major, minor + 1, 0)))
        }
    }

    static func comparatorSet(_ body: String) -> Result<VersionInterval<SemVer>, SpecifierProblem> {
        // Hyphen range: `a - b`.
        let hyphenParts = body.components(separatedBy: " - ")
        if hyphenParts.count == 2 {
            let left = hyphenParts[0].trimmingCharacters(in: .whitespaces)
            let right = hyphenParts[1].trimmingCharacters(in: .whitespaces)
            guard let low = Partial.parse(left) else { return .failure(SpecifierProblem(offset: 0, message: "'\(left)' is not a version")) }
            guard let high = Partial.parse(right) else {
                return .failure(SpecifierProblem(offset: hyphenParts[0].count + 3, message: "'\(right)' is not a version"))
            }
            let lower = low.range.lower
            let upper: Bound<SemVer> = high.full.map { .inclusive($0) } ?? high.range.upper
            return .success(VersionInterval(lower: lower, upper: upper))
        }
        var interval = VersionInterval<SemVer>.all
        var offset = 0
        // Operators may be separated from their version by spaces (`>= 1.2`): glue them first.
        var tokens: [(String, Int)] = []
        var pendingOperator: (String, Int)?
        for piece in body.split(separator: " ", omittingEmptySubsequences: false) {
            defer { offset += piece.count + 1 }
            if piece.isEmpty { continue }
            let text = String(piece)
            if ["<", "<=", ">", ">=", "=", "^", "~", "~>"].contains(text) {
                pendingOperator = (text, offset)
                continue
            }
            if let pending = pendingOperator {
                tokens.append((pending.0 + text, pending.1))
                pendingOperator = nil
            } else {
                tokens.append((text, offset))
            }
        }
        if let pending = pendingOperator {
            return .failure(SpecifierProblem(offset: pending.1 + pending.0.count, message: "expected a version after '\(pending.0)'"))
        }
        for (token, position) in tokens {
            switch comparator(token) {
            case .success(let range): interval = interval.intersection(range)
            case .failure(let problem): return .failure(SpecifierProblem(offset: position + problem.offset, message: problem.message))
            }
        }
        return .success(interval)
    }

    static func comparator(_ token: String) -> Result<VersionInterval<SemVer>, SpecifierProblem> {
        let operators = ["<=", ">=", "~>", "<", ">", "=", "^", "~"]
        let op = operators.first { token.hasPrefix($0) } ?? ""
        let versionText = String(token.dropFirst(op.count))
        guard !versionText.isEmpty else { return .failure(SpecifierProblem(offset: op.count, message: "expected a version after '\(op)'")) }
        guard let partial = Partial.parse(versionText) else {
            return .failure(SpecifierProblem(offset: op.count, message: "'\(versionText)' is not a version or range"))
        }
        let range = partial.range
        switch op {
        case "", "=":
            return .success(range)
        case ">=":
            return .success(VersionInterval(lower: range.lower, upper: .unbounded))
        case ">":
            if let full = partial.full { return .success(VersionInterval(lower: .exclusive(full), upper: .unbounded)) }
            // `>1.2` means >=1.3.0.
            return .success(VersionInterval(lower: flip(range.upper), upper: .unbounded))
        case "<=":
            if let full = partial.full { return .success(VersionInterval(lower: .unbounded, upper: .inclusive(full))) }
            return .success(VersionInterval(lower: .unbounded, upper: range.upper))
        case "<":
            guard let major = partial.major else { return .success(VersionInterval(lower: .unbounded, upper: .exclusive(SemVer.floor(0, 0, 0)))) }
            if let full = partial.full {
                return .success(VersionInterval(lower: .unbounded, upper: .exclusive(full.prerelease.isEmpty ? SemVer.floor(full.major, full.minor, full.patch) : full)))
            }
            return .success(VersionInterval(lower: .unbounded, upper: .exclusive(SemVer.floor(major, partial.minor ?? 0, 0))))
        case "~", "~>":
            guard let major = partial.major else { return .success(.all) }
            let lower = partial.full ?? SemVer(major, partial.minor ?? 0, 0)
            let upper = partial.minor == nil ? SemVer.floor(major + 1, 0, 0) : SemVer.floor(major, partial.minor! + 1, 0)
            return .success(VersionInterval(lower: .inclusive(lower), upper: .exclusive(upper)))
        case "^":
            guard let major = partial.major else { return .success(.all) }
            let minor = partial.minor ?? 0, patch = partial.patch ?? 0
            let lower = partial.full ?? SemVer(major, minor, patch)
            let upper: SemVer
            if major > 0 || partial.minor == nil {
                upper = SemVer.floor(major + 1, 0, 0)
            } else if minor > 0 || partial.patch == nil {
                upper = SemVer.floor(0, minor + 1, 0)
            } else {
                upper = SemVer.floor(0, 0, patch + 1)
            }
            return .success(VersionInterval(lower: .inclusive(lower), upper: .exclusive(upper)))
        default:
            return .failure(SpecifierProblem(offset: 0, message: "unknown operator"))
        }
    }

    static func flip(_ bound: Bound<SemVer>) -> Bound<SemVer> {
        switch bound {
        case .unbounded: .unbounded
        case .inclusive(let value): .exclusive(value)
        case .exclusive(let value): .inclusive(value)
        }
    }
}

/// An npm requirement: `name`, `name@range`, `@scope/name@range`.
public struct NpmRequirement: Sendable, CustomStringConvertible {
    public let text: String
    public let name: String
    public let range: NpmRange

    public var description: String { text }
    public var normalizedName: String { name }

    public static func parse(_ text: String) throws(RequirementError) -> NpmRequirement {
        func fail(_ message: String, _ position: Int) -> RequirementError {
            RequirementError(requirement: text, position: position, message: message)
        }
        guard !text.isEmpty else { throw fail("empty requirement", 0) }
        let chars = Array(text)
        var nameEnd = chars.count
        let searchStart = text.hasPrefix("@") ? 1 : 0
        if let at = chars[searchStart...].firstIndex(of: "@") { nameEnd = at }
        let name = String(chars[0..<nameEnd])
        guard !name.isEmpty else { throw fail("expected a package name", 0) }
        guard name.count <= 214 else { throw fail("npm package names are at most 214 characters", 214) }
        // npm's rules: lower case, URL-safe, optional @scope/.
        var bodyStart = 0
        var body = name
        if name.hasPrefix("@") {
            guard let slash = name.firstIndex(of: "/") else { throw fail("a scoped name needs '/' (like @scope/name)", name.count) }
            let scope = name[name.index(after: name.startIndex)..<slash]
            if let bad = scope.firstIndex(where: { !Self.isNameCharacter($0) }) {
                throw fail("'\(scope[bad])' is not allowed in an npm scope", name.distance(from: name.startIndex, to: bad))
            }
            guard !scope.isEmpty else { throw fail("empty npm scope", 1) }
            bodyStart = name.distance(from: name.startIndex, to: slash) + 1
            body = String(name[name.index(after: slash)...])
        }
        guard let first = body.first else { throw fail("expected a package name after the scope", bodyStart) }
        guard first != "." && first != "_" else { throw fail("an npm name cannot start with '\(first)'", bodyStart) }
        if let bad = body.firstIndex(where: { !Self.isNameCharacter($0) }) {
            throw fail("'\(body[bad])' is not allowed in an npm package name", bodyStart + body.distance(from: body.startIndex, to: bad))
        }
        let rangeText = nameEnd < chars.count ? String(chars[(nameEnd + 1)...]) : ""
        if nameEnd < chars.count && rangeText.isEmpty { throw fail("expected a version range after '@'", nameEnd + 1) }
        switch NpmRange.parse(rangeText) {
        case .success(let range): return NpmRequirement(text: text, name: name, range: range)
        case .failure(let problem): throw fail(problem.message, nameEnd + 1 + problem.offset)
        }
    }

    static func isNameCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLowercase || c.isNumber || c == "-" || c == "." || c == "_" || c == "~")
    }
}
