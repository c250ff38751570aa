internal import Foundation

/// One PEP 440 version specifier clause, like `>=1.20`, `==1.*`, `~=2.2` or `!=1.5`.
public struct PythonSpecifier: Sendable, Hashable, CustomStringConvertible {
    public enum Operator: String, Sendable, CaseIterable {
        case arbitrary = "==="
        case compatible = "~="
        case equal = "=="
        case notEqual = "!="
        case lessOrEqual = "<="
        case greaterOrEqual = ">="
        case less = "<"
        case greater = ">"
    }

    public let op: Operator
    /// The version text as written (without the operator).
    public let versionText: String
    /// `==1.*` and `!=1.*`.
    public let isPrefix: Bool
    /// The parsed version; nil only for `===` with a non-PEP 440 string.
    public let version: PythonVersion?

    public var description: String { op.rawValue + versionText }

    /// Parses one clause; the error message says what is wrong.
    public static func parse(_ text: String) -> Result<PythonSpecifier, SpecifierProblem> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let op = Operator.allCases.first(where: { trimmed.hasPrefix($0.rawValue) }) else {
            return .failure(SpecifierProblem(offset: 0, message: "expected a version operator (==, !=, <, <=, >, >=, ~=, ===)"))
        }
        let rest = trimmed.dropFirst(op.rawValue.count).trimmingCharacters(in: .whitespaces)
        let operatorLength = trimmed.count - trimmed.drop(while: { "=<>!~".contains($0) }).count
        guard !rest.isEmpty else {
            return .failure(SpecifierProblem(offset: operatorLength, message: "expected a version after '\(op.rawValue)'"))
        }
        if op == .arbitrary {
            return .success(PythonSpecifier(op: op, versionText: rest, isPrefix: false, version: PythonVersion(rest)))
        }
        var versionText = rest
        var isPrefix = false
        if rest.hasSuffix(".*") {
            guard op == .equal || op == .notEqual else {
                return .failure(SpecifierProblem(offset: operatorLength, message: "'.*' is only allowed with == and !="))
            }
            isPrefix = true
            versionText = String(rest.dropLast(2))
        }
        guard let version = PythonVersion(versionText) else {
            return .failure(SpecifierProblem(offset: operatorLength, message: "'\(rest)' is not a PEP 440 version"))
        }
        if isPrefix && !version.local.isEmpty {
            return .failure(SpecifierProblem(offset: operatorLength, message: "a prefix match cannot have a local version"))
        }
        if !version.local.isEmpty && op != .equal && op != .notEqual {
            return .failure(SpecifierProblem(offset: operatorLength, message: "a local version is only allowed with == and !="))
        }
        if op == .compatible && version.release.count < 2 {
            return .failure(SpecifierProblem(offset: operatorLength, message: "~= needs at least two release components (like ~=1.4)"))
        }
        return .success(PythonSpecifier(op: op, versionText: rest, isPrefix: isPrefix, version: version))
    }

    /// The versions this clause allows, as intervals.
    ///
    /// Follows PEP 440's exclusive-comparison rules: `<V` does not allow pre-releases of V
    /// (unless V is one), `>V` does not allow post-releases of V (unless V is one).
    public var allowed: VersionSet<PythonVersion> {
        guard let version else {
            // `===` with an arbitrary string: only that exact string; treat it as one point
            // that no ordinary version equals (see `ConflictDetector`).
            return .all
        }
        switch op {
        case .arbitrary:
            return VersionSet([.exactly(version)])
        case .equal where !isPrefix:
            if version.local.isEmpty {
                // `==1.0` also matches `1.0+local`: everything from 1.0 up to the next post/dev step.
                var ceiling = version
                ceiling.local = [.number(Int.max)]
                return VersionSet([VersionInterval(lower: .inclusive(version), upper: .inclusive(ceiling))])
            }
            return VersionSet([.exactly(version)])
        case .equal:
            return VersionSet([prefixInterval(version, length: version.release.count)])
        case .notEqual where isPrefix:
            let excluded = prefixInterval(version, length: version.release.count)
            return complement(of: excluded)
        case .notEqual:
            var ceiling = version
            if version.local.isEmpty { ceiling.local = [.number(Int.max)] }
            return complement(of: VersionInterval(lower: .inclusive(version), upper: .inclusive(ceiling)))
        case .compatible:
            let upper = version.bumped(prefixLength: version.release.count - 1)
            return VersionSet([VersionInterval(lower: .inclusive(version), upper: .exclusive(upper))])
        case .greaterOrEqual:
            return VersionSet([VersionInterval(lower: .inclusive(version), upper: .unbounded)])
        case .lessOrEqual:
            var ceiling = version
            if version.local.isEmpty { ceiling.local = [.number(Int.max)] }
            return VersionSet([VersionInterval(lower: .unbounded, upper: .inclusive(ceiling))])
        case .less:
            let upper = version.isPrerelease ? version : version.floor
            return VersionSet([VersionInterval(lower: .unbounded, upper: .exclusive(upper))])
        case .greater:
            var lower = version
            if version.post == nil {
                // Past every post-release (and local label) of V.
                lower.post = Int.max
                lower.dev = nil
                lower.local = [.number(Int.max)]
            } else {
                lower.local = [.number(Int.max)]
            }
            return VersionSet([VersionInterval(lower: .exclusive(lower), upper: .unbounded)])
        }
    }

    private func prefixInterval(_ version: PythonVersion, length: Int) -> VersionInterval<PythonVersion> {
        var floor = version.floor
        // `==1.0a1.*`-style prefixes are rare; the release prefix is what matters.
        floor.pre = nil
        return VersionInterval(lower: .inclusive(floor), upper: .exclusive(version.bumped(prefixLength: length)))
    }

    private func complement(of interval: VersionInterval<PythonVersion>) -> VersionSet<PythonVersion> {
        var parts: [VersionInterval<PythonVersion>] = []
        if case .inclusive(let low) = interval.lower { parts.append(VersionInterval(lower: .unbounded, upper: .exclusive(low))) }
        if case .exclusive(let low) = interval.lower { parts.append(VersionInterval(lower: .unbounded, upper: .inclusive(low))) }
        if case .inclusive(let high) = interval.upper { parts.append(VersionInterval(lower: .exclusive(high), upper: .unbounded)) }
        if case .exclusive(let high) = interval.upper { parts.append(VersionInterval(lower: .inclusive(high), upper: .unbounded)) }
        return VersionSet(parts)
    }
}

/// Why a specifier did not parse, and where (an offset into the specifier text).
public struct SpecifierProblem: Error, Sendable {
    public let offset: Int
    public let message: String
}
