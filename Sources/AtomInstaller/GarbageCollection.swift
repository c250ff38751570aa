public import AtomProto
internal import Foundation

extension EnvironmentStore {
    /// How recently served an environment must be to count as in use (never removed).
    static let inUseWindow: Duration = .seconds(60)

    /// Notes that `id` was served: in memory always, on disk (the ready marker's mtime, which
    /// survives restarts) at most once a minute so a cache hit stays a lookup.
    func noteUse(_ id: String) {
        let now = ContinuousClock.now
        if let last = lastTouched[id], now - last < Self.inUseWindow {
            lastServed[id] = now
            return
        }
        lastServed[id] = now
        lastTouched[id] = now
        try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: "\(configuration.envsDirectory)/\(id)/.atom-ready")
    }

    func isInUse(_ id: String) -> Bool {
        if inFlight[id] != nil { return true }
        if let served = lastServed[id], ContinuousClock.now - served < Self.inUseWindow { return true }
        return false
    }

    /// Removes environments unused for `unusedFor`, then the least recently used while the
    /// store is larger than `maxBytes`. Environments in use are kept.
    public func collectGarbage(unusedFor: Duration?, maxBytes: UInt64?, dryRun: Bool) -> CollectGarbageResponse {
        let fm = FileManager.default
        struct Entry {
            let id: String
            let lastUsed: Date
            let size: UInt64
        }
        var entries: [Entry] = []
        for name in (try? fm.contentsOfDirectory(atPath: configuration.envsDirectory)) ?? [] where !name.hasPrefix(".") {
            let path = "\(configuration.envsDirectory)/\(name)"
            guard let attributes = try? fm.attributesOfItem(atPath: "\(path)/.atom-ready"),
                  let modified = attributes[.modificationDate] as? Date
            else { continue }
            entries.append(Entry(id: name, lastUsed: modified, size: Self.size(of: path)))
        }
        entries.sort { $0.lastUsed < $1.lastUsed }
        var removed: [String] = []
        var freed: UInt64 = 0
        var total = entries.reduce(0) { $0 + $1.size }
        for entry in entries where !isInUse(entry.id) {
            let old = unusedFor.map { Date().timeIntervalSince(entry.lastUsed) > Double($0 / .seconds(1)) } ?? false
            let over = maxBytes.map { total > $0 } ?? false
            guard old || over else { continue }
            if !dryRun { remove(entry.id) }
            removed.append(entry.id)
            freed += entry.size
            total -= entry.size
        }
        return CollectGarbageResponse(removed: removed, freedBytes: freed, kept: UInt32(entries.count - removed.count))
    }

    /// Invalidates first (the marker), then moves aside and deletes: a reader never sees a
    /// half-deleted environment that still looks valid.
    func remove(_ id: String) {
        let fm = FileManager.default
        let path = "\(configuration.envsDirectory)/\(id)"
        try? fm.removeItem(atPath: "\(path)/.atom-ready")
        let trash = "\(configuration.envsDirectory)/.trash-\(UUID().uuidString)"
        if rename(path, trash) == 0 { try? fm.removeItem(atPath: trash) } else { try? fm.removeItem(atPath: path) }
        hits = hits.filter { $0.value.id != id }
        lastServed[id] = nil
        lastTouched[id] = nil
    }

    /// After a build: evicts least recently used environments while over ENV_CACHE_MAX_BYTES.
    func enforceSizeCap() {
        guard let cap = configuration.maxBytes else { return }
        _ = collectGarbage(unusedFor: nil, maxBytes: cap, dryRun: false)
    }
}
