internal import Synchronization

/// Search results, kept encoded (a hit is one lookup and no encoding), by every parameter of the
/// request, for `ttl`, and never across a write: every
/// import, update, rating or download bumps the generation, and an entry of an older generation
/// is a miss. A search that raced a write stores its result under the generation it started
/// with, so it is never served after that write.
public final class SearchCache: Sendable {
    public struct Key: Hashable, Sendable {
        let query: String
        let category: String
        let type: String
        let tags: [String]
        let author: String
        let sort: Int32
        let page: UInt32
        let pageSize: UInt32
    }

    struct Entry {
        /// The response's protobuf encoding, with `cached` and `service_ns` unset.
        let response: [UInt8]
        let generation: UInt64
        let expires: ContinuousClock.Instant
    }

    struct State {
        var entries: [Key: Entry] = [:]
        var generation: UInt64 = 0
    }

    /// Zero disables the cache.
    public let ttl: Duration
    /// When full, the cache starts over (searches are cheap to redo; memory stays bounded).
    public let capacity: Int
    private let state = Mutex(State())

    public init(ttl: Duration, capacity: Int = 10_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    public var generation: UInt64 { state.withLock { $0.generation } }

    public func lookup(_ key: Key) -> [UInt8]? {
        guard ttl > .zero else { return nil }
        let now = ContinuousClock.now
        return state.withLock { state in
            guard let entry = state.entries[key] else { return nil }
            guard entry.generation == state.generation, entry.expires > now else {
                state.entries[key] = nil
                return nil
            }
            return entry.response
        }
    }

    public func store(_ key: Key, _ response: [UInt8], generation: UInt64) {
        guard ttl > .zero else { return }
        let expires = ContinuousClock.now + ttl
        state.withLock { state in
            guard generation == state.generation else { return }
            if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[key] = Entry(response: response, generation: generation, expires: expires)
        }
    }

    /// Called after every write has reached the index.
    public func invalidate() {
        state.withLock { state in
            state.generation &+= 1
            state.entries.removeAll(keepingCapacity: true)
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }
}
