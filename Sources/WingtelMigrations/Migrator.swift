import Foundation
import Logging
import PostgresNIO
import WingtelDatabase

/// Applies `supabase/migrations` to a database, keeping the history exactly as
/// `supabase db push` does (`supabase_migrations.schema_migrations`), so either tool
/// can continue where the other stopped. File checksums live in a table of our own,
/// `wingtel_migrations.applied_files`.
public struct Migrator: Sendable {
    /// Session advisory lock taken for the whole push: concurrent pushes apply each migration once.
    public static let advisoryLockKey: Int64 = 0x5769_6E67_7465_6C4D  // "WingtelM"
    public static let seedPath = "supabase/seed.sql"

    public var directory: MigrationDirectory
    public var seedFile: URL?
    public var logger: Logger

    public init(directory: MigrationDirectory, seedFile: URL? = nil, logger: Logger = Logger(label: "wingtel.migrations")) {
        self.directory = directory
        self.seedFile = seedFile
        self.logger = logger
    }

    public init(layout: ProjectLayout, logger: Logger = Logger(label: "wingtel.migrations")) {
        self.init(directory: MigrationDirectory(url: layout.migrationsDirectory), seedFile: layout.seedFile, logger: logger)
    }

    // MARK: - What the database holds

    public struct AppliedMigration: Sendable, Equatable {
        public var version: String
        public var name: String
        public var statements: [String]
        /// Nil when the Supabase CLI applied it (its history has no checksums).
        public var checksum: String?
    }

    public enum EntryState: String, Sendable {
        case applied, pending, drifted
        /// Applied in the database, absent from the folder.
        case remoteOnly = "remote only"
        /// Pending, but older than the newest applied migration.
        case outOfOrder = "out of order"
    }

    public struct Entry: Sendable, Equatable {
        public var version: String
        public var name: String
        public var state: EntryState
    }

    public struct Plan: Sendable {
        public var entries: [Entry]
        public var pending: [MigrationFile]
        public var drifted: [String]
        public var remoteOnly: [String]
        public var outOfOrder: [String]
        public var newestApplied: String?
    }

    /// Compares the folder with the database's history.
    public func plan(local: [MigrationFile], applied: [AppliedMigration]) -> Plan {
        let appliedByVersion = Dictionary(applied.map { ($0.version, $0) }, uniquingKeysWith: { first, _ in first })
        let localVersions = Set(local.map(\.version))
        let newest = applied.map(\.version).max(by: MigrationDirectory.versionLess)
        var entries: [Entry] = []
        var pending: [MigrationFile] = []
        var drifted: [String] = []
        var outOfOrder: [String] = []
        for file in local {
            if let record = appliedByVersion[file.version] {
                let changed = record.checksum.map { $0 != file.checksum } ?? (record.statements != file.statements)
                if changed {
                    drifted.append(file.fileName)
                    entries.append(Entry(version: file.version, name: file.name, state: .drifted))
                } else {
                    entries.append(Entry(version: file.version, name: file.name, state: .applied))
                }
            } else {
                pending.append(file)
                if let newest, MigrationDirectory.versionLess(file.version, newest) {
                    outOfOrder.append(file.fileName)
                    entries.append(Entry(version: file.version, name: file.name, state: .outOfOrder))
                } else {
                    entries.append(Entry(version: file.version, name: file.name, state: .pending))
                }
            }
        }
        let remoteOnly = applied.filter { !localVersions.contains($0.version) }
        for record in remoteOnly {
            entries.append(Entry(version: record.version, name: record.name, state: .remoteOnly))
        }
        entries.sort { MigrationDirectory.versionLess($0.version, $1.version) }
        return Plan(
            entries: entries, pending: pending, drifted: drifted, remoteOnly: remoteOnly.map(\.version),
            outOfOrder: outOfOrder, newestApplied: newest)
    }

    /// The history as recorded in the database; empty when no migration was ever pushed.
    public func readHistory(on connection: PostgresConnection) async throws -> [AppliedMigration] {
        let exists = try await connection.query(
            "select to_regclass('supabase_migrations.schema_migrations') is not null, to_regclass('wingtel_migrations.applied_files') is not null",
            logger: logger)
        var historyExists = false
        var checksumsExist = false
        for try await (history, checksums) in exists.decode((Bool, Bool).self) {
            historyExists = history
            checksumsExist = checksums
        }
        guard historyExists else { return [] }
        let sql =
            checksumsExist
            ? "select m.version, coalesce(m.name, ''), coalesce(m.statements, '{}'), f.checksum from supabase_migrations.schema_migrations m left join wingtel_migrations.applied_files f using (version) order by m.version"
            : "select version, coalesce(name, ''), coalesce(statements, '{}'), null::text from supabase_migrations.schema_migrations order by version"
        let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        var applied: [AppliedMigration] = []
        for try await (version, name, statements, checksum) in rows.decode((String, String, [String], String?).self) {
            applied.append(AppliedMigration(version: version, name: name, statements: statements, checksum: checksum))
        }
        return applied
    }

