import Foundation
import Testing
import WingtelDatabase
import WingtelDemo
import WingtelTestSupport

@Suite("The demo data generator")
struct DemoGeneratorTests {
    static let asOf = ISO8601DateFormatter().date(from: "2026-11-24T00:00:00Z")!
    static let tables = [
        "accounts", "sim_cards", "devices", "subscribers", "subscriptions", "port_requests", "subscriber_events", "usage_daily",
        "invoices", "payments", "wallet_transactions", "sms_messages", "sms_opt_outs",
    ]
    /// Columns that differ between two loads of the same data: load times and generated ids.
    static let volatileColumns: [String: String] = [
        "subscriber_events": "array['id', 'created_at', 'updated_at']",
        "invoices": "array['id', 'bill_run_id', 'created_at', 'updated_at']",
        "payments": "array['id', 'created_at']",
        "wallet_transactions": "array['id', 'invoice_id', 'payment_id', 'created_at']",
    ]

    /// A checksum of each table's demo rows. Left out: load-time columns, and the identity id of events.
    static func checksums(_ settings: ConnectionSettings, slug: String) async throws -> [String] {
        var sums: [String] = []
        for table in tables {
            let excluded = Self.volatileColumns[table] ?? "array['created_at', 'updated_at']"
            // The closing dunning run suspends lines through the lifecycle, which stamps its events with the real time.
            let filter = table == "subscriber_events" ? "and t.kind <> 'suspend_requested'" : ""
            let rows = try await Probe.rows(
                settings,
                """
                select md5(string_agg(r, '|' order by r)) from (
                  select (to_jsonb(t) - \(excluded))::text as r
                  from public.\(table) t where t.organization_id = (select id from public.organizations where slug = '\(slug)') \(filter)) x
                """)
            sums.append(rows.first?.first.flatMap { $0 } ?? "")
        }
        return sums
    }

    @Test("the same seed gives the same data; another seed gives other data")
    func deterministic() async throws {
        let options = DemoGenerator.Options(slug: "det-demo", subscribers: 150, months: 2, seed: 7, asOf: Self.asOf)
        let first = try await TestCluster.shared.migratedDatabase()
        let second = try await TestCluster.shared.migratedDatabase()
        let third = try await TestCluster.shared.migratedDatabase()
        _ = try await DemoGenerator(options: options).run(first)
        _ = try await DemoGenerator(options: options).run(second)
        var other = options
        other.seed = 8
        _ = try await DemoGenerator(options: other).run(third)
        let a = try await Self.checksums(first, slug: "det-demo")
        let b = try await Self.checksums(second, slug: "det-demo")
        let c = try await Self.checksums(third, slug: "det-demo")
        #expect(a == b)
        #expect(!a.contains(""))
        #expect(a != c)
        // A second demo organization with the same seed fits beside the first (auth.users is global).
        var twin = options
        twin.slug = "det-twin"
        _ = try await DemoGenerator(options: twin).run(first)
        #expect(try await Probe.int(first, "select count(*) from organizations where slug in ('det-demo', 'det-twin')") == 2)
    }

