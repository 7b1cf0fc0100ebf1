import Foundation
import Testing
import WingtelDatabase
import WingtelMigrations
import WingtelTestSupport

@Suite("Compiling sql/ definitions into migrations")
struct DefinitionSyncTests {
    @Test("changed definitions become one migration that applies; --check fails until they do")
    func syncCycle() async throws {
        let project = try TemporaryDirectory("project")
        defer { project.remove() }
        let layout = ProjectLayout(root: project.url)
        try project.write(
            "supabase/migrations/20260101000000_tables.sql", "create table plans (id int primary key, price_cents bigint not null);")
        try project.write(
            "sql/20_billing/functions.sql",
            """
            -- The price of a plan, in cents.
            create or replace function plan_price(plan_id int) returns bigint language sql stable
            as $$ select price_cents from plans where id = plan_id $$;
            """)
        try project.write(
            "sql/10_catalog/views.sql", "create or replace view cheap_plans as select * from plans where price_cents < 2000;\n")
        try project.write("sql/local/00_roles.sql", "select 'the shim is not a definition';")
        try project.write("sql/queries/plans.sql", "-- name: Plans :many\nselect * from plans;")
        let sync = DefinitionSync(layout: layout)

        #expect(try sync.changes().map(\.path) == ["10_catalog/views.sql", "20_billing/functions.sql"])
        let outcome = try sync.sync(now: Date(timeIntervalSince1970: 1_795_000_000))
        let migration = try #require(outcome.migration)
        #expect(migration.lastPathComponent == "20261118110640_sync_10_catalog_20_billing.sql")
        let text = try String(contentsOf: migration, encoding: .utf8)
        // Domain order, each file's text carried whole; a missing final ';' is supplied.
        #expect(text.range(of: "sql/10_catalog/views.sql")!.lowerBound < text.range(of: "sql/20_billing/functions.sql")!.lowerBound)
        #expect(text.contains("where id = plan_id $$;"))
        #expect(try sync.changes().isEmpty)
        #expect(try sync.sync().migration == nil)

        let settings = try await TestCluster.shared.emptyDatabase()
        _ = try await Migrator(layout: layout).push(settings)
        try await Probe.execute(settings, "insert into plans values (1, 1500)")
        #expect(try await Probe.int(settings, "select plan_price(1)") == 1500)
        #expect(try await Probe.int(settings, "select count(*) from cheap_plans") == 1)

        try project.write(
            "sql/20_billing/functions.sql",
            """
            create or replace function plan_price(plan_id int) returns bigint language sql stable
            as $$ select price_cents * 2 from plans where id = plan_id $$;
            """)
        try FileManager.default.removeItem(at: project.url.appendingPathComponent("sql/10_catalog/views.sql"))
        let changes = try sync.changes()
        #expect(changes.map(\.path) == ["20_billing/functions.sql", "10_catalog/views.sql"])
        #expect(changes.map(\.kind) == [.changed, .removed])
        let second = try sync.sync(now: Date(timeIntervalSince1970: 1_795_000_100))
        #expect(second.migration != nil)
        _ = try await Migrator(layout: layout).push(settings)
        #expect(try await Probe.int(settings, "select plan_price(1)") == 3000)
        #expect(try sync.changes().isEmpty)
    }

    @Test("a malformed lock file is reported with the line")
    func malformedLock() throws {
        let project = try TemporaryDirectory("project")
        defer { project.remove() }
        try project.write("sql/sync.lock", "not-a-valid-line\n")
        #expect {
            try DefinitionSync(layout: ProjectLayout(root: project.url)).changes()
        } throws: { "\($0)".contains("not-a-valid-line") }
    }
}
