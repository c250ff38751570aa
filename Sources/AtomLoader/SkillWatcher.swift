internal import Foundation
internal import Synchronization
internal import AtomSkillFormat

/// Watches skill folders with inotify on a thread of its own and reports a folder once its
/// files have been quiet for the debounce interval. Catches what editors do: writes
/// (IN_CLOSE_WRITE, IN_MODIFY), saves by rename-over (IN_MOVED_TO), new and deleted files
/// (IN_CREATE, IN_DELETE, IN_MOVED_FROM); new subfolders are watched as they appear.
///
/// It also watches the folders that hold skill folders (the skills directories, and the parent
/// of every watched skill folder) for folders coming and going: a skill folder renamed away,
/// deleted, moved in or replaced by a rename is reported as a *structural* change of its path
/// (the loader unloads, reloads or loads it again).
final class SkillWatcher: Sendable {
    private let fd: Int32
    private let wake: (read: Int32, write: Int32)
    private let debounce: Duration
    private let onChange: @Sendable (String, Bool) -> Void
    private let state = Mutex<State>(State())

    private enum Watch {
        /// A directory of a skill folder's tree: (skill folder it belongs to, the directory).
        case tree(root: String, directory: String)
        /// A folder holding skill folders: only its subfolders coming and going matter.
        case parent(String)
    }

    private struct State {
        var watches: [Int32: Watch] = [:]
        /// Skill folders watched (by their real path).
        var roots: Set<String> = []
        /// Folders holding skill folders, watched for subfolders coming and going.
        var parents: Set<String> = []
        var stopped = false
    }

    private static let mask = UInt32(IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
    private static let parentMask = UInt32(IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR)

    /// - Parameter onChange: called on the watcher's thread with a skill folder's path, and
    ///   whether the folder itself came, went or was replaced (rather than only its files).
    init(debounce: Duration, onChange: @escaping @Sendable (String, Bool) -> Void) throws {
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw LoaderError(.internal, "inotify_init1 failed: errno \(errno) (fs.inotify.max_user_instances?)") }
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw LoaderError(.internal, "cannot create a pipe: errno \(errno)") }
        for descriptor in pipeFDs { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        wake = (pipeFDs[0], pipeFDs[1])
        self.debounce = debounce
        self.onChange = onChange
        let thread = Thread(named: "atom-inotify") { [self] in run() }
        thread.start()
    }

    /// Watches a skill folder and its subfolders (not caches such as `__pycache__`).
    func watch(_ root: String) {
        let fresh = state.withLock { $0.roots.insert(root).inserted }
        guard fresh else { return }
        addTree(root: root, directory: root)
        watchParent((root as NSString).deletingLastPathComponent)
    }

    func unwatch(_ root: String) {
        state.withLock { state in
            state.roots.remove(root)
            for (wd, entry) in state.watches {
                if case .tree(root, _) = entry {
                    inotify_rm_watch(fd, wd)
                    state.watches[wd] = nil
                }
            }
        }
    }

    /// Watches a skill folder again from scratch: after it was replaced by another folder (a
    /// rename over it), the old watches follow the old folder.
    func rewatch(_ root: String) {
        unwatch(root)
        watch(root)
    }

    /// Watches a folder that holds skill folders (a skills directory) for folders coming and going.
    func watchParent(_ directory: String) {
        guard !directory.isEmpty, state.withLock({ $0.parents.insert(directory).inserted }) else { return }
        let wd = inotify_add_watch(fd, directory, Self.parentMask)
        guard wd >= 0 else {
            state.withLock { _ = $0.parents.remove(directory) }
            return
        }
        state.withLock { state in
            // The same directory may already be watched as part of a skill's tree: keep that
            // watch (inotify gives one descriptor per directory) and add the parent role to it.
            if state.watches[wd] == nil { state.watches[wd] = .parent(directory) }
        }
    }

    func stop() {
        state.withLock { $0.stopped = true }
        var byte: UInt8 = 1
        _ = Foundation.write(wake.write, &byte, 1)
    }

