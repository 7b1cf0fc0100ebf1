import Foundation
import Testing
import WingtelDatabase
import WingtelTestSupport
import WingtelUsage

/// `wingtel usage ingest` end to end against the real database.
@Suite("Ingesting usage files")
struct UsageIngestTests {
    static let header = "mdn,recorded_at,kind,quantity,record_id\n"

    @Test("a file delivered twice counts once; unknown numbers and bad lines are quarantined with their line")
    func twice() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let folder = try TemporaryDirectory("usage")
        defer { folder.remove() }
        let file = try folder.write(
            "march.csv",
            Self.header + """
                3125550101,2026-03-01T10:00:00Z,data,1048576,m-1\r
                (312) 555-0101,2026-03-01T12:00:00Z,sms,2,m-2\r
                3125550188,2026-03-01T12:00:00Z,sms,1,m-3\r
                3125550101,2026-03-01T12:00:00Z,data,-1,m-4\r
                not,enough\r

                """)
        let ingestor = UsageIngestor()
        let first = try await ingestor.ingest(file: file, organizationSlug: "acme-mobile", source: "verizon", settings: settings)
        #expect((first.rowsTotal, first.rowsInserted, first.rowsDuplicate, first.rowsQuarantined) == (5, 2, 0, 3))
        let second = try await ingestor.ingest(file: file, organizationSlug: "acme-mobile", source: "verizon", settings: settings)
        #expect((second.rowsInserted, second.rowsDuplicate) == (0, 2))
        // Another source with the same record ids is another feed.
        let other = try await ingestor.ingest(file: file, organizationSlug: "acme-mobile", source: "verizon-realtime", settings: settings)
        #expect(other.rowsInserted == 2)

        #expect(
            try await Probe.rows(
                settings, "select line_number::text, reason from usage_quarantine where batch_id = '\(first.id)' order by line_number")
                == [
                    ["4", "no line with MDN 3125550188"], ["5", "negative quantity -1"],
                    ["6", "line 6: expected at least 5 columns, found 2"],
                ])
        #expect(
            try await Probe.rows(
                settings,
                "select data_bytes::text, sms_count::text from usage_daily where subscriber_id = '5b100000-0000-4000-8000-00000000000a' and day = '2026-03-01'"
            ) == [["2097152", "4"]])
        #expect(
            try await Probe.int(
                settings, "select count(*) from audit.entries where table_name = 'public.usage_batches' and actor_name = 'usage-ingest'")
                >= 3)
    }

    @Test("an unknown organization or a file without the columns is refused and writes nothing")
    func refused() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let folder = try TemporaryDirectory("usage")
        defer { folder.remove() }
        let good = try folder.write("ok.csv", Self.header + "3125550101,2026-03-01T10:00:00Z,data,1,x-1\n")
        await #expect {
            _ = try await UsageIngestor().ingest(file: good, organizationSlug: "no-such-org", source: "verizon", settings: settings)
        } throws: { "\($0)".contains("no organization with slug 'no-such-org'") }
        let bad = try folder.write("bad.csv", "number,when\n3125550101,2026-03-01T10:00:00Z\n")
        await #expect {
            _ = try await UsageIngestor().ingest(file: bad, organizationSlug: "acme-mobile", source: "verizon", settings: settings)
        } throws: { "\($0)".contains("bad.csv has no column mdn, recorded_at, kind, quantity, record_id") }
        #expect(try await Probe.int(settings, "select count(*) from usage_batches") == 2, "only the seed's batches")
    }
}
