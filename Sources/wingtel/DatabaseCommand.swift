import ArgumentParser
import Foundation
import Logging
import WingtelDatabase
import WingtelMigrations

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Local cluster, migrations and database tests.",
        subcommands: [
            StartCommand.self, StopCommand.self, StatusCommand.self, URLCommand.self, ResetCommand.self,
            PushCommand.self, NewCommand.self, SyncCommand.self, TestCommand.self,
        ]
    )
}

/// `--db-url`, else `DATABASE_URL`, else the local cluster.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("db-url"), help: "postgres:// URL of the database (default: DATABASE_URL, else the local cluster).")
    var dbURL: String?

    func resolve(layout: ProjectLayout) throws -> ConnectionSettings {
        if let dbURL { return try ConnectionSettings(url: dbURL) }
        if let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty {
            return try ConnectionSettings(url: url)
        }
        guard let cluster = try existingCluster(layout) else { throw WingtelDatabaseError.noDatabaseConfigured }
        guard case .running = cluster.status() else {
            throw WingtelDatabaseError.clusterNotRunning(cluster.directory.path)
        }
        return try cluster.connectionSettings()
    }
}

/// The project's local cluster when one was created (no installation happens here).
func existingCluster(_ layout: ProjectLayout) throws -> LocalCluster? {
    LocalCluster.existing(at: layout.home.appendingPathComponent("cluster"))
}

/// The project's local cluster, installing the binaries on first use.
func projectCluster(_ layout: ProjectLayout) throws -> LocalCluster {
    if let existing = try existingCluster(layout), FileManager.default.isExecutableFile(atPath: existing.binaries.path("pg_ctl")) {
        return existing
    }
    let binaries = try PostgresBinaries.resolve(home: layout.home, progress: note)
    return LocalCluster(directory: layout.home.appendingPathComponent("cluster"), binaries: binaries)
}

let commandLogger = Logger(label: "wingtel")

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Create (first time) and start the local PostgreSQL cluster under .wingtel/.",
        discussion: """
            First start: installs PostgreSQL 18 + pgvector into .wingtel/venv (or uses WINGTEL_PG_BIN), \
            runs initdb, applies sql/local (the Supabase shim), supabase/migrations and supabase/seed.sql. \
            Later starts just start the server; running it again while it runs is harmless.
            """)

    func run() async throws {
        let layout = ProjectLayout.discover()
        let cluster = try projectCluster(layout)
        let started = ContinuousClock.now
        let outcome = try await Provisioner(layout: layout, logger: commandLogger).start(cluster, progress: note)
        let settings = try cluster.connectionSettings()
        switch outcome {
        case .alreadyRunning(let port):
            note("The local cluster already runs on port \(port).")
        case .started(let port):
            note("Started the local cluster on port \(port).")
            let plan = try await Migrator(layout: layout, logger: commandLogger).status(settings)
            if !plan.pending.isEmpty {
                note("\(plan.pending.count) migration(s) pending: apply them with `wingtel db push`.")
            }
        case .created(let port):
            note("Created and provisioned the local cluster on port \(port) in \(formatDuration(ContinuousClock.now - started)).")
        }
        print(settings.url)
    }
}

struct StopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop the local cluster (its data stays).")

    func run() async throws {
        let layout = ProjectLayout.discover()
        guard let cluster = try existingCluster(layout) else {
            note("There is no local cluster in \(layout.home.path).")
            return
        }
        note(try cluster.stop() ? "Stopped the local cluster." : "The local cluster was not running.")
    }
}

struct URLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "url", abstract: "Print the postgres:// URL of the database (usable by psql).")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        print(try connection.resolve(layout: ProjectLayout.discover()).url)
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show what runs where, and applied, pending and drifted migrations.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let layout = ProjectLayout.discover()
        if connection.dbURL == nil, ProcessInfo.processInfo.environment["DATABASE_URL"]?.isEmpty ?? true {
            guard let cluster = try existingCluster(layout) else {
                print("Local cluster: not created (run `wingtel db start`).")
                return
            }
            switch cluster.status() {
            case .notInitialized:
                print("Local cluster: not created (run `wingtel db start`).")
                return
            case .stopped(let port):
                print("Local cluster: stopped (port \(port), data \(cluster.dataDirectory.path)); start it with `wingtel db start`.")
                return
            case .running(let port, let pid):
                print("Local cluster: running, PID \(pid), 127.0.0.1:\(port), PostgreSQL \(cluster.binaries.majorVersion)")
                print("  data: \(cluster.dataDirectory.path)")
                print("  log:  \(cluster.logFile.path)")
                print("  url:  \(try cluster.connectionSettings().url)")
            }
        }
        let settings = try connection.resolve(layout: layout)
        let plan = try await Migrator(layout: layout, logger: commandLogger).status(settings, skipped: note)
        print("Migrations (\(settings.redactedURL)):")
        for entry in plan.entries {
            print("  \(entry.state.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0)) \(entry.version)  \(entry.name)")
        }
        let count = { (state: Migrator.EntryState) in plan.entries.filter { $0.state == state }.count }
        print(
            "\(count(.applied)) applied, \(count(.pending) + count(.outOfOrder)) pending, \(count(.drifted)) drifted, \(count(.remoteOnly)) only in the database"
        )
        if !plan.drifted.isEmpty || !plan.remoteOnly.isEmpty { throw ExitCode(2) }
    }
}

