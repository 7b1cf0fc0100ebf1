import Foundation
import Logging
import PostgresNIO
import WingtelDatabase

/// Brings a database to the state of the project: the local Supabase shim (`sql/local`),
/// then `supabase/migrations`, then the seed. Used by `wingtel db start|reset` and by the
/// test harness, so both provision the same way.
public struct Provisioner: Sendable {
    public var layout: ProjectLayout
    public var logger: Logger

    public init(layout: ProjectLayout, logger: Logger = Logger(label: "wingtel.provision")) {
        self.layout = layout
        self.logger = logger
    }

    /// Applies every `sql/local/*.sql` in name order. The files are idempotent: roles are
    /// cluster-wide and already exist when a second database is provisioned.
    public func applyShim(_ settings: ConnectionSettings) async throws {
        let directory = layout.localShimDirectory
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let files = names.filter { $0.hasSuffix(".sql") }.sorted()
        guard !files.isEmpty else {
            throw MigrationError.folderMissing(directory.path + " (the local Supabase shim)")
        }
        try await Database.withConnection(settings, logger: logger) { connection in
            for name in files {
                let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
                for (index, statement) in SQLSplitter.split(text).enumerated() where !SQLSplitter.isCommentOnly(statement) {
                    do {
                        try await connection.execute(statement, logger: logger)
                    } catch {
                        guard let failure = SQLFailure(error) else { throw error }
                        throw MigrationError.statementFailed(
                            file: "sql/local/\(name)", index: index, statement: statement, failure: failure)
                    }
                }
            }
        }
    }

    /// Shim, migrations and (optionally) the seed on one database.
    public func provision(
        _ settings: ConnectionSettings, seed: Bool = true, progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws {
        progress("Applying the local Supabase shim (sql/local) to \(settings.database) …")
        try await applyShim(settings)
        let migrator = Migrator(layout: layout, logger: logger)
        _ = try await migrator.push(settings, options: .init(includeSeed: seed), progress: progress)
    }

    /// Starts the local cluster; a newly created one is provisioned (shim, migrations, seed).
    public func start(_ cluster: LocalCluster, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws
        -> LocalCluster.StartOutcome
    {
        let outcome = try cluster.start(progress: progress)
        if case .created = outcome {
            do {
                try await provision(try cluster.connectionSettings(), progress: progress)
            } catch {
                // Leave no half-provisioned cluster behind: the next start begins again.
                try? cluster.destroy()
                throw error
            }
        }
        return outcome
    }

    /// Drops and recreates `database`, then provisions it anew.
    public func reset(
        _ cluster: LocalCluster, database: String = "postgres", seed: Bool = true,
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws {
        try await recreate(database: database, in: cluster)
        try await provision(try cluster.connectionSettings(database: database), seed: seed, progress: progress)
    }

    /// Drops `database` (closing its sessions) and creates it as a copy of `template`.
    /// The administrative session connects to `postgres` (or `template1` when `postgres`
    /// itself is recreated), never to the template being copied.
    public func recreate(database: String, in cluster: LocalCluster, template: String = "template1") async throws {
        let recreatingMain = database == "postgres"
        let admin = recreatingMain ? "template1" : "postgres"
        let source = recreatingMain && template == "template1" ? "template0" : template
        try await Database.withConnection(try cluster.connectionSettings(database: admin), logger: logger) { connection in
            let name = Self.quoteIdentifier(database)
            do {
                try await connection.execute("drop database if exists \(name) with (force)", logger: logger)
                try await connection.execute("create database \(name) template \(Self.quoteIdentifier(source))", logger: logger)
            } catch {
                guard let failure = SQLFailure(error) else { throw error }
                throw WingtelDatabaseError.sql(failure)
            }
        }
    }

    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
