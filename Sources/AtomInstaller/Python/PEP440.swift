internal import Foundation

/// A PEP 440 version: `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with the spelling
/// variants PEP 440 normalises (`1.0-alpha.1`, `1.0_rc2`, `1.0-1`, `v1.0`, upper case).
///
/// Ordering is PEP 440's: epoch, release (trailing zeros ignored), then dev < pre < final <
/// post, then local labels (a version with a local label sorts after the same one without).
public struct PythonVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum PreKind: Int, Sendable, Hashable, Comparable {
        case alpha = 0, beta = 1, rc = 2
        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
        var spelling: String { switch self { case .alpha: "a"; case .beta: "b"; case .rc: "rc" } }
    }

    /// A segment of a local label: numbers sort after words (PEP 440).
    public enum LocalPart: Sendable, Hashable, Comparable {
        case word(String)
        case number(Int)
        public static func < (a: Self, b: Self) -> Bool {
            switch (a, b) {
            case (.word(let x), .word(let y)): x < y
            case (.number(let x), .number(let y)): x < y
            case (.word, .number): true
            case (.number, .word): false
            }
        }
    }

    public var epoch: Int
    public var release: [Int]
    public var pre: (kind: PreKind, number: Int)?
    public var post: Int?
    public var dev: Int?
    public var local: [LocalPart]

    public init(epoch: Int = 0, release: [Int], pre: (kind: PreKind, number: Int)? = nil, post: Int? = nil, dev: Int? = nil, local: [LocalPart] = []) {
        self.epoch = epoch
        self.release = release
        self.pre = pre
        self.post = post
        self.dev = dev
        self.local = local
    }

    public var isPrerelease: Bool { pre != nil || dev != nil }

    /// The same version without its local label.
    public var withoutLocal: PythonVersion {
        var copy = self
        copy.local = []
        return copy
    }

    /// Parses a version; nil if it is not PEP 440.
    public init?(_ text: String) {
        var scanner = VersionScanner(text.lowercased().trimmingCharacters(in: .whitespaces))
        guard let parsed = scanner.parse() else { return nil }
        self = parsed
    }

    public var description: String {
        var text = epoch != 0 ? "\(epoch)!" : ""
        text += release.map(String.init).joined(separator: ".")
        if let pre { text += "\(pre.kind.spelling)\(pre.number)" }
        if let post { text += ".post\(post)" }
        if let dev { text += ".dev\(dev)" }
        if !local.isEmpty {
            text += "+" + local.map { part in
                switch part {
                case .word(let word): word
                case .number(let number): String(number)
                }
            }.joined(separator: ".")
        }
        return text
    }

    public static func == (a: Self, b: Self) -> Bool { compare(a, b) == 0 }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(epoch)
        var trimmed = release
        while trimmed.count > 1 && trimmed.last == 0 { trimmed.removeLast() }
        hasher.combine(trimmed)
        hasher.combine(pre?.kind)
        hasher.combine(pre?.number)
        hasher.combine(post)
        hasher.combine(dev)
        hasher.combine(local)
    }

    public static func < (a: Self, b: Self) -> Bool { compare(a, b) < 0 }

    /// -1, 0 or 1.
    static func compare(_ a: Self, _ b: Self) -> Int {
        if a.epoch != b.epoch { return a.epoch < b.epoch ? -1 : 1 }
        let length = max(a.release.count, b.release.count)
        for index in 0..<length {
            let x = index < a.release.count ? a.release[index] : 0
            let y = index < b.release.count ? b.release[index] : 0
            if x != y { return x < y ? -1 : 1 }
        }
        let preA = a.preKey, preB = b.preKey
        if preA != preB { return preA.lexicographicallyPrecedes(preB) ? -1 : 1 }
        let postA = a.post ?? -1, postB = b.post ?? -1
        if postA != postB { return postA < postB ? -1 : 1 }
        let devA = a.dev ?? Int.max, devB = b.dev ?? Int.max
        if devA != devB { return devA < devB ? -1 : 1 }
        if a.local != b.local {
            // No local label sorts first; then segment by segment, a longer label wins ties.
            for (x, y) in zip(a.local, b.local) where x != y { return x < y ? -1 : 1 }
            return a.local.count < b.local.count ? -1 : 1
        }
        return 0
    }

    /// dev-only releases sort before any pre-release; final releases after them.
    private var preKey: [Int] {
        if let pre { return [1, pre.kind.rawValue, pre.number] }
        if dev != nil && post == nil { return [0] }
        return [2]
    }

    /// The release with the last component incremented, dropping the rest: `1.4` -> `2` for
    /// a prefix of one component (used by `==1.*` and `~=`).
    func bumped(prefixLength: Int) -> PythonVersion {
        var parts = Array(release.prefix(prefixLength))
        while parts.count < prefixLength { parts.append(0) }
        parts[prefixLength - 1] += 1
        return PythonVersion(epoch: epoch, release: parts, dev: 0)
    }

    /// The smallest version with this release (and epoch): `1.4` -> `1.4.dev0`.
    var floor: PythonVersion { PythonVersion(epoch: epoch, release: release, dev: 0) }
}