    @Test("the data has the documented shape: overage and light users, heavy tails, churn, dunning")
    func sanity() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let summary = try await DemoGenerator(options: .init(slug: "shape-demo", subscribers: 1_000, months: 6, seed: 42, asOf: Self.asOf))
            .run(settings)
        #expect(summary.rows.first { $0.table == "subscribers" }?.count == 1_000)
        let shape = try await Probe.rows(
            settings,
            """
            with org as (select id from organizations where slug = 'shape-demo'),
            monthly as (
              select d.subscriber_id, date_trunc('month', d.day) as month, sum(d.data_bytes) / 1048576.0 as mb
              from usage_daily d where d.organization_id = (select id from org) and d.day >= date '2026-06-01' and d.day < date '2026-11-01'
              group by 1, 2),
            plan_then as (
              select s.subscriber_id, p.data_mb from subscriptions s join plans p on p.organization_id = s.organization_id and p.id = s.plan_id
              where s.organization_id = (select id from org) and s.effective @> timestamptz '2026-08-15')
            select round(100.0 * avg((mb > data_mb)::int))::text, round(100.0 * avg((mb < 0.2 * data_mb)::int))::text,
                   (percentile_cont(0.95) within group (order by mb) / percentile_cont(0.5) within group (order by mb) > 2)::text
            from monthly join plan_then using (subscriber_id) where data_mb is not null
            """)
        let over = Double(shape[0][0]!)!
        let light = Double(shape[0][1]!)!
        #expect((5...25).contains(over), "share of line-months over the allowance: \(over)%")
        #expect((5...25).contains(light), "share of line-months under 20% of it: \(light)%")
        #expect(shape[0][2] == "true", "usage is heavy-tailed (p95 more than twice the median)")
        let churn = try await Probe.int(
            settings,
            "select round(100.0 * avg((status = 'cancelled')::int)) from subscribers where organization_id = (select id from organizations where slug = 'shape-demo')"
        )
        #expect((6...18).contains(churn), "about 2% of lines leave each month: \(churn)% over six months")
        let weekend = try await Probe.rows(
            settings,
            """
            select (avg(data_bytes) filter (where extract(isodow from day) >= 6) / avg(data_bytes) filter (where extract(isodow from day) < 6))::numeric(4,2)::text
            from usage_daily where organization_id = (select id from organizations where slug = 'shape-demo')
            """)
        #expect((1.05...1.25).contains(Double(weekend[0][0]!)!), "weekends use about 15% more data")
        // Billing history: monthly bill runs, card failures, a few invoices never paid.
        let billing = try await Probe.rows(
            settings,
            """
            with org as (select id from organizations where slug = 'shape-demo')
            select (select count(distinct billing_month) from invoices where organization_id = (select id from org))::text,
                   (select round(100.0 * avg((status = 'failed')::int)) from payments where organization_id = (select id from org))::text,
                   (select round(100.0 * avg((status in ('past_due', 'written_off'))::int), 1) from invoices
                     where organization_id = (select id from org) and billing_month < '2026-11-01')::text,
                   (select count(*) from dunning_events where organization_id = (select id from org) and step = 'suspended')::text,
                   (select count(*) from (select 1 from ledger_entries where organization_id = (select id from org)
                                          group by transaction_id having sum(amount_cents) <> 0) t)::text
            """)
        #expect(billing[0][0] == "6", "bill runs for June to November")
        #expect((5...20).contains(Int(billing[0][1]!)!), "card payments fail 5–20% of the time: \(billing[0][1]!)%")
        #expect((1...10).contains(Double(billing[0][2]!)!), "1–10% of invoices of past months are still unpaid: \(billing[0][2]!)%")
        #expect(Int(billing[0][3]!)! > 0, "dunning suspended someone")
        #expect(billing[0][4] == "0", "the ledger balances")
        // SMS: conversations of every kind, some questions still waiting for care.
        let sms = try await Probe.rows(
            settings,
            """
            with org as (select id from organizations where slug = 'shape-demo')
            select count(*) filter (where direction = 'inbound')::text,
                   count(distinct keyword) filter (where keyword is not null)::text,
                   (select count(*) from care_inbox where organization_id = (select id from org))::text,
                   (select count(*) from sms_opt_outs where organization_id = (select id from org))::text,
                   count(*) filter (where sent_by is not null)::text
            from sms_messages where organization_id = (select id from org)
            """)
        #expect(Int(sms[0][0]!)! >= 50, "inbound messages: \(sms[0][0]!)")
        #expect(sms[0][1] == "4", "HELP, BAL, USAGE and STOP all appear")
        #expect(Int(sms[0][2]!)! > 0 && Int(sms[0][4]!)! > 0, "some questions answered by an agent, some waiting")
        #expect(Int(sms[0][3]!)! > 0, "some numbers opted out")
        await #expect(throws: DemoGenerator.DemoError.self) {
            _ = try await DemoGenerator(options: .init(slug: "shape-demo", subscribers: 10, months: 1, seed: 1, asOf: Self.asOf)).run(
                settings)
        }
    }
}
