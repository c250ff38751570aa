public import Foundation
internal import GRDB

/// Every policy decision, with the agent that asked: SQLite at `$ATOM_HOME/installer/audit.sqlite`.
public final class AuditLog: Sendable {
    private let queue: DatabaseQueue

    public struct Entry: Sendable, Hashable {
        public let time: Date
        public let agentID: String
        public let skillID: String
        public let ecosystem: String
        public let packages: String
        /// `allowed`, `refused`, `warned`, `installed`, `failed`.
        public let decision: String
        public let detail: String
    }

    public init(path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        // WAL with synchronous=NORMAL: an audit row costs no fsync of its own on the install path.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        queue = try DatabaseQueue(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "audit") { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("time", .double).notNull()
                table.column("agent_id", .text).notNull()
                table.column("skill_id", .text).notNull()
                table.column("ecosystem", .text).notNull()
                table.column("packages", .text).notNull()
                table.column("decision", .text).notNull()
                table.column("detail", .text).notNull()
            }
            try db.create(index: "audit_agent", on: "audit", columns: ["agent_id", "time"])
        }
        try migrator.migrate(queue)
    }

    public func record(agentID: String, skillID: String, ecosystem: String, packages: [String], decision: String, detail: String) throws {
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO audit (time, agent_id, skill_id, ecosystem, packages, decision, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [Date().timeIntervalSince1970, agentID, skillID, ecosystem, packages.joined(separator: " "), decision, detail])
        }
    }

    /// The latest entries, newest first.
    public func recent(limit: Int = 100) throws -> [Entry] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                Entry(
                    time: Date(timeIntervalSince1970: row["time"]), agentID: row["agent_id"], skillID: row["skill_id"],
                    ecosystem: row["ecosystem"], packages: row["packages"], decision: row["decision"], detail: row["detail"])
            }
        }
    }
}
