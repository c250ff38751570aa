internal import Foundation
internal import Synchronization
internal import AtomSkillFormat

/// Watches skill folders with inotify on a thread of its own and reports a folder once its
/// files have been quiet for the debounce interval. Catches what editors do: writes
/// (IN_CLOSE_WRITE, IN_MODIFY), saves by rename-over (IN_MOVED_TO), new and deleted files
/// (IN_CREATE, IN_DELETE, IN_MOVED_FROM); new subfolders are watched as they appear.
final class SkillWatcher: Sendable {
    private let fd: Int32
    private let wake: (read: Int32, write: Int32)
    private let debounce: Duration
    private let onChange: @Sendable (String) -> Void
    private let state = Mutex<State>(State())

    private struct State {
        /// Watch descriptor -> (skill folder it belongs to, the directory it watches).
        var watches: [Int32: (root: String, directory: String)] = [:]
        /// Skill folders watched (by their real path).
        var roots: Set<String> = []
        var stopped = false
    }

    private static let mask = UInt32(IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF)

    init(debounce: Duration, onChange: @escaping @Sendable (String) -> Void) throws {
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw LoaderError(.internal, "inotify_init1 failed: errno \(errno) (fs.inotify.max_user_instances?)") }
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw LoaderError(.internal, "cannot create a pipe: errno \(errno)") }
        for descriptor in pipeFDs { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        wake = (pipeFDs[0], pipeFDs[1])
        self.debounce = debounce
        self.onChange = onChange
        let thread = Thread { [self] in run() }
        thread.name = "atom-loader-inotify"
        thread.start()
    }

    /// Watches a skill folder and its subfolders (not caches such as `__pycache__`).
    func watch(_ root: String) {
        let fresh = state.withLock { $0.roots.insert(root).inserted }
        guard fresh else { return }
        addTree(root: root, directory: root)
    }

    func unwatch(_ root: String) {
        state.withLock { state in
            state.roots.remove(root)
            for (wd, entry) in state.watches where entry.root == root {
                inotify_rm_watch(fd, wd)
                state.watches[wd] = nil
            }
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
        state.withLock { $0.watches[wd] = (root, directory) }
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
        /// Skill folder -> when it is due (the debounce restarts at every event).
        var due: [String: ContinuousClock.Instant] = [:]
        while !state.withLock({ $0.stopped }) {
            var timeout: Int32 = -1
            if let next = due.values.min() {
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
                    for root in parse(buffer, count: count) { due[root] = ContinuousClock.now + debounce }
                }
            }
            let now = ContinuousClock.now
            for (root, instant) in due where instant <= now {
                due[root] = nil
                onChange(root)
            }
        }
        close(fd)
        close(wake.read)
        close(wake.write)
    }

    /// The skill folders touched by a batch of events; watches new subfolders.
    private func parse(_ buffer: [UInt8], count: Int) -> Set<String> {
        var roots: Set<String> = []
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
                // Events were lost: every folder may have changed.
                state.withLock { roots.formUnion($0.roots) }
                continue
            }
            guard let entry = state.withLock({ $0.watches[wd] }) else { continue }
            if mask & UInt32(IN_IGNORED) != 0 {
                state.withLock { _ = $0.watches.removeValue(forKey: wd) }
                continue
            }
            // Caches and the interpreter's own files are not the skill's content.
            if name == "__pycache__" || name == "node_modules" { continue }
            if mask & UInt32(IN_ISDIR) != 0 && mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 && !name.hasPrefix(".") {
                addTree(root: entry.root, directory: "\(entry.directory)/\(name)")
            }
            roots.insert(entry.root)
        }
        return roots
    }
}
