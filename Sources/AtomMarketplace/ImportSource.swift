public import AtomProto
internal import AtomSkillFormat
internal import Foundation

/// Reads what an import names: a folder of skill folders, one skill folder, or a JSON Lines
/// bundle. Every item is checked on its own: a bad one becomes an error, never an abort.
public enum ImportSource {
    /// A bundle line's fields beyond the manifest's.
    static let bundleExtras: Set<String> = ["source", "downloads"]
    /// The most lines an inline import may carry (bigger bundles go by path or in several calls).
    public static let maxInlineLines = 100_000
    /// The longest `source` a bundle line may give (a path or a URL).
    public static let maxSourceBytes = 4_096

    public enum Item: Sendable {
        case valid(CatalogItem)
        case invalid(ImportItemError)
    }

    /// The items at `path` (on this host). Throws for a path that does not exist or cannot be read.
    public static func items(at path: String) throws(ImportFailure) -> [Item] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ImportFailure.notFound("\(path) does not exist (the path is read on the marketplace service's host)")
        }
        if !isDirectory.boolValue {
            guard let data = FileManager.default.contents(atPath: path) else { throw ImportFailure.unreadable("cannot read \(path)") }
            return JSONLines.lines(of: data).map { bundleLine($0, label: path) }
        }
        let folder = URL(fileURLWithPath: path)
        if SkillManifest.fileNames.contains(where: { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }) {
            return [skillFolder(folder)]
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw ImportFailure.unreadable("cannot list \(path): \(error.localizedDescription)")
        }
        var items: [Item] = []
        for name in names where !name.hasPrefix(".") {
            let child = folder.appendingPathComponent(name)
            var childIsDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: child.path, isDirectory: &childIsDirectory), childIsDirectory.boolValue else { continue }
            items.append(skillFolder(child))
        }
        if items.isEmpty {
            throw ImportFailure.notFound("\(path) holds no skill folders and no \(SkillManifest.fileNames[0]); give a skill folder, a folder of them, or a .jsonl bundle")
        }
        return items
    }

    /// `items(at:)`, with a bundle's lines parsed and checked on every core.
    public static func load(at path: String) async throws -> [Item] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return try items(at: path)
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw ImportFailure.unreadable("cannot read \(path)") }
        let lines = JSONLines.lines(of: data)
        let parts = max(1, min(ProcessInfo.processInfo.activeProcessorCount, lines.count / 1_000))
        let size = (lines.count + parts - 1) / max(parts, 1)
        return await withTaskGroup(of: (Int, [Item]).self) { group in
            for part in 0..<parts {
                let slice = Array(lines[min(part * size, lines.count)..<min((part + 1) * size, lines.count)])
                group.addTask { (part, slice.map { bundleLine($0, label: path) }) }
            }
            var results = [[Item]](repeating: [], count: parts)
            for await (part, items) in group { results[part] = items }
            return results.flatMap { $0 }
        }
    }

    static func skillFolder(_ url: URL) -> Item {
        do {
            let folder = try SkillFolder.load(url)
            return .valid(item(folder.manifest, contentHash: folder.contentHash, source: folder.url.path, label: folder.url.path, downloads: nil))
        } catch {
            return .invalid(ImportItemError(item: url.path, skillId: "", field: error.field, message: error.message))
        }
    }

    /// The items of a JSON Lines bundle: one manifest object a line (blank lines skipped), with
    /// optional `source` (where the skill lives) and `downloads` (a mirrored catalog's count).
    public static func bundle(_ text: String, label: String) -> [Item] {
        JSONLines.lines(of: text).map { bundleLine($0, label: label) }
    }

    /// A line of a bundle named `label`, as an item (`label:number`).
    static func bundleLine(_ line: JSONLines.Line, label: String) -> Item {
        switch line.text {
        case .success(let text): bundleLine(text, label: "\(label):\(line.number)")
        case .failure(let problem): .invalid(ImportItemError(item: "\(label):\(line.number)", skillId: "", field: "", message: problem.description))
        }
    }

    public static func bundleLine(_ line: String, label: String) -> Item {
        func failure(_ field: String, _ message: String, id: String = "") -> Item {
            .invalid(ImportItemError(item: label, skillId: id, field: field, message: message))
        }
        let document: JSONValue
        do {
            document = try JSONParser.parse(line)
        } catch {
            return failure("", "invalid JSON: \(error)")
        }
        guard case .object(var fields) = document else {
            return failure("", "a bundle line must be a JSON object (a skill manifest), not \(document.typeNameWithArticle)")
        }
        let id: String = if case .string(let name)? = fields["name"] { name } else { "" }
        var source = label
        if let value = fields.removeValue(forKey: "source") {
            guard case .string(let text) = value, !text.isEmpty else { return failure("source", "must be a non-empty string", id: id) }
            guard text.utf8.count <= maxSourceBytes else {
                return failure("source", "is \(text.utf8.count) bytes; at most \(maxSourceBytes)", id: id)
            }
            source = text
        }
        var downloads: UInt64?
        if let value = fields.removeValue(forKey: "downloads") {
            guard case .number(let number) = value, number >= 0, number < 1e15, number.rounded() == number else {
                return failure("downloads", "must be a whole number of 0 or more", id: id)
            }
            downloads = UInt64(number)
        }
        let manifest: SkillManifest
        do {
            manifest = try SkillManifest.parse(.object(fields))
        } catch {
            return failure(error.field, error.message, id: id)
        }
        let digest = SHA256Hex.of(document.jsonText)
        return .valid(item(manifest, contentHash: digest, source: source, label: label, downloads: downloads))
    }

    static func item(_ manifest: SkillManifest, contentHash: String, source: String, label: String, downloads: UInt64?) -> CatalogItem {
        let record = CatalogSkill(
            id: manifest.name, name: manifest.name, description: manifest.description, category: manifest.category,
            type: manifest.runtime.rawValue, author: manifest.author, version: manifest.version, tags: manifest.tags,
            packages: manifest.packages, source: source, contentHash: contentHash, entry: manifest.entry,
            function: manifest.function, network: manifest.permissions.network)
        // The manifest parser accepted the version, so it parses.
        return CatalogItem(record: record, version: SemanticVersion(manifest.version)!, label: label, downloads: downloads)
    }
}

/// An import that cannot start at all (as opposed to a bad item).
public enum ImportFailure: Error, Sendable {
    case notFound(String)
    case unreadable(String)
    case invalid(String)

    public var message: String {
        switch self {
        case .notFound(let message), .unreadable(let message), .invalid(let message): message
        }
    }
}
