internal import Foundation

/// The ecosystem a request installs from.
public enum Ecosystem: String, Sendable, Hashable, Codable {
    case python
    case npm
}

/// A parsed requirement of either ecosystem.
public enum ParsedRequirement: Sendable {
    case python(PythonRequirement)
    case npm(NpmRequirement)

    public var text: String {
        switch self {
        case .python(let requirement): requirement.text
        case .npm(let requirement): requirement.text
        }
    }

    public var normalizedName: String {
        switch self {
        case .python(let requirement): requirement.normalizedName
        case .npm(let requirement): requirement.name
        }
    }

    /// A canonical spelling: two spellings of the same requirement give the same string.
    public var canonical: String {
        switch self {
        case .python(let requirement): requirement.canonical
        case .npm(let requirement): "\(requirement.name)@\(requirement.range.text.trimmingCharacters(in: .whitespaces))"
        }
    }

    public static func parse(_ text: String, ecosystem: Ecosystem) throws(RequirementError) -> ParsedRequirement {
        switch ecosystem {
        case .python: .python(try PythonRequirement.parse(text))
        case .npm: .npm(try NpmRequirement.parse(text))
        }
    }
}

/// Requirements on the same package that no version satisfies together.
public struct DirectConflict: Sendable, Hashable, CustomStringConvertible {
    /// The normalised package name.
    public let package: String
    /// The requirement strings as written, in input order.
    public let requirements: [String]
    public let reason: String

    public var description: String { "\(package): \(requirements.joined(separator: " and ")) (\(reason))" }
}

/// Finds direct conflicts without the network: requirements on the same (normalised) package
/// whose allowed version sets do not intersect.
///
/// Requirements with an environment marker may not apply together, so they are left to the
/// resolver. A conflict names the smallest set found: a pair when two requirements clash, else
/// every requirement on the package.
public enum ConflictDetector {
    public static func conflicts(_ requirements: [ParsedRequirement]) -> [DirectConflict] {
        var groups: [String: [ParsedRequirement]] = [:]
        var order: [String] = []
        for requirement in requirements {
            if case .python(let python) = requirement, !python.marker.isEmpty { continue }
            let key = requirement.normalizedName
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(requirement)
        }
        var result: [DirectConflict] = []
        for name in order {
            guard let group = groups[name], group.count > 1 else { continue }
            switch group[0] {
            case .python:
                let python = group.compactMap { if case .python(let r) = $0 { r } else { nil } }
                if let conflict = pythonConflict(name: name, python) { result.append(conflict) }
            case .npm:
                let npm = group.compactMap { if case .npm(let r) = $0 { r } else { nil } }
                if let conflict = npmConflict(name: name, npm) { result.append(conflict) }
            }
        }
        return result
    }

    static func pythonConflict(name: String, _ group: [PythonRequirement]) -> DirectConflict? {
        // Direct URL references and `===` strings: equal only to themselves.
        let urls = Set(group.compactMap(\.url))
        if urls.count > 1 || (!urls.isEmpty && group.contains(where: { $0.url == nil && !$0.specifiers.isEmpty })) {
            return DirectConflict(package: name, requirements: group.map(\.text), reason: "different direct references")
        }
        let arbitrary = group.flatMap { requirement in requirement.specifiers.filter { $0.op == .arbitrary }.map { (requirement, $0.versionText) } }
        if Set(arbitrary.map(\.1)).count > 1 {
            return DirectConflict(package: name, requirements: Array(Set(arbitrary.map(\.0.text))).sorted(), reason: "different === versions")
        }
        return firstEmpty(name: name, group.map { ($0.text, $0.allowed) })
    }

    static func npmConflict(name: String, _ group: [NpmRequirement]) -> DirectConflict? {
        firstEmpty(name: name, group.map { ($0.text, $0.range.allowed) })
    }

    static func firstEmpty<V>(name: String, _ sets: [(String, VersionSet<V>)]) -> DirectConflict? {
        let all = sets.dropFirst().reduce(sets[0].1) { $0.intersection($1.1) }
        guard all.isEmpty else { return nil }
        for i in sets.indices {
            if sets[i].1.isEmpty {
                return DirectConflict(package: name, requirements: [sets[i].0], reason: "no version satisfies \(sets[i].0)")
            }
            for j in sets.indices where j > i {
                if sets[i].1.intersection(sets[j].1).isEmpty {
                    return DirectConflict(package: name, requirements: [sets[i].0, sets[j].0], reason: "no version satisfies both")
                }
            }
        }
        return DirectConflict(package: name, requirements: sets.map(\.0), reason: "no version satisfies all of them")
    }
}