    // MARK: - Push

    public struct PushOptions: Sendable {
        public var dryRun = false
        public var includeAll = false
        public var includeSeed = false
        public init(dryRun: Bool = false, includeAll: Bool = false, includeSeed: Bool = false) {
            self.dryRun = dryRun
            self.includeAll = includeAll
            self.includeSeed = includeSeed
        }
    }

    public struct PushResult: Sendable, Equatable {
        public var applied: [String] = []
        public var wouldApply: [String] = []
        public var seeded: Bool = false
        public var wouldSeed: Bool = false
    }

    /// Applies pending migrations (and the seed, when asked). `progress` gets one line per step.
    public func push(
        _ settings: ConnectionSettings, options: PushOptions = PushOptions(), progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> PushResult {
        let local = try directory.load(skipped: progress)
        return try await Database.withConnection(settings, logger: logger) { connection in
            // Released by pg_advisory_unlock below, or when the connection closes on an error.
            try await connection.execute("select pg_advisory_lock(\(Self.advisoryLockKey))", logger: logger)
            let history = try await readHistory(on: connection)
            let plan = plan(local: local, applied: history)
            if !plan.drifted.isEmpty { throw MigrationError.drifted(plan.drifted) }
            if !plan.remoteOnly.isEmpty { throw MigrationError.remoteOnly(plan.remoteOnly) }
            if !plan.outOfOrder.isEmpty && !options.includeAll {
                throw MigrationError.outOfOrder(files: plan.outOfOrder, newestApplied: plan.newestApplied ?? "")
            }
            var result = PushResult()
            if options.dryRun {
                result.wouldApply = plan.pending.map(\.fileName)
                for file in plan.pending { progress("Would apply \(file.fileName) (\(file.statements.count) statements)") }
                if plan.pending.isEmpty { progress("Remote database is up to date.") }
                if options.includeSeed, let seed = try loadSeed() {
                    if try await appliedSeedHash(on: connection) == seed.hash {
                        progress("Seed \(Self.seedPath) already applied (same content).")
                    } else {
                        progress("Would seed \(Self.seedPath) (\(seed.statements.count) statements)")
                        result.wouldSeed = true
                    }
                }
                return result
            }
            if !plan.pending.isEmpty {
                try await requirePGVector(on: connection, settings: settings)
                try await createHistoryTables(on: connection)
            }
            for (index, file) in plan.pending.enumerated() {
                let started = ContinuousClock.now
                progress("Applying migration \(index + 1)/\(plan.pending.count) \(file.fileName) …")
                try await apply(file, on: connection)
                let elapsed = ContinuousClock.now - started
                progress("  done in \(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000) ms")
                result.applied.append(file.fileName)
            }
            if plan.pending.isEmpty { progress("Remote database is up to date.") }
            if !plan.pending.isEmpty {
                // Migrations may have altered audited tables: recompile their audit triggers (until
                // then they take the slower generic path, with the same entries).
                var hasAudit = false
                for try await exists in try await connection.query(
                    "select to_regprocedure('audit.refresh()') is not null", logger: logger
                ).decode(Bool.self) { hasAudit = exists }
                if hasAudit {
                    for try await count in try await connection.query("select audit.refresh()", logger: logger).decode(Int.self) {
                        progress("Compiled the audit triggers of \(count) tables.")
                    }
                }
            }
            if options.includeSeed {
                result.seeded = try await seed(on: connection, progress: progress)
            }
            try await connection.execute("select pg_advisory_unlock(\(Self.advisoryLockKey))", logger: logger)
            return result
        }
    }

    func requirePGVector(on connection: PostgresConnection, settings: ConnectionSettings) async throws {
        let rows = try await connection.query(
            "select count(*)::int from pg_catalog.pg_available_extensions where name = 'vector'", logger: logger)
        for try await count in rows.decode(Int.self) where count == 0 {
            throw MigrationError.pgvectorUnavailable(settings.redactedURL)
        }
    }

    /// The Supabase CLI's own statements, then our checksum table beside it.
    func createHistoryTables(on connection: PostgresConnection) async throws {
        for statement in [
            "create schema if not exists supabase_migrations",
            "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)",
            "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
            "alter table supabase_migrations.schema_migrations add column if not exists name text",
            "create schema if not exists wingtel_migrations",
            """
            create table if not exists wingtel_migrations.applied_files (
                version text primary key,
                file_name text not null,
                checksum text not null,
                applied_at timestamptz not null default now(),
                applied_by text not null default current_user,
                duration_ms integer
            )
            """,
            "comment on table wingtel_migrations.applied_files is 'SHA-256 of each migration file applied by wingtel db push; an applied file whose content changes is refused (fix forward).'",
        ] {
            try await connection.execute(statement, logger: logger)
        }
    }

    func apply(_ file: MigrationFile, on connection: PostgresConnection) async throws {
        let started = ContinuousClock.now
        let recordHistory: (PostgresConnection) async throws -> Void = { connection in
            let elapsed = ContinuousClock.now - started
            let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
            try await connection.run(
                "insert into supabase_migrations.schema_migrations (version, name, statements) values (\(file.version), \(file.name), \(file.statements))",
                logger: logger)
            try await connection.run(
                "insert into wingtel_migrations.applied_files (version, file_name, checksum, duration_ms) values (\(file.version), \(file.fileName), \(file.checksum), \(milliseconds))",
                logger: logger)
        }
        if file.requiresNoTransaction {
            for (index, statement) in file.statements.enumerated() where !SQLSplitter.isCommentOnly(statement) {
                do {
                    try await connection.execute(statement, logger: logger)
                } catch {
                    guard let failure = SQLFailure(error) else { throw error }
                    throw MigrationError.statementFailed(file: file.fileName, index: index, statement: statement, failure: failure)
                }
            }
            try await inTransaction(connection) { try await recordHistory($0) }
            return
        }
        try await connection.execute("begin", logger: logger)
        do {
            for (index, statement) in file.statements.enumerated() where !SQLSplitter.isCommentOnly(statement) {
                do {
                    try await connection.execute(statement, logger: logger)
                } catch {
                    guard let failure = SQLFailure(error) else { throw error }
                    throw MigrationError.statementFailed(file: file.fileName, index: index, statement: statement, failure: failure)
                }
            }
            try await recordHistory(connection)
            try await connection.execute("commit", logger: logger)
        } catch {
            try? await connection.execute("rollback", logger: logger)
            throw error
        }
    }

    func inTransaction(_ connection: PostgresConnection, _ body: (PostgresConnection) async throws -> Void) async throws {
        try await connection.execute("begin", logger: logger)
        do {
            try await body(connection)
            try await connection.execute("commit", logger: logger)
        } catch {
            try? await connection.execute("rollback", logger: logger)
            throw error
        }
    }

    // MARK: - Seed

    struct SeedScript {
        var statements: [String]
        var hash: String
    }

    func loadSeed() throws -> SeedScript? {
        guard let seedFile, FileManager.default.fileExists(atPath: seedFile.path) else { return nil }
        let data = try Data(contentsOf: seedFile)
        guard let text = String(data: data, encoding: .utf8) else {
            throw MigrationError.unreadable(seedFile.path, reason: "it is not valid UTF-8")
        }
        return SeedScript(statements: SQLSplitter.split(text), hash: sha256Hex(data))
    }

    /// Runs the seed once per content hash (`supabase_migrations.seed_files`, as the CLI keeps it).
    /// The hash recorded for the seed file, nil when it was never applied (or no history exists yet).
    func appliedSeedHash(on connection: PostgresConnection) async throws -> String? {
        let exists = try await connection.query("select to_regclass('supabase_migrations.seed_files') is not null", logger: logger)
        for try await present in exists.decode(Bool.self) where !present { return nil }
        let rows = try await connection.query(
            "select hash from supabase_migrations.seed_files where path = \(Self.seedPath)", logger: logger)
        var applied: String?
        for try await hash in rows.decode(String.self) { applied = hash }
        return applied
    }

    func seed(on connection: PostgresConnection, progress: @Sendable (String) -> Void) async throws -> Bool {
        guard let seed = try loadSeed() else {
            progress("No seed file at \(Self.seedPath); nothing to seed.")
            return false
        }
        try await connection.execute("create schema if not exists supabase_migrations", logger: logger)
        try await connection.execute(
            "create table if not exists supabase_migrations.seed_files (path text not null primary key, hash text not null)",
            logger: logger)
        let appliedHash = try await appliedSeedHash(on: connection)
        if appliedHash == seed.hash {
            progress("Seed \(Self.seedPath) already applied (same content).")
            return false
        }
        progress(appliedHash == nil ? "Seeding data from \(Self.seedPath) …" : "Seed \(Self.seedPath) changed; seeding again …")
        try await inTransaction(connection) { connection in
            for (index, statement) in seed.statements.enumerated() where !SQLSplitter.isCommentOnly(statement) {
                do {
                    try await connection.execute(statement, logger: logger)
                } catch {
                    guard let failure = SQLFailure(error) else { throw error }
                    throw MigrationError.statementFailed(file: Self.seedPath, index: index, statement: statement, failure: failure)
                }
            }
            try await connection.run(
                "insert into supabase_migrations.seed_files (path, hash) values (\(Self.seedPath), \(seed.hash)) on conflict (path) do update set hash = excluded.hash",
                logger: logger)
        }
        return true
    }

    // MARK: - Status

    /// Applied, pending and drifted migrations, read without changing anything.
    public func status(_ settings: ConnectionSettings, skipped: (String) -> Void = { _ in }) async throws -> Plan {
        let local = try directory.load(skipped: skipped)
        let history = try await Database.withConnection(settings, logger: logger) { try await readHistory(on: $0) }
        return plan(local: local, applied: history)
    }
}
