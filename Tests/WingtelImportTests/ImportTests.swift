import Foundation
import Testing
import WingtelDatabase
import WingtelImport
import WingtelTestSupport

/// `wingtel import bequick` end to end against the real database, on the samples under seed/bequick.
@Suite("Importing BeQuick exports")
struct ImportTests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("seed/bequick")
    static let org = "10000000-0000-4000-8000-00000000000a"

    /// (line, issue type) pairs planted in a sample, from its .expected file.
    static func planted(_ name: String) throws -> Set<String> {
        let text = try String(contentsOf: samples.appendingPathComponent(name), encoding: .utf8)
        return Set(
            text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasSuffix(" clean") }.map(String.init))
    }

    static func found(_ settings: ConnectionSettings, _ batch: UUID) async throws -> Set<String> {
        Set(
            try await Probe.rows(
                settings,
                "select line_number || ' ' || issue_type from import_issues where batch_id = '\(batch)' and line_number is not null"
            ).map { $0[0] ?? "" })
    }

    /// Everything a migration writes, as one checksum (to show that a re-import changes nothing).
    static func checksum(_ settings: ConnectionSettings) async throws -> String {
        try await Probe.rows(
            settings,
            """
            select md5(string_agg(t, '|' order by t)) from (
              select a::text as t from accounts a union all select s::text from subscribers s
              union all select c::text from sim_cards c union all select d::text from devices d
              union all select u::text from subscriptions u) x
            """)[0][0] ?? ""
    }

    @Test("the dirty sample: every planted problem is reported with its type and line; the clean rows are migrated")
    func dirty() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let result = try await BeQuickImporter().run(
            file: Self.samples.appendingPathComponent("subscriptions-dirty.csv"), organizationSlug: "acme-mobile", settings: settings)
        #expect(result.shape == .subscriptionExport)
        #expect(result.rows == 28)
        #expect(result.unreadableRows == 1)
        #expect(try await Self.found(settings, result.batchID) == Self.planted("subscriptions-dirty.expected"))

        // Rows with only warnings are migrated; rows with a blocking problem are not.
        let migrated = try await Probe.rows(
            settings, "select external_id from subscribers where external_id like 'SUB-20%' order by 1"
        ).map { $0[0] ?? "" }
        #expect(migrated == ["SUB-2001", "SUB-2011", "SUB-2025", "SUB-2026", "SUB-2027", "SUB-2028"])
        #expect(result.count("subscribers")?.created == 6)
        #expect(result.count("rows")?.skipped == 22)
        // The unknown plan comes with the closest catalog plans.
        #expect(
            try await Probe.rows(
                settings, "select candidates[1] from import_issues where batch_id = '\(result.batchID)' and issue_type = 'unknown_plan'")
                == [["Unlimited"]])
        // Reconciliation: rows in the file = migrated + skipped + rejected.
        let rows = try await Probe.rows(
            settings,
            "select in_file::text, migrated::text, skipped::text, rejected::text, in_wingtel::text from migration_summary_report('\(Self.org)') where section = 'rows' and item = 'all'"
        )
        #expect(rows == [["28", "6", "21", "1", "0"]])
        // The suspended line keeps its state, with the reason BeQuick does not export.
        #expect(
            try await Probe.rows(
                settings, "select status::text, network_status::text, suspend_reason::text from subscribers where external_id = 'SUB-2028'")
                == [["suspended", "suspended", "customer_request"]])
    }

    @Test("the staging shape (UTF-8 BOM, CRLF, quoted address): problems by line, addresses kept as written")
    func staging() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let result = try await BeQuickImporter().run(
            file: Self.samples.appendingPathComponent("staging-dirty.csv"), organizationSlug: "acme-mobile", settings: settings)
        #expect(result.shape == .staging)
        #expect(try await Self.found(settings, result.batchID) == Self.planted("staging-dirty.expected"))
        let account = try await Probe.rows(
            settings,
            "select name, email::text, phone, address_line1, state, country, billing_day::text from accounts where external_id = 'BQ-9001'")
        #expect(account == [["Nia Brooks", "nia@example.com", "+17735550142", "\"The Loft\", 12 Lake St", "IL", "US", "15"]])
        #expect(
            try await Probe.rows(
                settings, "select mdn, status::text from subscribers where external_id in ('BQ-9001', 'BQ-9002') order by 1")
                == [["+17735550401", "active"], ["+17735550402", "active"]])
        #expect(try await Probe.int(settings, "select count(*) from subscribers where external_id in ('BQ-9003', 'BQ-9004')") == 0)
    }

    @Test("re-importing the same export changes nothing; a newer export applies exactly its changes and lists the line that disappeared")
    func idempotentAndDelta() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let importer = BeQuickImporter()
        let clean = Self.samples.appendingPathComponent("subscriptions-clean.csv")
        let first = try await importer.run(file: clean, organizationSlug: "acme-mobile", settings: settings)
        #expect(first.issues.filter { $0.severity == "blocking" }.isEmpty)
        #expect(first.count("subscribers")?.created == 8)
        #expect(first.count("accounts")?.created == 7)
        // New rows get time-ordered ids: UUID version 7 in every table, lines sorting in file order.
        #expect(
            try await Probe.rows(
                settings,
                """
                select count(*) filter (
                         where exists (select 1 from unnest(array[s.id, s.account_id, s.current_sim_id, s.current_device_id, u.id]) as i(id)
                                       where substr(i.id::text, 15, 1) <> '7'))::text,
                       (array_agg(r.line_number order by s.id) = array_agg(r.line_number order by r.line_number))::text
                from import_rows r join subscribers s on s.id = r.subscriber_id join subscriptions u on u.subscriber_id = s.id
                where r.batch_id = '\(first.batchID)'
                """) == [["0", "true"]])
        let before = try await Self.checksum(settings)

        let again = try await importer.run(file: clean, organizationSlug: "acme-mobile", settings: settings)
        #expect(again.count("rows").map { [$0.created, $0.updated, $0.unchanged] } == [0, 0, 8])
        #expect(try await Self.checksum(settings) == before)

        let updated = try await importer.run(
            file: Self.samples.appendingPathComponent("subscriptions-updated.csv"), organizationSlug: "acme-mobile", settings: settings)
        let outcomes = try await Probe.rows(
            settings,
            "select subscriber_ref, outcome::text from import_rows where batch_id = '\(updated.batchID)' order by subscriber_ref")
        #expect(
            outcomes == [
                ["SUB-1001", "updated"], ["SUB-1002", "updated"], ["SUB-1003", "updated"], ["SUB-1004", "unchanged"],
                ["SUB-1005", "unchanged"], ["SUB-1007", "unchanged"], ["SUB-1008", "updated"], ["SUB-1009", "created"],
            ])
        // SUB-1001 moved from 5 GB to Unlimited: the old period is closed, the new one open.
        let plans = try await Probe.rows(
            settings,
            """
            select p.code, upper_inf(u.effective)::text from subscriptions u join plans p on p.id = u.plan_id
            join subscribers s on s.id = u.subscriber_id where s.external_id = 'SUB-1001' order by lower(u.effective)
            """)
        #expect(plans == [["DATA-5", "false"], ["UNLIMITED", "true"]])
        #expect(
            try await Probe.rows(
                settings,
                "select external_id, status::text, coalesce(suspend_reason::text, '-') from subscribers where external_id in ('SUB-1002', 'SUB-1003') order by 1"
            ) == [["SUB-1002", "cancelled", "-"], ["SUB-1003", "active", "-"]])
        #expect(
            try await Probe.rows(settings, "select email::text from accounts where external_id = 'P-507'") == [["olga.ivanova@example.com"]]
        )
        // SUB-1006 is not in the newer export: listed for review, left as it was.
        #expect(
            try await Probe.rows(
                settings, "select value from import_issues where batch_id = '\(updated.batchID)' and issue_type = 'missing_from_export'")
                == [["SUB-1006"]])
        #expect(try await Probe.rows(settings, "select status::text from subscribers where external_id = 'SUB-1006'") == [["pending"]])
        // Each migrated line has one 'migrated' event in its history.
        #expect(try await Probe.int(settings, "select count(*) from subscriber_events where kind = 'migrated'") == 9)
    }

    @Test("a dry run reports what would happen and keeps nothing")
    func dryRun() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let before = try await Self.checksum(settings)
        var options = BeQuickImporter.Options()
        options.dryRun = true
        let result = try await BeQuickImporter().run(
            file: Self.samples.appendingPathComponent("subscriptions-clean.csv"), organizationSlug: "acme-mobile", options: options,
            settings: settings)
        #expect(result.count("subscribers")?.created == 8)
        #expect(try await Self.checksum(settings) == before)
        #expect(try await Probe.int(settings, "select count(*) from import_batches where file_name <> 'seed-export.csv'") == 0)
    }

    @Test("a file that cannot be read changes nothing; a bad row is kept with its line and reason")
    func malformed() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let folder = try TemporaryDirectory("bequick")
        defer { folder.remove() }
        let header = "external_id,email,first_name,last_name,status,plan_name,iccid,msisdn\n"
        let importer = BeQuickImporter()
        func attempt(_ name: String, _ contents: String) async -> String {
            do {
                _ = try await importer.run(file: try folder.write(name, contents), organizationSlug: "acme-mobile", settings: settings)
                return "imported"
            } catch {
                return String(describing: error)
            }
        }
        #expect(await attempt("empty.csv", "").contains("is empty"))
        #expect(await attempt("header.csv", header).contains("header but no rows"))
        #expect(
            await attempt("quote.csv", header + "E1,a@b.co,Al,Bo,active,5 GB,,3125550401\nE2,\"open,Al,Bo,active,5 GB,,3125550402\n")
                .contains("line 3: a quoted field is never closed"))
        #expect(await attempt("other.csv", "Phone,Sim\n1,2\n").contains("matches neither known BeQuick export"))
        #expect(try await Probe.int(settings, "select count(*) from import_batches where file_name <> 'seed-export.csv'") == 0)
        #expect(try await Probe.int(settings, "select count(*) from subscribers where external_id like 'E%'") == 0)

        // Wrong column count and invalid UTF-8: those rows are rejected with their line; the rest migrate.
        var bytes = Array((header + "E1,a@b.co,Al,Bo,active,5 GB,,3125550401\nE2,b@b.co,Al,active,5 GB,,3125550402\n").utf8)
        bytes +=
            Array("E3,c@b.co,".utf8) + [0xFF, 0xFE] + Array(",Bo,active,5 GB,,3125550403\nE4,d@b.co,Di,Bo,active,5 GB,,3125550404\n".utf8)
        let file = folder.url.appendingPathComponent("rows.csv")
        try Data(bytes).write(to: file)
        let result = try await importer.run(file: file, organizationSlug: "acme-mobile", settings: settings)
        #expect(result.unreadableRows == 2)
        let rejected = try await Probe.rows(
            settings,
            "select line_number::text, outcome::text, parse_error from import_rows where batch_id = '\(result.batchID)' and parse_error is not null order by 1"
        )
        #expect(rejected.map { [$0[0], $0[1]] } == [["3", "rejected"], ["4", "rejected"]])
        #expect(rejected[0][2]?.contains("7 fields where the header has 8") == true)
        #expect(rejected[1][2]?.contains("invalid UTF-8") == true)
        #expect(
            try await Probe.rows(settings, "select external_id from subscribers where external_id like 'E%' order by 1") == [
                ["E1"], ["E4"],
            ])
    }

    @Test("another layout imports through a mapping file")
    func mapped() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let folder = try TemporaryDirectory("bequick")
        defer { folder.remove() }
        let file = try folder.write(
            "crm.csv", "Customer No,Line No,Name,Cell,State,Plan\nC-1,L-1,Jo Doe,312 555 0451,Active,Unlimited\n")
        var options = BeQuickImporter.Options()
        options.mapping = try ExportLayout.parseMapping(
            "account_ref = Customer No\nsubscriber_ref = Line No\naccount_name = Name\nmdn = Cell\nstatus = State\nplan_name = Plan\n")
        let result = try await BeQuickImporter().run(file: file, organizationSlug: "acme-mobile", options: options, settings: settings)
        #expect(result.shape == .mapped)
        #expect(
            try await Probe.rows(
                settings,
                "select a.external_id, a.name, s.mdn from subscribers s join accounts a on a.id = s.account_id where s.external_id = 'L-1'")
                == [["C-1", "Jo Doe", "+13125550451"]])
        #expect(result.issues.map(\.type) == ["missing_iccid"])
    }
}
