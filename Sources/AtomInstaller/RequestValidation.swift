public import AtomProto
public import AtomRPC

/// A request checked and parsed: what the store builds from. Everything a client can get
/// wrong is caught here, as INVALID_ARGUMENT naming the item and position.
public struct ValidatedInstall: Sendable {
    public let skillID: String
    public let agentID: String
    public let ecosystem: Ecosystem
    public let requirements: [ParsedRequirement]
    public let options: InstallOptions
    public let limits: ResourceLimits

    /// The requirement set in canonical form, sorted and deduplicated: the resolution key's core.
    public var canonicalRequirements: [String] { Array(Set(requirements.map(\.canonical))).sorted() }

    /// What decides the environment besides the index's state: ecosystem, requirement set and
    /// the options that change resolution. Equal fingerprints are served the same environment.
    public var fingerprint: String {
        [
            ecosystem.rawValue, canonicalRequirements.joined(separator: "\n"), options.indexUrl,
            options.extraIndexUrls.joined(separator: " "), options.findLinks.joined(separator: " "), "\(options.offline)",
            "\(options.wheelsOnly)",
        ].joined(separator: "\u{1}")
    }
}

public enum RequestValidation {
    public static let maxPackages = 500
    public static let maxRequirementLength = 1_000
    public static let maxSkillIDLength = 128
    public static let maxBatch = 100

    public static func ecosystem(_ type: PackageType) throws(RPCError) -> Ecosystem {
        switch type {
        case .python, .unspecified: .python
        case .npm: .npm
        case .unrecognized(let value):
            throw RPCError(.invalidArgument, "package_type \(value) is unknown; use PACKAGE_TYPE_PYTHON or PACKAGE_TYPE_NPM")
        }
    }

    /// Skill ids name files under ATOM_HOME: letters, digits, `.`, `_`, `-`; no `/`, no `..`.
    public static func skillID(_ id: String, field: String = "skill_id") throws(RPCError) {
        if id.isEmpty { return }
        guard id.count <= maxSkillIDLength else {
            throw RPCError(.invalidArgument, "\(field) is \(id.count) characters; at most \(maxSkillIDLength)")
        }
        if let index = id.firstIndex(where: { $0 == "/" || $0 == "\\" }) {
            throw RPCError(.invalidArgument, "\(field) \"\(id)\" contains a path separator at position \(id.distance(from: id.startIndex, to: index))")
        }
        if let range = id.range(of: "..") {
            throw RPCError(.invalidArgument, "\(field) \"\(id)\" contains '..' at position \(id.distance(from: id.startIndex, to: range.lowerBound))")
        }
        if let index = id.firstIndex(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-")) }) {
            throw RPCError(.invalidArgument, "\(field) \"\(id)\" has '\(id[index])' at position \(id.distance(from: id.startIndex, to: index)); use letters, digits, '.', '_' and '-'")
        }
    }

    public static func requirements(_ packages: [String], ecosystem: Ecosystem, field: String = "packages") throws(RPCError) -> [ParsedRequirement] {
        guard !packages.isEmpty else { throw RPCError(.invalidArgument, "\(field) is empty; name at least one package") }
        guard packages.count <= maxPackages else {
            throw RPCError(.invalidArgument, "\(field) has \(packages.count) items; at most \(maxPackages)")
        }
        var parsed: [ParsedRequirement] = []
        for (index, text) in packages.enumerated() {
            guard text.count <= maxRequirementLength else {
                throw RPCError(.invalidArgument, "\(field)[\(index)] is \(text.count) characters; at most \(maxRequirementLength)")
            }
            do {
                parsed.append(try ParsedRequirement.parse(text, ecosystem: ecosystem))
            } catch {
                throw RPCError(.invalidArgument, "\(field)[\(index)] \"\(text)\": \(error.message) at position \(error.position)")
            }
        }
        return parsed
    }

    public static func install(_ request: InstallRequest, field: String = "") throws(RPCError) -> ValidatedInstall {
        let prefix = field.isEmpty ? "" : field + "."
        try skillID(request.skillId, field: prefix + "skill_id")
        guard request.agentId.count <= 256 else { throw RPCError(.invalidArgument, "\(prefix)agent_id is longer than 256 characters") }
        let ecosystem = try ecosystem(request.packageType)
        let requirements = try requirements(request.packages, ecosystem: ecosystem, field: prefix + "packages")
        let options = request.options ?? InstallOptions()
        try validate(options, field: prefix + "options")
        var limits = ResourceLimits()
        switch ResourceLimits.parseMemory(options.memoryLimit) {
        case .success(let bytes): limits.memoryBytes = bytes
        case .failure(let problem):
            throw RPCError(.invalidArgument, "\(prefix)options.memory_limit \"\(options.memoryLimit)\": \(problem.message) at position \(problem.offset)")
        }
        switch ResourceLimits.parseCPU(options.cpuLimit) {
        case .success(let cpus): limits.cpus = cpus
        case .failure(let problem):
            throw RPCError(.invalidArgument, "\(prefix)options.cpu_limit \"\(options.cpuLimit)\": \(problem.message) at position \(problem.offset)")
        }
        return ValidatedInstall(
            skillID: request.skillId, agentID: request.agentId, ecosystem: ecosystem, requirements: requirements,
            options: options, limits: limits)
    }

    public static func validate(_ options: InstallOptions, field: String) throws(RPCError) {
        for (name, url) in [("index_url", options.indexUrl)] + options.extraIndexUrls.map({ ("extra_index_urls", $0) }) where !url.isEmpty {
            guard url.hasPrefix("https://") || url.hasPrefix("http://") || url.hasPrefix("file://"), url.count <= 2_000,
                  !url.contains(where: { $0.isWhitespace })
            else { throw RPCError(.invalidArgument, "\(field).\(name) \"\(url.prefix(200))\" is not an http(s) or file URL") }
        }
        guard options.extraIndexUrls.count <= 16, options.findLinks.count <= 16 else {
            throw RPCError(.invalidArgument, "\(field): at most 16 extra index URLs and 16 find-links")
        }
        for (index, link) in options.findLinks.enumerated() {
            guard link.hasPrefix("/") || link.hasPrefix("https://") || link.hasPrefix("http://") || link.hasPrefix("file://"),
                  link.count <= 2_000, !link.contains(where: { $0.isNewline || $0 == "\0" })
            else { throw RPCError(.invalidArgument, "\(field).find_links[\(index)] \"\(link.prefix(200))\" must be an absolute path or a URL") }
        }
    }
}