/// A hand-written scanner for PEP 440's permissive spelling.
private struct VersionScanner {
    let chars: [Character]
    var index = 0

    init(_ text: String) { chars = Array(text) }

    var atEnd: Bool { index >= chars.count }
    var current: Character? { atEnd ? nil : chars[index] }

    mutating func number() -> Int? {
        var digits = ""
        while let c = current, c.isASCII, c.isNumber {
            digits.append(c)
            index += 1
        }
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        return Int(digits)
    }

    mutating func skipSeparator() -> Bool {
        if let c = current, c == "." || c == "-" || c == "_" {
            index += 1
            return true
        }
        return false
    }

    mutating func word(_ options: [String]) -> String? {
        for option in options.sorted(by: { $0.count > $1.count }) {
            let end = index + option.count
            if end <= chars.count && String(chars[index..<end]) == option {
                index = end
                return option
            }
        }
        return nil
    }

    mutating func parse() -> PythonVersion? {
        if current == "v" { index += 1 }
        var epoch = 0
        var release: [Int] = []
        guard let first = number() else { return nil }
        if current == "!" {
            index += 1
            epoch = first
            guard let next = number() else { return nil }
            release.append(next)
        } else {
            release.append(first)
        }
        while current == ".", index + 1 < chars.count, chars[index + 1].isNumber {
            index += 1
            guard let part = number() else { return nil }
            release.append(part)
        }
        var version = PythonVersion(epoch: epoch, release: release)
        // Pre-release.
        var mark = index
        _ = skipSeparator()
        if let letter = word(["alpha", "beta", "preview", "pre", "rc", "c", "a", "b"]) {
            let kind: PythonVersion.PreKind = switch letter {
            case "alpha", "a": .alpha
            case "beta", "b": .beta
            default: .rc
            }
            let before = index
            _ = skipSeparator()
            let value: Int
            if let parsed = number() { value = parsed } else { index = before; value = 0 }
            version.pre = (kind, value)
        } else {
            index = mark
        }
        // Post-release: `.post1`, `-1`, `.rev1`, `r1`.
        mark = index
        if current == "-", index + 1 < chars.count, chars[index + 1].isNumber {
            index += 1
            version.post = number()
        } else {
            _ = skipSeparator()
            if word(["post", "rev", "r"]) != nil {
                let before = index
                _ = skipSeparator()
                if let parsed = number() { version.post = parsed } else { index = before; version.post = 0 }
            } else {
                index = mark
            }
        }
        // Development release.
        mark = index
        _ = skipSeparator()
        if word(["dev"]) != nil {
            let before = index
            _ = skipSeparator()
            if let parsed = number() { version.dev = parsed } else { index = before; version.dev = 0 }
        } else {
            index = mark
        }
        // Local label.
        if current == "+" {
            index += 1
            var parts: [PythonVersion.LocalPart] = []
            var segment = ""
            func flush() -> Bool {
                guard !segment.isEmpty else { return false }
                if let value = Int(segment), segment.allSatisfy(\.isNumber) { parts.append(.number(value)) } else { parts.append(.word(segment)) }
                segment = ""
                return true
            }
            while let c = current {
                if c == "." || c == "-" || c == "_" {
                    guard flush() else { return nil }
                } else if c.isASCII && (c.isLetter || c.isNumber) {
                    segment.append(c)
                } else {
                    return nil
                }
                index += 1
            }
            guard flush() else { return nil }
            version.local = parts
        }
        return atEnd ? version : nil
    }
}