    private func addTree(root: String, directory: String) {
        let wd = inotify_add_watch(fd, directory, Self.mask)
        guard wd >= 0 else { return }
        state.withLock { $0.watches[wd] = .tree(root: root, directory: directory) }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where !name.hasPrefix(".") && !SkillFolder.ignoredNames.contains(name) {
            var isDirectory: ObjCBool = false
            let path = "\(directory)/\(name)"
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                addTree(root: root, directory: path)
            }
        }
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        /// Skill folder -> when it is due (the debounce restarts at every event), and whether
        /// the folder itself came, went or was replaced.
        var due: [String: (at: ContinuousClock.Instant, structural: Bool)] = [:]
        while !state.withLock({ $0.stopped }) {
            var timeout: Int32 = -1
            if let next = due.values.map(\.at).min() {
                let left = next - ContinuousClock.now
                timeout = max(0, Int32((left / .milliseconds(1)).rounded(.up)))
            }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, timeout)
            if ready < 0 && errno != EINTR { break }
            if fds[0].revents & Int16(POLLIN) != 0 {
                while true {
                    let count = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress!, $0.count) }
                    guard count > 0 else { break }
                    for (path, structural) in parse(buffer, count: count) {
                        due[path] = (ContinuousClock.now + debounce, structural || due[path]?.structural == true)
                    }
                }
            }
            let now = ContinuousClock.now
            // Folders that went away first, so that a skill moved from one folder to another
            // is seen leaving before it is seen arriving.
            let dueNow = due.filter { $0.value.at <= now }.map { ($0.key, $0.value.structural) }
                .sorted { a, b in (FileManager.default.fileExists(atPath: a.0) ? 1 : 0, a.0) < (FileManager.default.fileExists(atPath: b.0) ? 1 : 0, b.0) }
            for (path, structural) in dueNow {
                due[path] = nil
                onChange(path, structural)
            }
        }
        close(fd)
        close(wake.read)
        close(wake.write)
    }

    /// The skill folders touched by a batch of events (and whether the folder itself came, went
    /// or was replaced); watches new subfolders.
    private func parse(_ buffer: [UInt8], count: Int) -> [String: Bool] {
        var paths: [String: Bool] = [:]
        func touch(_ path: String, structural: Bool) { paths[path] = structural || paths[path] == true }
        var offset = 0
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= count {
            let (wd, mask, length) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, Int) in
                let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                return (event.wd, event.mask, Int(event.len))
            }
            var name = ""
            if length > 0 {
                let bytes = buffer[(offset + header)..<min(count, offset + header + length)]
                name = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            offset += header + length
            if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                // Events were lost: every folder may have changed, or gone.
                for root in state.withLock({ $0.roots }) { touch(root, structural: true) }
                continue
            }
            guard let entry = state.withLock({ $0.watches[wd] }) else { continue }
            if mask & UInt32(IN_IGNORED) != 0 {
                state.withLock { state in
                    _ = state.watches.removeValue(forKey: wd)
                    if case .parent(let directory) = entry { state.parents.remove(directory) }
                }
                continue
            }
            let isDirectory = mask & UInt32(IN_ISDIR) != 0
            let comesOrGoes = mask & UInt32(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) != 0
            switch entry {
            case .parent(let directory):
                // A folder appeared in or left a skills directory.
                if isDirectory && comesOrGoes && !name.isEmpty && !name.hasPrefix(".") {
                    touch("\(directory)/\(name)", structural: true)
                }
            case .tree(let root, let directory):
                if mask & UInt32(IN_MOVE_SELF | IN_DELETE_SELF) != 0 {
                    // The directory itself moved or went: the skill folder, or one of its subfolders.
                    touch(root, structural: directory == root)
                    continue
                }
                // Caches and the interpreter's own files are not the skill's content.
                if name == "__pycache__" || name == "node_modules" { continue }
                if isDirectory && mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 && !name.hasPrefix(".") {
                    addTree(root: root, directory: "\(directory)/\(name)")
                }
                touch(root, structural: false)
            }
        }
        return paths
    }
}
