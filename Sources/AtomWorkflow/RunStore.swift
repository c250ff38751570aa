public import AtomProto
internal import Foundation
internal import GRDB

/// Every run and step, durable: SQLite (WAL) at `$ATOM_HOME/workflow/runs.sqlite`.
///
/// Each event is written before it is sent to anyone, so what a client saw is on disk. Runs
/// in flight when the service stopped are marked `interrupted` at the next start
/// (`markInterrupted`), and `ResumeRun` re-runs only their unfinished steps.
public final class RunStore: Sendable {
    private let pool: DatabasePool
    public let path: String

    /// A run as stored, with what resuming it needs.
    public struct StoredRun: Sendable {
        public var record: RunRecord
        public var spec: WorkflowSpec
        public var inputs: String
        /// Steps skipped because their condition was false (finished, unlike other skips).
        public var skippedByCondition: Set<String>
    }

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        // WAL: readers (GetRun, ListRuns) never wait for the writer; synchronous=NORMAL: a commit
        // survives a crash of the process (the case that matters here), at no fsync per event.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "runs") { table in
                table.primaryKey("id", .text)
                table.column("workflow", .text).notNull()
                table.column("state", .integer).notNull()
                table.column("spec", .blob).notNull()
                table.column("inputs", .text).notNull()
                table.column("outputs", .text).notNull().defaults(to: "")
                table.column("error", .text).notNull().defaults(to: "")
                table.column("started_at_ms", .integer).notNull()
                table.column("finished_at_ms", .integer).notNull().defaults(to: 0)
                table.column("resumes", .integer).notNull().defaults(to: 0)
            }
            try db.create(index: "runs_started", on: "runs", columns: ["started_at_ms"])
            try db.create(table: "steps") { table in
                table.column("run_id", .text).notNull().references("runs", onDelete: .cascade)
                table.column("step_id", .text).notNull()
                table.column("position", .integer).notNull()
                table.column("skill", .text).notNull()
                table.column("state", .integer).notNull()
                table.column("attempts", .integer).notNull().defaults(to: 0)
                table.column("inputs", .text).notNull().defaults(to: "")
                table.column("outputs", .text).notNull().defaults(to: "")
                table.column("error", .text).notNull().defaults(to: "")
                table.column("error_code", .integer).notNull().defaults(to: 0)
                table.column("error_type", .text).notNull().defaults(to: "")
                table.column("by_condition", .boolean).notNull().defaults(to: false)
                table.column("started_at_ms", .integer).notNull().defaults(to: 0)
                table.column("finished_at_ms", .integer).notNull().defaults(to: 0)
                table.column("duration_us", .integer).notNull().defaults(to: 0)
                table.primaryKey(["run_id", "step_id"])
            }
        }
        try migrator.migrate(pool)
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
    }

    /// Marks runs that were in flight when the service stopped as interrupted (and their
    /// running steps as cancelled). Returns how many runs.
    @discardableResult
    public func markInterrupted(now: UInt64 = RunStore.nowMs()) throws -> Int {
        try pool.write { db in
            try db.execute(
                sql: "UPDATE steps SET state = ?, error = ?, finished_at_ms = ? WHERE state = ? AND run_id IN (SELECT id FROM runs WHERE state = ?)",
                arguments: [StepState.cancelled.rawValue, "interrupted: the workflow service stopped while the step ran", now,
                            StepState.running.rawValue, RunState.running.rawValue])
            try db.execute(
                sql: "UPDATE runs SET state = ?, error = ?, finished_at_ms = ? WHERE state = ?",
                arguments: [RunState.interrupted.rawValue, "the workflow service stopped while the run was in flight; `atom workflow resume` re-runs its unfinished steps",
                            now, RunState.running.rawValue])
            return db.changesCount
        }
    }

    /// Stores a new run with every step pending.
    public func create(runID: String, spec: WorkflowSpec, inputs: String, startedAt: UInt64) async throws {
        let bytes = try spec.serializedBytes()
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO runs (id, workflow, state, spec, inputs, started_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [runID, spec.name, RunState.running.rawValue, Data(bytes), inputs, startedAt])
            let statement = try db.makeStatement(sql: "INSERT INTO steps (run_id, step_id, position, skill, state) VALUES (?, ?, ?, ?, ?)")
            for (position, step) in spec.steps.enumerated() {
                try statement.execute(arguments: [runID, step.id, position, step.skill, StepState.pending.rawValue])
            }
        }
    }

    /// Applies events in one transaction: a step event updates its step, a run event its run.
    public func apply(_ events: [StepEvent], byCondition: Set<String> = []) async throws {
        try await writeEvenIfCancelled { db in
            for event in events { try Self.apply(event, byCondition: byCondition.contains(event.stepId), db) }
        }
    }

    public func apply(_ event: StepEvent, byCondition: Bool = false) async throws {
        try await writeEvenIfCancelled { db in try Self.apply(event, byCondition: byCondition, db) }
    }

    /// A write in one transaction that a cancelled task still makes. GRDB's async `write`
    /// throws CancellationError in a cancelled task, and a run's task is cancelled exactly when
    /// its end must be stored: a RunWorkflow whose caller went away or whose deadline passed.
    /// Without this the run stayed "running" in the store for good, with nothing left to end it.
    private func writeEvenIfCancelled(_ updates: @escaping @Sendable (Database) throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            pool.asyncWrite(updates) { _, result in continuation.resume(with: result) }
        }
    }

    private static func apply(_ event: StepEvent, byCondition: Bool, _ db: Database) throws {
        if event.stepId.isEmpty {
            if event.runState == .running {
                try db.execute(
                    sql: "UPDATE runs SET state = ?, error = '', finished_at_ms = 0 WHERE id = ?",
                    arguments: [RunState.running.rawValue, event.runId])
            } else {
                try db.execute(
                    sql: "UPDATE runs SET state = ?, outputs = ?, error = ?, finished_at_ms = ? WHERE id = ?",
                    arguments: [event.runState.rawValue, event.outputsJson, event.error, event.finishedAtMs, event.runId])
            }
            return
        }
        try db.execute(
            sql: """
                UPDATE steps SET state = ?, attempts = ?, inputs = ?, outputs = ?, error = ?, error_code = ?, error_type = ?,
                by_condition = ?, started_at_ms = ?, finished_at_ms = ?, duration_us = ? WHERE run_id = ? AND step_id = ?
                """,
            arguments: [
                event.state.rawValue, event.attempt, event.inputsJson, event.outputsJson, event.error, event.errorCode.rawValue, event.errorType,
                byCondition, event.startedAtMs, event.finishedAtMs, event.durationUs, event.runId, event.stepId,
            ])
    }

    /// The states a run may be resumed from.
    public static let resumable: [RunState] = [.interrupted, .failed, .cancelled, .timedOut]

    /// Marks a resumed run as running again, if it is still in a resumable state; false when it
    /// is not (another resume, or anything else, changed it since it was read).
    public func beginResume(runID: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE runs SET state = ?, error = '', finished_at_ms = 0, resumes = resumes + 1 WHERE id = ? AND state IN (?, ?, ?, ?)",
                arguments: StatementArguments([RunState.running.rawValue as any DatabaseValueConvertible, runID] + Self.resumable.map(\.rawValue)))
            return db.changesCount == 1
        }
    }

    public func load(runID: String) async throws -> StoredRun? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ?", arguments: [runID]) else { return nil }
            var record = Self.record(row)
            let spec = try WorkflowSpec(serializedBytes: [UInt8]((row["spec"] as Data?) ?? Data()))
            var byCondition = Set<String>()
            for step in try Row.fetchAll(db, sql: "SELECT * FROM steps WHERE run_id = ? ORDER BY position", arguments: [runID]) {
                let event = Self.stepEvent(step)
                if (step["by_condition"] as Bool?) == true { byCondition.insert(event.stepId) }
                record.steps.append(event)
            }
            return StoredRun(record: record, spec: spec, inputs: row["inputs"], skippedByCondition: byCondition)
        }
    }

    /// Runs, newest first, without their steps.
    public func list(limit: Int, state: RunState?, workflow: String?) async throws -> [RunRecord] {
        try await pool.read { db in
            var sql = "SELECT id, workflow, state, inputs, outputs, error, started_at_ms, finished_at_ms, resumes FROM runs"
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let state {
                conditions.append("state = ?")
                _ = arguments.append(contentsOf: [state.rawValue])
            }
            if let workflow {
                conditions.append("workflow = ?")
                _ = arguments.append(contentsOf: [workflow])
            }
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY started_at_ms DESC, id DESC LIMIT ?"
            _ = arguments.append(contentsOf: [limit])
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.record)
        }
    }

    /// Sets the state of a run that is not running in this process (cancel an interrupted run).
    public func setState(runID: String, state: RunState, error: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE runs SET state = ?, error = ?, finished_at_ms = ? WHERE id = ?",
                arguments: [state.rawValue, error, Self.nowMs(), runID])
        }
    }

    static func record(_ row: Row) -> RunRecord {
        RunRecord(
            runId: row["id"], workflow: row["workflow"], state: RunState(rawValue: Int32(row["state"] as Int)),
            startedAtMs: UInt64(row["started_at_ms"] as Int64), finishedAtMs: UInt64(row["finished_at_ms"] as Int64), outputsJson: row["outputs"],
            inputsJson: row["inputs"], error: row["error"], resumes: UInt32(row["resumes"] as Int))
    }

    static func stepEvent(_ row: Row) -> StepEvent {
        StepEvent(
            runId: row["run_id"], stepId: row["step_id"], state: StepState(rawValue: Int32(row["state"] as Int)), attempt: UInt32(row["attempts"] as Int),
            outputsJson: row["outputs"], error: row["error"], durationUs: UInt64(row["duration_us"] as Int64), skill: row["skill"],
            inputsJson: row["inputs"], startedAtMs: UInt64(row["started_at_ms"] as Int64), finishedAtMs: UInt64(row["finished_at_ms"] as Int64),
            errorCode: StatusCode(rawValue: Int32(row["error_code"] as Int)), errorType: row["error_type"])
    }

    public static func nowMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
}
