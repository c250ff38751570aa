internal import Foundation

/// Path containment: a skill folder must resolve, symbolic links and all, inside one of the
/// configured skills directories.
struct SkillPaths: Sendable {
    let directories: [String]

    init(_ directories: [String]) {
        self.directories = directories
    }

    /// The configured directories that exist, resolved (read at every use: a directory may
    /// appear after start).
    var roots: [String] {
        directories.compactMap { directory in
            guard let resolved = realpath(directory, nil) else { return nil }
            defer { free(resolved) }
            return String(cString: resolved)
        }
    }

    /// The real path of the skill folder for a LoadSkill request, or PERMISSION_DENIED /
    /// NOT_FOUND with what to do about it.
    func resolve(name: String, path: String) throws(LoaderError) -> String {
        if path.isEmpty {
            guard !name.isEmpty else { throw LoaderError(.invalidArgument, "give a skill name or a path") }
            guard !name.contains("/"), name != "..", name != "." else {
                throw LoaderError(.invalidArgument, "name \"\(name)\" is not a skill name")
            }
            for root in self.roots where FileManager.default.fileExists(atPath: "\(root)/\(name)") {
                return try contained("\(root)/\(name)", as: name)
            }
            throw LoaderError(.notFound, "no skill folder named \(name) in the skills directories (\(describeRoots)); give its path")
        }
        if path.split(separator: "/").contains("..") {
            throw LoaderError(.permissionDenied, "path \(path) contains \"..\"; give a path inside the skills directories (\(describeRoots))", reason: "PATH_OUTSIDE_SKILLS_DIRS")
        }
        if path.hasPrefix("/") { return try contained(path, as: path) }
        for root in roots where FileManager.default.fileExists(atPath: "\(root)/\(path)") {
            return try contained("\(root)/\(path)", as: path)
        }
        throw LoaderError(.notFound, "no skill folder \(path) in the skills directories (\(describeRoots)); give an absolute path")
    }

    private func contained(_ candidate: String, as given: String) throws(LoaderError) -> String {
        let roots = self.roots
        guard let pointer = realpath(candidate, nil) else {
            throw LoaderError(.notFound, "no skill folder at \(given)")
        }
        let resolved = String(cString: pointer)
        free(pointer)
        guard roots.contains(where: { resolved == $0 || resolved.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) else {
            let via = resolved == candidate ? "" : " (it resolves to \(resolved))"
            throw LoaderError(
                .permissionDenied, "\(given) is outside the skills directories\(via); allowed: \(describeRoots) (SKILLS_DIRS)",
                reason: "PATH_OUTSIDE_SKILLS_DIRS")
        }
        return resolved
    }

    var describeRoots: String { roots.isEmpty ? "none exist" : roots.joined(separator: ", ") }
}
