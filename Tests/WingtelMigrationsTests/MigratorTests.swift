import Foundation
import Testing
import WingtelDatabase
import WingtelMigrations
import WingtelTestSupport

/// `wingtel db push` against a real PostgreSQL, one fresh database per test.
@Suite("Migration push")
struct MigratorTests {
    let folder: TemporaryDirectory

    init() throws {
        folder = try TemporaryDirectory("migrations")
    }

    var migrator: Migrator {
        Migrator(
            directory: MigrationDirectory(url: folder.url.appendingPathComponent("migrations")),
            seedFile: folder.url.appendingPathComponent("seed.sql"))
    }

    func writeBaseline() throws {
        try folder.write(
            "migrations/20260101000000_accounts.sql",
            """
            -- Accounts; a comment kept with the first statement
            create table accounts (id bigint primary key, name text not null);
            comment on table accounts is 'Paying customers; one per bill';
            """)
        try folder.write(
            "migrations/20260102000000_lines.sql",
            """
            create table lines (id bigint primary key, account_id bigint references accounts (id));
            create function line_count() returns bigint language sql as $$ select count(*) from lines; $$;
            """)
    }

    @Test("a fresh push applies all; a second applies nothing; history is written as the Supabase CLI writes it")
    func freshPushThenNoop() async throws {
        defer { folder.remove() }
        try writeBaseline()
        let settings = try await TestCluster.shared.emptyDatabase()
        let first = try await migrator.push(settings)
        #expect(first.applied == ["20260101000000_accounts.sql", "20260102000000_lines.sql"])
        let second = try await migrator.push(settings)
        #expect(second.applied.isEmpty)

        let history = try await Probe.rows(
            settings, "select version, name, statements::text from supabase_migrations.schema_migrations order by version")
        #expect(history.count == 2)
        #expect(history[0][0] == "20260101000000" && history[0][1] == "accounts")
        // The Supabase CLI keeps comments with the statement and drops the trailing ';'.
        let statements = try await Probe.rows(
            settings, "select unnest(statements) from supabase_migrations.schema_migrations where version = '20260101000000'")
        #expect(
            statements.map { $0[0] } == [
                "-- Accounts; a comment kept with the first statement\ncreate table accounts (id bigint primary key, name text not null)",
                "comment on table accounts is 'Paying customers; one per bill'",
            ])
        // Only the columns the CLI creates: ours live in a table of our own.
        let columns = try await Probe.rows(
            settings,
            "select column_name from information_schema.columns where table_schema = 'supabase_migrations' and table_name = 'schema_migrations' order by ordinal_position"
        )
        #expect(columns.map { $0[0] } == ["version", "statements", "name"])
        #expect(try await Probe.int(settings, "select count(*) from wingtel_migrations.applied_files") == 2)
        #expect(try await Probe.int(settings, "select line_count()") == 0)
    }

    @Test("two pushes started at the same moment apply every migration once and both succeed")
    func concurrentPushes() async throws {
        defer { folder.remove() }
        try writeBaseline()
        try folder.write("migrations/20260103000000_slow.sql", "select pg_sleep(0.3);\ncreate table slow (id int);")
        let settings = try await TestCluster.shared.emptyDatabase()
        let migrator = self.migrator
        async let a = migrator.push(settings)
        async let b = migrator.push(settings)
        let (first, second) = try await (a, b)
        #expect(
            (first.applied + second.applied).sorted() == [
                "20260101000000_accounts.sql", "20260102000000_lines.sql", "20260103000000_slow.sql",
            ])
        #expect(try await Probe.int(settings, "select count(*) from supabase_migrations.schema_migrations") == 3)
    }

    @Test("an applied migration that was edited is refused, naming the file; nothing changes")
    func editedMigration() async throws {
        defer { folder.remove() }
        try writeBaseline()
        let settings = try await TestCluster.shared.emptyDatabase()
        _ = try await migrator.push(settings)
        try folder.write("migrations/20260102000000_lines.sql", "create table lines (id bigint primary key, extra text);")
        try folder.write("migrations/20260104000000_next.sql", "create table next_one (id int);")
        await #expect {
            try await migrator.push(settings)
        } throws: { error in
            guard case MigrationError.drifted(let files) = error else { return false }
            return files == ["20260102000000_lines.sql"] && "\(error)".contains("fix forward")
        }
        #expect(try await Probe.int(settings, "select count(*) from pg_tables where tablename = 'next_one'") == 0)
        let plan = try await migrator.status(settings)
        #expect(plan.entries.map(\.state) == [.applied, .drifted, .pending])
    }

    @Test("a version applied in the database but missing from the folder is refused, with the CLI's advice")
    func unknownRemoteVersion() async throws {
        defer { folder.remove() }
        try writeBaseline()
        let settings = try await TestCluster.shared.emptyDatabase()
        _ = try await migrator.push(settings)
        try await Probe.execute(
            settings,
            "insert into supabase_migrations.schema_migrations (version, name, statements) values ('20260105000000', 'elsewhere', '{}')")
        try folder.write("migrations/20260106000000_next.sql", "create table next_one (id int);")
        await #expect {
            try await migrator.push(settings)
        } throws: { error in
            guard case MigrationError.remoteOnly(let versions) = error else { return false }
            return versions == ["20260105000000"] && "\(error)".contains("migration repair")
        }
        #expect(try await Probe.int(settings, "select count(*) from pg_tables where tablename = 'next_one'") == 0)
    }

    @Test("a local file older than the newest applied one is refused unless --include-all")
    func outOfOrder() async throws {
        defer { folder.remove() }
        try writeBaseline()
        let settings = try await TestCluster.shared.emptyDatabase()
        _ = try await migrator.push(settings)
        try folder.write("migrations/20260101120000_late.sql", "create table late (id int);")
        await #expect {
            try await migrator.push(settings)
        } throws: { error in
            guard case MigrationError.outOfOrder(let files, let newest) = error else { return false }
            return files == ["20260101120000_late.sql"] && newest == "20260102000000" && "\(error)".contains("--include-all")
        }
        #expect(try await Probe.int(settings, "select count(*) from pg_tables where tablename = 'late'") == 0)
        let result = try await migrator.push(settings, options: .init(includeAll: true))
        #expect(result.applied == ["20260101120000_late.sql"])
    }

    @Test("a migration failing midway leaves neither its DDL nor its history row")
    func failingMigrationRollsBack() async throws {
        defer { folder.remove() }
        try writeBaseline()
        try folder.write(
            "migrations/20260103000000_broken.sql",
            """
            create table half_done (id int);
            insert into half_done values (1);
            create tabel oops (id int);
            create table never (id int);
            """)
        let settings = try await TestCluster.shared.emptyDatabase()
        await #expect {
            try await migrator.push(settings)
        } throws: { error in
            guard case MigrationError.statementFailed(let file, let index, _, let failure) = error else { return false }
            return file == "20260103000000_broken.sql" && index == 2 && failure.sqlState == "42601"
                && "\(error)".contains("^")
        }
        // The two good migrations before it stay applied; nothing of the broken one remains.
        #expect(try await Probe.int(settings, "select count(*) from supabase_migrations.schema_migrations") == 2)
        #expect(try await Probe.int(settings, "select count(*) from pg_tables where tablename in ('half_done', 'never')") == 0)
        #expect(
            try await Probe.int(settings, "select count(*) from wingtel_migrations.applied_files where version = '20260103000000'") == 0)
    }

    @Test("an error raised while a row-returning statement runs is reported at that statement")
    func errorInsideFunctionCall() async throws {
        defer { folder.remove() }
        try folder.write(
            "migrations/20260101000000_raise.sql",
            """
            create function fail_now() returns int language plpgsql as $$ begin raise exception 'refused by rule' using errcode = 'P0001'; end $$;
            select fail_now();
            """)
        let settings = try await TestCluster.shared.emptyDatabase()
        await #expect {
            try await migrator.push(settings)
        } throws: { error in
            guard case MigrationError.statementFailed(_, let index, _, let failure) = error else { return false }
            return index == 1 && failure.sqlState == "P0001" && failure.message == "refused by rule"
        }
        #expect(try await Probe.int(settings, "select count(*) from pg_proc where proname = 'fail_now'") == 0)
    }

    @Test("CREATE INDEX CONCURRENTLY in a file of its own applies outside a transaction")
    func concurrentIndex() async throws {
        defer { folder.remove() }
        try writeBaseline()
        try folder.write(
            "migrations/20260103000000_index.sql",
            "-- Big tables: build without blocking writes.\ncreate index concurrently accounts_name_idx on accounts (name);")
        let settings = try await TestCluster.shared.emptyDatabase()
        let result = try await migrator.push(settings)
        #expect(result.applied.count == 3)
        #expect(
            try await Probe.int(
                settings,
                "select count(*) from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = 'accounts_name_idx' and i.indisvalid"
            ) == 1)
        #expect(
            try await Probe.int(settings, "select count(*) from supabase_migrations.schema_migrations where version = '20260103000000'")
                == 1)
    }

    @Test("a history written by the Supabase CLI (no checksums) is continued; its drift is seen through the statements")
    func continuesSupabaseHistory() async throws {
        defer { folder.remove() }
        try writeBaseline()
        let settings = try await TestCluster.shared.emptyDatabase()
        // What `supabase db push` would have left after applying the first file.
        try await Probe.execute(
            settings,
            """
            create schema supabase_migrations;
            create table supabase_migrations.schema_migrations (version text not null primary key, statements text[], name text);
            create table accounts (id bigint primary key, name text not null);
            insert into supabase_migrations.schema_migrations values ('20260101000000',
              array[E'-- Accounts; a comment kept with the first statement\\ncreate table accounts (id bigint primary key, name text not null)',
                    'comment on table accounts is ''Paying customers; one per bill'''], 'accounts');
            """)
        let result = try await migrator.push(settings)
        #expect(result.applied == ["20260102000000_lines.sql"])

        try await Probe.execute(
            settings, "update supabase_migrations.schema_migrations set statements = '{\"select 1\"}' where version = '20260101000000'")
        try await Probe.execute(settings, "delete from wingtel_migrations.applied_files")
        let plan = try await migrator.status(settings)
        #expect(plan.drifted == ["20260101000000_accounts.sql"])
    }

    @Test("--dry-run lists pending migrations and changes nothing")
    func dryRun() async throws {
        defer { folder.remove() }
        try writeBaseline()
        let settings = try await TestCluster.shared.emptyDatabase()
        let result = try await migrator.push(settings, options: .init(dryRun: true))
        #expect(result.wouldApply == ["20260101000000_accounts.sql", "20260102000000_lines.sql"])
        #expect(result.applied.isEmpty)
        #expect(try await Probe.int(settings, "select count(*) from pg_namespace where nspname = 'supabase_migrations'") == 0)
    }

    @Test("--include-seed applies the seed once per content hash")
    func seedOncePerHash() async throws {
        defer { folder.remove() }
        try writeBaseline()
        try folder.write("seed.sql", "insert into accounts values (1, 'Ana');\n")
        let settings = try await TestCluster.shared.emptyDatabase()
        #expect(try await migrator.push(settings, options: .init(dryRun: true, includeSeed: true)).wouldSeed)
        #expect(try await migrator.push(settings, options: .init(includeSeed: true)).seeded)
        #expect(!(try await migrator.push(settings, options: .init(dryRun: true, includeSeed: true)).wouldSeed), "dry run: nothing to seed")
        #expect(!(try await migrator.push(settings, options: .init(includeSeed: true)).seeded))
        #expect(try await Probe.int(settings, "select count(*) from accounts") == 1)
        #expect(try await Probe.int(settings, "select count(*) from supabase_migrations.seed_files where path = 'supabase/seed.sql'") == 1)
        try folder.write("seed.sql", "insert into accounts values (2, 'Bo');\n")
        #expect(try await migrator.push(settings, options: .init(includeSeed: true)).seeded)
        #expect(try await Probe.int(settings, "select count(*) from accounts") == 2)
    }

    @Test("a seed that fails leaves no rows and no hash")
    func failingSeed() async throws {
        defer { folder.remove() }
        try writeBaseline()
        try folder.write("seed.sql", "insert into accounts values (1, 'Ana');\ninsert into accounts values (1, 'Duplicate');\n")
        let settings = try await TestCluster.shared.emptyDatabase()
        await #expect(throws: MigrationError.self) { try await migrator.push(settings, options: .init(includeSeed: true)) }
        #expect(try await Probe.int(settings, "select count(*) from accounts") == 0)
        #expect(try await Probe.int(settings, "select count(*) from supabase_migrations.seed_files") == 0)
    }
}