struct ResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Recreate the local database: drop it, apply the shim, all migrations and the seed.",
        discussion: "Only the local cluster is ever reset; a remote database is never dropped by wingtel.")

    @Flag(name: .customLong("no-seed"), help: "Do not apply supabase/seed.sql.")
    var noSeed = false

    @Option(help: "Database of the local cluster to recreate (a scratch database for experiments or benchmarks).")
    var database = "postgres"

    func run() async throws {
        let layout = ProjectLayout.discover()
        let cluster = try projectCluster(layout)
        let provisioner = Provisioner(layout: layout, logger: commandLogger)
        let started = ContinuousClock.now
        if case .created = try await provisioner.start(cluster, progress: note), database == "postgres" {
            note("Created the local cluster.")
        } else {
            note("Recreating the local database \(database) …")
            try await provisioner.reset(cluster, database: database, seed: !noSeed, progress: note)
        }
        print(try cluster.connectionSettings(database: database).url)
        note("Reset done in \(formatDuration(ContinuousClock.now - started)).")
    }
}

struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Apply pending supabase/migrations to the database, as `supabase db push` does.")

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "List what would run; change nothing.") var dryRun = false
    @Flag(help: "Also apply local migrations older than the newest applied one.") var includeAll = false
    @Flag(help: "Apply supabase/seed.sql once per content hash after the migrations.") var includeSeed = false

    func run() async throws {
        let layout = ProjectLayout.discover()
        let settings = try connection.resolve(layout: layout)
        note("Connecting to \(settings.redactedURL) …")
        let result = try await Migrator(layout: layout, logger: commandLogger).push(
            settings, options: .init(dryRun: dryRun, includeAll: includeAll, includeSeed: includeSeed), progress: note)
        if !dryRun { note("Applied \(result.applied.count) migration(s)\(result.seeded ? " and the seed" : "").") }
    }
}

struct NewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new", abstract: "Create an empty migration supabase/migrations/<UTC timestamp>_NAME.sql.")

    @Argument(help: "Name of the migration: letters, digits, '_' and '-'.") var name: String

    func run() async throws {
        let layout = ProjectLayout.discover()
        let file = try MigrationDirectory(url: layout.migrationsDirectory).newMigration(named: name)
        print(file.path)
    }
}

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Compile changed sql/ definitions into a new migration (sql/sync.lock records what was emitted).")

    @Flag(help: "Change nothing; fail when sql/ has changes no migration carries.") var check = false

    func run() async throws {
        let layout = ProjectLayout.discover()
        let sync = DefinitionSync(layout: layout)
        if check {
            let changes = try sync.changes()
            if changes.isEmpty {
                note("sql/ is in sync with supabase/migrations.")
                return
            }
            throw MigrationError.syncPending(changes.map { "sql/\($0.path) (\($0.kind.rawValue))" })
        }
        let outcome = try sync.sync()
        for change in outcome.changes {
            note("  \(change.kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) sql/\(change.path)")
            if change.kind == .removed {
                note("    its objects stay in the database: drop them in a hand-written migration (`wingtel db new NAME`)")
            }
        }
        if let migration = outcome.migration {
            print(migration.path)
        } else if outcome.changes.isEmpty {
            note("Nothing to sync.")
        }
    }
}

struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run supabase/tests/*.sql (pgTAP) and print TAP with a summary.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Test files (default: every supabase/tests/*.sql).") var files: [String] = []

    func run() async throws {
        let layout = ProjectLayout.discover()
        let settings = try connection.resolve(layout: layout)
        let runner = PgTAPRunner(logger: commandLogger)
        try await runner.ensurePgTAP(settings)
        let urls = files.isEmpty ? try PgTAPRunner.testFiles(in: layout.pgTAPDirectory) : files.map { URL(fileURLWithPath: $0) }
        var passedFiles = 0
        var failedFiles: [String] = []
        var tests = 0
        for url in urls {
            let result = try await runner.run(file: url, on: settings)
            print("# \(result.file)")
            for line in result.lines { print(line) }
            tests += result.run
            if let problem = result.problem {
                print("# \(result.file): FAILED — \(problem)")
                failedFiles.append(result.file)
            } else {
                passedFiles += 1
            }
        }
        print("Files=\(urls.count), Tests=\(tests), Result: \(failedFiles.isEmpty ? "PASS" : "FAIL")")
        print("pgTAP: \(passedFiles) passed, \(failedFiles.count) failed")
        if !failedFiles.isEmpty { throw ExitCode(1) }
    }
}
