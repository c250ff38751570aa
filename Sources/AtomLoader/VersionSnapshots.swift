#if canImport(Glibc)
import Glibc
#endif
internal import AtomSkillFormat
internal import Foundation

/// The files each loaded version imports from: a copy of its skill folder, taken when the version
/// is prepared and named by its content hash (`$ATOM_HOME/loader/versions/<pid>/<hash>`).
///
/// Why: a host that does not hold a version yet (a second host started for calls in parallel, one
/// that replaced a crashed host) imports it on its first call. Imported from the skill folder, it
/// would read whatever the folder holds by then: after a save that does not import, the version
/// that "keeps serving" would fail on that host, and after a save that does, a host would run new
/// code under the old version's name. From its snapshot, every host runs exactly the files the
/// version was hashed from.
struct VersionSnapshots: Sendable {
    let root: String

    /// Makes this loader's own folder below `parent` (one per process: several loader
    /// instances may share `ATOM_HOME`), and removes the folders of loaders that are gone.
    init(parent: String) {
        let fileManager = FileManager.default
        try? fileManager.createDirectory(atPath: parent, withIntermediateDirectories: true)
        // Its own pid's folder too: one left by a loader that is gone and had this pid.
        LoaderLeftovers.remove(in: parent) { Int32($0) }
        root = "\(parent)/\(getpid())"
        try? fileManager.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    /// The snapshot of `folder`, made if it does not exist yet. Its hash is that of the copy:
    /// equal to `folder.contentHash` unless a file changed while it was copied (then a hot reload
    /// follows, and converges).
    func snapshot(of folder: SkillFolder) throws -> SkillFolder {
        let fileManager = FileManager.default
        let existing = "\(root)/\(folder.contentHash)"
        if fileManager.fileExists(atPath: existing) {
            // Content-addressed and made by one rename: what is there is what the name says.
            return relocated(folder, to: existing)
        }
        let temporary = "\(root)/.tmp-\(UUID().uuidString)"
        do {
            try copyFiles(of: folder, to: temporary)
            let (_, hash) = try SkillFolder.contentHash(of: URL(fileURLWithPath: temporary))
            let final = "\(root)/\(hash)"
            if fileManager.fileExists(atPath: final) {
                try? fileManager.removeItem(atPath: temporary)
            } else {
                try fileManager.moveItem(atPath: temporary, toPath: final)
            }
            // Copied what was hashed (the usual case): the folder's manifest holds.
            return hash == folder.contentHash ? relocated(folder, to: final) : try SkillFolder.load(URL(fileURLWithPath: final))
        } catch {
            try? fileManager.removeItem(atPath: temporary)
            throw error
        }
    }

    private func relocated(_ folder: SkillFolder, to path: String) -> SkillFolder {
        var copy = folder
        copy.url = URL(fileURLWithPath: path)
        return copy
    }

    /// Removes the snapshot of a version no loaded skill uses any more.
    func remove(hash: String) {
        guard !hash.isEmpty, !hash.contains("/") else { return }
        try? FileManager.default.removeItem(atPath: "\(root)/\(hash)")
    }

    /// The bytes of one file, with plain reads and writes: Foundation's `copyItem` also copies
    /// attributes and `Data.write` syncs to disk, each several times the cost of the copy. A
    /// snapshot needs neither: it is rebuilt from the skill folder after a crash.
    private static func copyBytes(from source: String, to target: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: source]) }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: target]) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count == 0 { return }
            if count < 0 {
                if errno == EINTR { continue }
                throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: source])
            }
            var written = 0
            while written < count {
                let result = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, count - written) }
                if result < 0 {
                    if errno == EINTR { continue }
                    throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: target])
                }
                written += result
            }
        }
    }

    private func copyFiles(of folder: SkillFolder, to destination: String) throws {
        let fileManager = FileManager.default
        let source = folder.url.path
        try fileManager.createDirectory(atPath: destination, withIntermediateDirectories: true)
        for path in folder.files {
            let target = "\(destination)/\(path)"
            try fileManager.createDirectory(
                atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if let link = try? fileManager.destinationOfSymbolicLink(atPath: "\(source)/\(path)") {
                // Hashed as its target text, and checked to stay inside: kept as a link.
                try fileManager.createSymbolicLink(atPath: target, withDestinationPath: link)
            } else {
                try Self.copyBytes(from: "\(source)/\(path)", to: target)
            }
        }
        // Packages vendored in the folder are not part of the skill's hash (SkillFolder skips
        // node_modules): the snapshot reaches the folder's own, as the skill did before.
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: "\(source)/node_modules", isDirectory: &isDirectory), isDirectory.boolValue {
            try fileManager.createSymbolicLink(atPath: "\(destination)/node_modules", withDestinationPath: "\(source)/node_modules")
        }
    }
}
