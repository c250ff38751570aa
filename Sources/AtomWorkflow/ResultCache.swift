internal import AtomSkillFormat
internal import Synchronization

/// Step results by key (a hash of the skill's identity, its resolved inputs and the step's
/// spec), each for its TTL. Bounded: when full, expired entries go first, then the entries
/// closest to expiry.
public final class ResultCache: Sendable {
    struct Entry {
        let outputs: String
        let expires: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    public let maxEntries: Int
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(maxEntries: Int = 10_000, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.maxEntries = maxEntries
        self.now = now
    }

    /// The key of a step's result.
    public static func key(identity: String, skill: String, inputs: String, spec: String) -> String {
        SHA256Hex.of("atom-workflow-cache-v1\u{0}\(identity)\u{0}\(skill)\u{0}\(inputs)\u{0}\(spec)")
    }

    /// The outputs stored under `key`, unless expired.
    public func lookup(_ key: String) -> String? {
        let now = self.now()
        return entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            if entry.expires <= now {
                entries[key] = nil
                return nil
            }
            return entry.outputs
        }
    }

    public func store(_ key: String, outputs: String, ttl: Duration) {
        guard maxEntries > 0, ttl > .zero else { return }
        let now = self.now()
        entries.withLock { entries in
            if entries.count >= maxEntries && entries[key] == nil {
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= maxEntries {
                    // Still full: drop the quarter closest to expiry.
                    let drop = entries.sorted { $0.value.expires < $1.value.expires }.prefix(max(1, maxEntries / 4))
                    for (dropped, _) in drop { entries[dropped] = nil }
                }
            }
            entries[key] = Entry(outputs: outputs, expires: now + ttl)
        }
    }

    public var count: Int { entries.withLock { $0.count } }

    public func removeAll() { entries.withLock { $0.removeAll() } }
}
