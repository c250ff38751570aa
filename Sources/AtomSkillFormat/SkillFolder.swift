public import Foundation
internal import Crypto

/// A skill on disk: its folder, its manifest, and a hash of everything in it, so a service can tell
/// new code from code it already has (reload only on change, import only a new version).
public struct SkillFolder: Sendable, Hashable {
    /// The folder, with symbolic links resolved.
    public var url: URL
    public var manifest: SkillManifest
    /// The manifest file's name (`skill.yaml`, ...).
    public var manifestFileName: String
    /// SHA-256 (hex) over every file's relative path and bytes, in path order.
    public var contentHash: String
    /// Relative paths of the files the hash covers, sorted.
    public var files: [String]

    /// The entry file's location.
    public var entryURL: URL { url.appendingPathComponent(manifest.entry) }

    /// Folders and files that never belong to a skill's content (caches, dependencies, VCS data).
    public static let ignoredNames: Set<String> = ["__pycache__", "node_modules", ".git", ".venv", ".DS_Store"]

    /// The most a skill folder may hold: skills are small code, not data sets.
    public static let maxFiles = 2_000
    public static let maxBytes = 64 * 1_048_576

    /// Loads and checks the skill in `folder`: the manifest parses, the entry file exists inside
    /// the folder, and no file escapes it through a symbolic link.
    public static func load(_ folder: URL) throws(SkillFormatError) -> SkillFolder {
        let fileManager = FileManager.default
        let resolved = folder.standardizedFileURL.resolvingSymlinksInPath()
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: resolved.path, isDirectory: &isDirectory) else {
            throw SkillFormatError(.notFound, "no skill folder at \(folder.path)")
        }
        guard isDirectory.boolValue else {
            throw SkillFormatError(.notFound, "\(folder.path) is a file; a skill is a folder holding \(SkillManifest.fileNames[0])")
        }
        guard let fileName = SkillManifest.fileNames.first(where: { fileManager.fileExists(atPath: resolved.appendingPathComponent($0).path) }) else {
            throw SkillFormatError(.notFound, "\(folder.path) holds no \(SkillManifest.fileNames.joined(separator: ", ")); it is not a skill folder")
        }
        let manifestData: Data
        do {
            manifestData = try Data(contentsOf: resolved.appendingPathComponent(fileName))
        } catch {
            throw SkillFormatError(.unreadable, "cannot read \(fileName): \(error.localizedDescription)")
        }
        guard let text = String(data: manifestData, encoding: .utf8) else {
            throw SkillFormatError(.unreadable, "\(fileName) is not UTF-8 text")
        }
        let manifest: SkillManifest
        do {
            manifest = try SkillManifest.parse(text, json: fileName.hasSuffix(".json"))
        } catch {
            throw SkillFormatError(error.code, field: error.field, "\(fileName): \(error.message)")
        }

        let (files, hash) = try contentHash(of: resolved)
        let entry = resolved.appendingPathComponent(manifest.entry).standardizedFileURL
        let entryResolved = entry.resolvingSymlinksInPath()
        guard isInside(entryResolved, resolved) else {
            throw SkillFormatError(.invalidField, field: "entry", "\"\(manifest.entry)\" resolves outside the skill folder")
        }
        var entryIsDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: entryResolved.path, isDirectory: &entryIsDirectory), !entryIsDirectory.boolValue else {
            throw SkillFormatError(.invalidField, field: "entry", "the entry file \"\(manifest.entry)\" does not exist in \(folder.path)")
        }
        return SkillFolder(url: resolved, manifest: manifest, manifestFileName: fileName, contentHash: hash, files: files)
    }

    /// Whether `url` is `folder` or lies below it (both already resolved).
    public static func isInside(_ url: URL, _ folder: URL) -> Bool {
        let path = url.standardizedFileURL.path
        let base = folder.standardizedFileURL.path
        return path == base || path.hasPrefix(base.hasSuffix("/") ? base : base + "/")
    }

    /// Hashes every regular file below `folder` (skipping `ignoredNames` and dot files). A symbolic
    /// link is hashed as its target text if it stays inside, and is an error if it leads out.
    public static func contentHash(of folder: URL) throws(SkillFormatError) -> ([String], String) {
        let fileManager = FileManager.default
        var files: [String] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let directory = relative.isEmpty ? folder : folder.appendingPathComponent(relative)
            let names: [String]
            do {
                names = try fileManager.contentsOfDirectory(atPath: directory.path)
            } catch {
                throw SkillFormatError(.unreadable, "cannot list \(directory.path): \(error.localizedDescription)")
            }
            for name in names where !name.hasPrefix(".") && !ignoredNames.contains(name) {
                let path = relative.isEmpty ? name : relative + "/" + name
                let url = folder.appendingPathComponent(path)
                let attributes = try? fileManager.attributesOfItem(atPath: url.path)
                let type = attributes?[.type] as? FileAttributeType
                if type == .typeSymbolicLink {
                    guard isInside(url.resolvingSymlinksInPath(), folder) else {
                        throw SkillFormatError(.invalidField, "\(path) is a symbolic link that leads outside the skill folder")
                    }
                    files.append(path)
                } else if type == .typeDirectory {
                    pending.append(path)
                } else if type == .typeRegular {
                    files.append(path)
                }
                guard files.count <= maxFiles else {
                    throw SkillFormatError(.invalidField, "the skill folder holds more than \(maxFiles) files")
                }
            }
        }
        files.sort()
        var hasher = Crypto.SHA256()
        var total = 0
        for path in files {
            let url = folder.appendingPathComponent(path)
            hasher.update(data: Data(path.utf8))
            hasher.update(data: Data([0]))
            if let target = try? fileManager.destinationOfSymbolicLink(atPath: url.path) {
                hasher.update(data: Data("link:\(target)".utf8))
            } else {
                let bytes: Data
                do {
                    bytes = try Data(contentsOf: url)
                } catch {
                    throw SkillFormatError(.unreadable, "cannot read \(path): \(error.localizedDescription)")
                }
                total += bytes.count
                guard total <= maxBytes else {
                    throw SkillFormatError(.invalidField, "the skill folder holds more than \(maxBytes / 1_048_576) MiB")
                }
                hasher.update(data: Data(String(bytes.count).utf8))
                hasher.update(data: Data([0]))
                hasher.update(data: bytes)
            }
        }
        let digest = hasher.finalize()
        return (files, SHA256Hex.hex(digest))
    }
}
