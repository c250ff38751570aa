#if canImport(Glibc)
import Glibc
#endif
internal import Foundation

/// What loaders that were killed left in a state folder (their hosts died with them). Several
/// loader instances may share `ATOM_HOME`, so only the entries of loaders that are gone go: each
/// entry names the loader's pid.
enum LoaderLeftovers {
    /// Removes the entries of `directory` whose loader (`pid(name)`) is gone or is this process
    /// (a pid reused from a loader that is gone; this one has made nothing yet).
    static func remove(in directory: String, pid: (String) -> Int32?) {
        let fileManager = FileManager.default
        for name in (try? fileManager.contentsOfDirectory(atPath: directory)) ?? [] {
            guard let owner = pid(name) else { continue }
            if owner == getpid() || kill(owner, 0) != 0 && errno == ESRCH {
                try? fileManager.removeItem(atPath: "\(directory)/\(name)")
            }
        }
    }

    /// The loader's pid in a host's scratch folder or log name, `host-<pid>-<id>[.log]`.
    static func hostEntryPID(_ name: String) -> Int32? {
        let parts = name.split(separator: "-")
        guard parts.count >= 3, parts[0] == "host" else { return nil }
        return Int32(parts[1])
    }
}
