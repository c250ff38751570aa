internal import Foundation

/// Build folders at stable paths: `envs/.build-<n>`, one leased to each Python build.
///
/// uv caches what it learns about an interpreter (version, markers, install scheme, prefix) by
/// the interpreter's path, checked against the modification time of the file that path
/// resolves to. A build folder with a new name every time (`.tmp-<uuid>`) made every build's
/// `venv/bin/python` a path uv had never seen, so every build paid for uv starting that
/// interpreter to ask it (about 60 ms of CPU and more of wall time on a loaded machine, per
/// uv run). A build in `.build-<n>` reuses the answer uv stored when that slot was first used:
/// the venv written there is the same every time (same base interpreter, same `pyvenv.cfg`,
/// same layout), so the stored answer is exactly what a query would print. It is uv's own
/// rule for a virtual environment recreated at the same path (`rm -rf .venv && uv venv`); a
/// changed base interpreter changes the resolved file or its modification time, and uv asks
/// again.
///
/// A slot holds one build at a time: the lease takes an exclusive `flock` on
/// `$ATOM_HOME/installer/build-<n>.lock` (so another installer on the same home, or another
/// store in this process, takes another slot) and removes whatever a crashed build left in the
/// folder. The build renames the folder away into `envs/<id>` (or removes it on failure)
/// before the lease is released, so the next build finds the path free.
final class BuildSlots: @unchecked Sendable {
    private let envs: String
    private let locks: String
    private let lock = NSLock()
    private var leased: Set<Int> = []
    /// More slots than this at once means something leaks leases; a build fails instead.
    static let limit = 1024

    init(envs: String, locks: String) {
        self.envs = envs
        self.locks = locks
    }

    func path(of index: Int) -> String { "\(envs)/.build-\(index)" }
    func lockPath(of index: Int) -> String { "\(locks)/build-\(index).lock" }

    /// The lowest free slot, its folder absent (a crashed build's leftovers removed).
    func lease() throws -> BuildSlot {
        for index in 0..<Self.limit {
            let reserved = lock.withLock { leased.insert(index).inserted }
            guard reserved else { continue }
            let descriptor = open(lockPath(of: index), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else {
                let error = errno
                unreserve(index)
                throw InstallFailure("cannot open the build slot lock \(lockPath(of: index)): \(String(cString: strerror(error)))")
            }
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                // Another installer (or store) on the same home builds in this slot.
                close(descriptor)
                unreserve(index)
                continue
            }
            let slot = BuildSlot(index: index, path: path(of: index), descriptor: descriptor, pool: self)
            if FileManager.default.fileExists(atPath: slot.path) {
                do {
                    try FileManager.default.removeItem(atPath: slot.path)
                } catch {
                    slot.release()
                    throw InstallFailure("cannot clear the build slot \(slot.path): \(error.localizedDescription)")
                }
            }
            return slot
        }
        throw InstallFailure("all \(Self.limit) build slots are in use")
    }

    /// Whether a slot's lock is free right now (no build holds it): for the start-up clean-up.
    func isIdle(_ index: Int) -> Bool {
        let descriptor = open(lockPath(of: index), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { return false }
        flock(descriptor, LOCK_UN)
        return true
    }

    fileprivate func unreserve(_ index: Int) {
        _ = lock.withLock { leased.remove(index) }
    }
}

/// One leased build folder. `release` (once the folder has been renamed away or removed) gives
/// the slot back; it is idempotent.
final class BuildSlot: @unchecked Sendable {
    let index: Int
    let path: String
    private let lock = NSLock()
    private var descriptor: Int32
    private let pool: BuildSlots

    fileprivate init(index: Int, path: String, descriptor: Int32, pool: BuildSlots) {
        self.index = index
        self.path = path
        self.descriptor = descriptor
        self.pool = pool
    }

    func release() {
        let held: Int32 = lock.withLock {
            defer { descriptor = -1 }
            return descriptor
        }
        guard held >= 0 else { return }
        close(held)
        pool.unreserve(index)
    }

    deinit { release() }
}
