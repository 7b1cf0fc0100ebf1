import Foundation
import Testing
import WingtelDatabase
import WingtelMigrations
import WingtelTestSupport

/// Every `supabase/tests/*.sql` file runs as one test case, each in a fresh clone of the
/// migrated template — the same files `wingtel db test` and `supabase test db` run.
@Suite("pgTAP files in supabase/tests")
struct PgTAPTests {
    static let files: [String] = {
        let directory = TestCluster.projectLayout().pgTAPDirectory
        return ((try? PgTAPRunner.testFiles(in: directory)) ?? []).map(\.lastPathComponent)
    }()

    @Test("the project has pgTAP files to run")
    func filesExist() {
        #expect(!Self.files.isEmpty)
    }

    @Test("pgTAP file passes", arguments: files)
    func pgTAPFile(name: String) async throws {
        let settings = try await TestCluster.shared.migratedDatabase("pgtap_\(name)")
        let file = TestCluster.projectLayout().pgTAPDirectory.appendingPathComponent(name)
        let result = try await PgTAPRunner().run(file: file, on: settings)
        #expect(result.problem == nil, "\(name): \(result.problem ?? "")\n\(result.lines.joined(separator: "\n"))")
        #expect(result.run > 0)
    }

    @Test("failures, a wrong plan and a raising statement are each reported")
    func runnerReportsFailures() async throws {
        let folder = try TemporaryDirectory("pgtap")
        defer { folder.remove() }
        let settings = try await TestCluster.shared.migratedDatabase()
        let runner = PgTAPRunner()

        let failing = try folder.write(
            "failing.sql",
            """
            begin;
            select plan(3);
            select ok(true, 'fine');
            select is(1 + 1, 3, 'arithmetic is wrong on purpose');
            select set_config('request.jwt.claims', '{"sub":"x"}', true);
            select todo('not yet', 1);
            select ok(false, 'a todo failure does not count');
            select * from finish();
            rollback;
            """)
        let result = try await runner.run(file: failing, on: settings)
        #expect(result.planned == 3 && result.passed == 2 && result.failed == 1)
        #expect(result.problem == "1 of 3 tests failed")
        // The text row of set_config is not TAP and is not kept.
        #expect(!result.lines.contains("{\"sub\":\"x\"}"))

        let shortPlan = try folder.write("short.sql", "begin; select plan(2); select ok(true); select * from finish(); rollback;")
        #expect(try await runner.run(file: shortPlan, on: settings).problem == "planned 2 tests but ran 1")

        let raising = try folder.write("raising.sql", "begin; select plan(1); select * from no_such_table; rollback;")
        let raised = try await runner.run(file: raising, on: settings)
        #expect(raised.error?.contains("42P01") == true)
        #expect(raised.succeeded == false)
    }
}
