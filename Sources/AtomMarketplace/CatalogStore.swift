public import AtomProto
public import AtomSkillFormat
internal import Foundation
internal import GRDB

/// A skill ready to be written: the catalog fields from its manifest and where it came from.
public struct CatalogItem: Sendable {
    /// The record's text fields; figures (downloads, ratings, times) come from the store.
    public var record: CatalogSkill
    public var version: SemanticVersion
    /// How errors and warnings name the item (a folder, or `file:line`).
    public var label: String
    /// Downloads carried by a bundle line (a mirrored catalog); nil keeps the catalog's.
    public var downloads: UInt64?
}

/// What one import did to one item.
enum ItemOutcome: Sendable {
    case added
    case updated
    case unchanged(warning: String?)
}

/// The catalog in SQLite (WAL, migrations): the source of truth. Every write is one transaction,
/// so a crash keeps whole transactions and never half a skill.
public final class CatalogStore: Sendable {
    let pool: DatabasePool
    public let path: String

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // WAL (set by DatabasePool) with NORMAL sync: a committed transaction survives a
            // process crash; only a power loss may lose the last ones, never corrupt the file.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        configuration.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: skills, ratings, installs") { db in
            try db.execute(sql: """
                CREATE TABLE skills (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL,
                    category TEXT NOT NULL,
                    type TEXT NOT NULL,
                    author TEXT NOT NULL,
                    version TEXT NOT NULL,
                    tags TEXT NOT NULL,
                    packages TEXT NOT NULL,
                    entry TEXT NOT NULL,
                    function TEXT NOT NULL,
                    network INTEGER NOT NULL,
                    content_hash TEXT NOT NULL,
                    source TEXT NOT NULL,
                    downloads INTEGER NOT NULL DEFAULT 0,
                    rating_sum INTEGER NOT NULL DEFAULT 0,
                    rating_count INTEGER NOT NULL DEFAULT 0,
                    created_at_ms INTEGER NOT NULL,
                    updated_at_ms INTEGER NOT NULL
                );
                CREATE TABLE ratings (
                    skill_id TEXT NOT NULL REFERENCES skills(id) ON DELETE CASCADE,
                    user_id TEXT NOT NULL,
                    stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
                    updated_at_ms INTEGER NOT NULL,
                    PRIMARY KEY (skill_id, user_id)
                ) WITHOUT ROWID;
                CREATE TABLE installs (
                    id INTEGER PRIMARY KEY,
                    skill_id TEXT NOT NULL REFERENCES skills(id) ON DELETE CASCADE,
                    agent_id TEXT NOT NULL,
                    environment_id TEXT NOT NULL,
                    at_ms INTEGER NOT NULL
                );
                CREATE INDEX installs_by_skill ON installs(skill_id);
                """)
        }
        return migrator
    }

    /// One transaction on the serial writer, then `afterCommit` with its result, still on the
    /// writer: the in-memory index applies writes in commit order.
    private func serialWrite<T: Sendable>(
        afterCommit: @escaping @Sendable (T) -> Void, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            afterCommit(result!)
            return result!
        }
    }

    static let columns = """
        id, name, description, category, type, author, version, tags, packages, entry, function, network,
        content_hash, source, downloads, rating_sum, rating_count, created_at_ms, updated_at_ms
        """

    /// Every skill, in insertion order.
    public func loadAll() async throws -> [CatalogSkill] {
        try await pool.read { db in
            var skills: [CatalogSkill] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT \(Self.columns) FROM skills ORDER BY rowid")
            while let row = try rows.next() { skills.append(Self.skill(row)) }
            return skills
        }
    }

    public func count() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM skills") ?? 0 }
    }

    public func skill(_ id: String) async throws -> CatalogSkill? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.columns) FROM skills WHERE id = ?", arguments: [id]).map(Self.skill)
        }
    }

    static func skill(_ row: Row) -> CatalogSkill {
        let ratingCount: Int64 = row["rating_count"]
        let ratingSum: Int64 = row["rating_sum"]
        return CatalogSkill(
            id: row["id"], name: row["name"], description: row["description"], category: row["category"], type: row["type"],
            author: row["author"], version: row["version"], tags: decodeList(row["tags"]), packages: decodeList(row["packages"]),
            ratingAverage: ratingCount > 0 ? Double(ratingSum) / Double(ratingCount) : 0, ratingCount: UInt32(clamping: ratingCount),
            downloads: UInt64(clamping: row["downloads"] as Int64), createdAtMs: UInt64(clamping: row["created_at_ms"] as Int64),
            updatedAtMs: UInt64(clamping: row["updated_at_ms"] as Int64), source: row["source"], contentHash: row["content_hash"],
            entry: row["entry"], function: row["function"], network: row["network"])
    }

    static func encodeList(_ list: [String]) -> String {
        JSONValue.array(list.map(JSONValue.string)).jsonText
    }

    static func decodeList(_ text: String) -> [String] {
        guard case .array(let values)? = try? JSONParser.parse(text, as: JSONValue.self) else { return [] }
        return values.compactMap { if case .string(let text) = $0 { text } else { nil } }
    }

    /// Writes `items` in one transaction: a new skill is added, a newer version updates its
    /// entry (keeping downloads, ratings and the creation time), the same or an older version
    /// changes nothing. Returns each item's outcome and the records as they now are.
    ///
    /// `afterCommit` runs after the commit on the store's serial writer, so the index sees writes
    /// in the order SQLite committed them.
    func importChunk(
        _ items: [CatalogItem], now: UInt64, afterCommit: @escaping @Sendable ([(ItemOutcome, CatalogSkill?)]) -> Void
    ) async throws -> [(ItemOutcome, CatalogSkill?)] {
        try await serialWrite(afterCommit: afterCommit) { db in
            let select = try db.cachedStatement(sql: "SELECT \(Self.columns) FROM skills WHERE id = ?")
            let insert = try db.cachedStatement(sql: """
                INSERT INTO skills (\(Self.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)
                """)
            let update = try db.cachedStatement(sql: """
                UPDATE skills SET name = ?, description = ?, category = ?, type = ?, author = ?, version = ?, tags = ?,
                    packages = ?, entry = ?, function = ?, network = ?, content_hash = ?, source = ?, downloads = ?,
                    updated_at_ms = ?
                WHERE id = ?
                """)
            var outcomes: [(ItemOutcome, CatalogSkill?)] = []
            outcomes.reserveCapacity(items.count)
            for item in items {
                let new = item.record
                let existing = try Row.fetchOne(select, arguments: [new.id]).map(Self.skill)
                guard let existing else {
                    let downloads = Int64(clamping: item.downloads ?? 0)
                    try insert.execute(arguments: [
                        new.id, new.name, new.description, new.category, new.type, new.author, new.version,
                        Self.encodeList(new.tags), Self.encodeList(new.packages), new.entry, new.function, new.network,
                        new.contentHash, new.source, downloads, Int64(clamping: now), Int64(clamping: now),
                    ])
                    var record = new
                    record.downloads = UInt64(downloads)
                    record.createdAtMs = now
                    record.updatedAtMs = now
                    record.ratingAverage = 0
                    record.ratingCount = 0
                    outcomes.append((.added, record))
                    continue
                }
                let current = SemanticVersion(existing.version)
                if let current, item.version <= current {
                    var warning: String?
                    if item.version == current && existing.contentHash != new.contentHash {
                        warning = "\(item.label): \(new.id) \(new.version) differs from the catalog's copy of the same version; raise the version to update it"
                    } else if item.version < current {
                        warning = "\(item.label): \(new.id) \(new.version) is older than the catalog's \(existing.version); kept \(existing.version)"
                    }
                    outcomes.append((.unchanged(warning: warning), nil))
                    continue
                }
                let downloads = item.downloads ?? existing.downloads
                try update.execute(arguments: [
                    new.name, new.description, new.category, new.type, new.author, new.version, Self.encodeList(new.tags),
                    Self.encodeList(new.packages), new.entry, new.function, new.network, new.contentHash, new.source,
                    Int64(clamping: downloads), Int64(clamping: now), new.id,
                ])
                var record = new
                record.downloads = downloads
                record.ratingAverage = existing.ratingAverage
                record.ratingCount = existing.ratingCount
                record.createdAtMs = existing.createdAtMs
                record.updatedAtMs = now
                outcomes.append((.updated, record))
            }
            return outcomes
        }
    }

    /// Records (or changes) one user's rating and returns the skill's new average and count;
    /// nil when the skill does not exist.
    func rate(
        skillID: String, userID: String, stars: Int, now: UInt64, afterCommit: @escaping @Sendable ((Double, UInt32)?) -> Void
    ) async throws -> (Double, UInt32)? {
        try await serialWrite(afterCommit: afterCommit) { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM skills WHERE id = ?", arguments: [skillID]) != nil else { return nil }
            try db.execute(
                sql: """
                    INSERT INTO ratings (skill_id, user_id, stars, updated_at_ms) VALUES (?, ?, ?, ?)
                    ON CONFLICT (skill_id, user_id) DO UPDATE SET stars = excluded.stars, updated_at_ms = excluded.updated_at_ms
                    """,
                arguments: [skillID, userID, stars, Int64(clamping: now)])
            let row = try Row.fetchOne(db, sql: "SELECT COALESCE(SUM(stars), 0) AS total, COUNT(*) AS n FROM ratings WHERE skill_id = ?", arguments: [skillID])!
            let total: Int64 = row["total"], count: Int64 = row["n"]
            try db.execute(sql: "UPDATE skills SET rating_sum = ?, rating_count = ? WHERE id = ?", arguments: [total, count, skillID])
            return (count > 0 ? Double(total) / Double(count) : 0, UInt32(clamping: count))
        }
    }

    /// Counts one download (an install that succeeded) and returns the new total; nil when the
    /// skill does not exist.
    func recordDownload(
        skillID: String, agentID: String, environmentID: String, now: UInt64, afterCommit: @escaping @Sendable (UInt64?) -> Void
    ) async throws -> UInt64? {
        try await serialWrite(afterCommit: afterCommit) { db in
            guard let downloads = try Int64.fetchOne(
                db, sql: "UPDATE skills SET downloads = downloads + 1 WHERE id = ? RETURNING downloads", arguments: [skillID])
            else { return nil }
            try db.execute(
                sql: "INSERT INTO installs (skill_id, agent_id, environment_id, at_ms) VALUES (?, ?, ?, ?)",
                arguments: [skillID, agentID, environmentID, Int64(clamping: now)])
            return UInt64(clamping: downloads)
        }
    }
}
