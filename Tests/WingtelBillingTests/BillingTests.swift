import Foundation
import Logging
import PostgresNIO
import Testing
import WingtelBilling
import WingtelDatabase
import WingtelTestSupport

@Suite("Billing from Swift: concurrency, idempotency under load, reports")
struct BillingTests {
    static let logger = Logger(label: "wingtel.tests.billing")
    static let orgA = "10000000-0000-4000-8000-00000000000a"

    /// 40 accounts with one line each on DATA-5 ($25), billing day 1, no tax jurisdiction but the federal USF.
    static func addAccounts(_ settings: ConnectionSettings, count: Int = 40) async throws {
        try await Probe.execute(
            settings,
            """
            insert into public.accounts (organization_id, id, name, state, billing_day)
            select '\(orgA)', md5('bill-account' || g)::uuid, 'Account ' || lpad(g::text, 3, '0'), 'OR', 1 from generate_series(1, \(count)) g;
            insert into public.subscribers (organization_id, id, account_id, carrier_id, status, network_status)
            select '\(orgA)', md5('bill-line' || g)::uuid, md5('bill-account' || g)::uuid, 'ca200000-0000-4000-8000-00000000000a', 'active', 'active'
            from generate_series(1, \(count)) g;
            insert into public.subscriptions (organization_id, subscriber_id, plan_id, effective)
            select '\(orgA)', md5('bill-line' || g)::uuid, 'ba200000-0000-4000-8000-00000000000a', tstzrange('2027-12-01', null, '[)')
            from generate_series(1, \(count)) g;
            """)
    }

    static func billRun(_ settings: ConnectionSettings, month: String) async throws -> Int {
        try await Database.withIdentity(.service(name: "bill-runner"), on: settings, logger: logger) { connection in
            let rows = try await connection.query(
                "select invoices_created from public.run_bill_cycle(\(orgA)::uuid, \(month)::date, '2028-01-03 12:00-05')",
                logger: logger)
            var created = 0
            for try await n in rows.decode(Int.self) { created = n }
            return created
        }
    }

    @Test("two bill runs of one month at once, beside one that fails: every account billed once, numbers 1..n with no gap")
    func gaplessUnderConcurrency() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        try await Self.addAccounts(settings)
        // A run that numbers invoices and then fails (rolls back) must not leave a hole.
        async let failing: Void = {
            do {
                try await Database.withConnection(settings, logger: Self.logger) { connection in
                    try await connection.execute("begin", logger: Self.logger)
                    try await connection.execute(
                        "select public.run_bill_cycle('\(Self.orgA)', '2028-01-01', '2028-01-03 12:00-05')", logger: Self.logger)
                    try await connection.execute("select pg_sleep(0.3)", logger: Self.logger)
                    try await connection.execute("rollback", logger: Self.logger)
                }
            } catch {
                Issue.record("the failing run should only roll back: \(error)")
            }
        }()
        async let first = Self.billRun(settings, month: "2028-01-01")
        async let second = Self.billRun(settings, month: "2028-01-01")
        let (a, b, _) = try await (first, second, failing)
        #expect(a + b == 40, "40 accounts billed once between the two runs: \(a) + \(b)")
        #expect(min(a, b) == 0, "the run that waited found everything billed")
        let numbers = try await Probe.rows(
            settings, "select number::text from public.invoices where organization_id = '\(Self.orgA)' order by number"
        )
        .map { Int($0[0]!)! }.sorted()
        #expect(numbers == Array(1...41), "the seed's invoice 1, then 2…41 without a gap")
        #expect(
            try await Probe.int(settings, "select next_invoice_number from public.billing_policies where organization_id = '\(Self.orgA)'")
                == 42)
        let unbalanced = try await Probe.int(
            settings, "select count(*) from (select 1 from public.ledger_entries group by transaction_id having sum(amount_cents) <> 0) t")
        #expect(unbalanced == 0)
    }

    @Test("twenty identical payment deliveries at once record one payment and one ledger transaction")
    func concurrentDuplicatePayments() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let account = "ac000000-0000-4000-8000-00000000000b"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await Database.withIdentity(.service(name: "stripe-webhook"), on: settings, logger: Self.logger) { connection in
                        try await connection.run(
                            """
                            select public.record_payment('10000000-0000-4000-8000-00000000000b'::uuid, \(account)::uuid, 1500::bigint,
                                                         'evt_concurrent_1', 'card', 'stripe', 'pi_concurrent_1')
                            """, logger: Self.logger)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await Probe.int(settings, "select count(*) from public.payments where idempotency_key = 'evt_concurrent_1'") == 1)
        #expect(
            try await Probe.int(
                settings,
                "select count(distinct transaction_id) from public.ledger_entries e join public.payments p on p.id = e.payment_id where p.idempotency_key = 'evt_concurrent_1'"
            ) == 1)
        // B's seed invoice owed 3538; 1500 more is paid on it.
        #expect(try await Probe.int(settings, "select amount_paid_cents from public.invoices where account_id = '\(account)'") == 4500)
    }

    @Test("ten identical wallet top-ups at once credit once")
    func concurrentTopUps() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    try await Database.withIdentity(.service(name: "portal"), on: settings, logger: Self.logger) { connection in
                        try await connection.run(
                            "select public.top_up_wallet(\(Self.orgA)::uuid, 'ac100000-0000-4000-8000-00000000000a'::uuid, 2000::bigint, 'tap-twice')",
                            logger: Self.logger)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(
            try await Probe.int(
                settings,
                "select sum(amount_cents) from public.wallet_transactions where account_id = 'ac100000-0000-4000-8000-00000000000a'")
                == 2000)
    }

    @Test("wingtel bill run and report revenue through the library: summary, re-run, CSV of the seed's month")
    func runAndReport() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        try await Self.addAccounts(settings, count: 3)
        let billing = Billing(settings: settings, logger: Self.logger)
        let lines = LockedLines()
        let summary = try await billing.runBillCycle(
            organization: "acme-mobile", month: try BillingMonth("2028-01"), asOf: "2028-01-03T12:00:00-05:00", progress: lines.append)
        #expect(summary.invoicesCreated == 3)
        #expect(summary.accountsDue == 3, "the three billing-day-1 accounts; the seed's bill on the 5th and 15th")
        #expect(summary.firstInvoiceNumber == 2 && summary.lastInvoiceNumber == 4)
        // 3 x (2500 + USF 13.6% = 340) = 8520.
        #expect(summary.totalCents == 8520 && summary.taxCents == 1020)
        #expect(lines.all.first == "acme-mobile 2028-01: rating, invoicing and posting …", "a progress line before the run")
        let again = try await billing.runBillCycle(
            organization: "acme-mobile", month: try BillingMonth("2028-01"), asOf: "2028-01-03T12:00:00-05:00")
        #expect(again.invoicesCreated == 0 && again.totalCents == 0 && again.accountsDue == 0)

        let csv = try await billing.revenueCSV(organization: "acme-mobile", month: try BillingMonth("2026-02"))
        #expect(
            csv == """
                jurisdiction,invoices,recurring,usage,one_off,discounts,net_revenue,sales_tax,usf,e911,other_fees,billed
                "Cook, IL, US",1,30.00,0.00,25.00,0.00,55.00,4.40,7.48,1.50,0.00,68.38

                """)
        let html = try await billing.invoiceHTML(organization: "acme-mobile", number: "INV-000001")
        #expect(html.contains("<strong>$68.38</strong>") && html.contains("Activation fee"))
        await #expect(throws: BillingError.noInvoice("acme-mobile", "INV-999999")) {
            try await billing.invoiceHTML(organization: "acme-mobile", number: "INV-999999")
        }
        await #expect(throws: BillingError.unknownOrganization("nobody")) {
            try await billing.revenueCSV(organization: "nobody", month: try BillingMonth("2026-02"))
        }
    }

    @Test("wingtel bill autopay through the library: the past-due invoice of an autopay account is queued once")
    func autopay() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let billing = Billing(settings: settings, logger: Self.logger)
        #expect(try await billing.queueAutopay(organization: "bolt-wireless") == 0, "autopay is off in the seed")
        try await Probe.execute(
            settings, "select public.set_autopay('10000000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-00000000000b', true)")
        #expect(try await billing.queueAutopay(organization: "bolt-wireless") == 1)
        #expect(try await billing.queueAutopay(organization: "bolt-wireless") == 0)
        await #expect(throws: BillingError.unknownOrganization("nobody")) { try await billing.queueAutopay(organization: "nobody") }
    }

    @Test("billing months and CSV fields")
    func parsing() throws {
        #expect(try BillingMonth("2026-11").firstDay == "2026-11-01")
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-11-01"] {
            #expect(throws: BillingError.badMonth(bad)) { try BillingMonth(bad) }
        }
        #expect(CSV.row(["a", "b,c", "say \"hi\"", "x\ny"]) == "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"")
        #expect(CSV.money(-123) == "-1.23" && CSV.money(5) == "0.05" && CSV.money(123456) == "1234.56")
    }
}

/// Progress lines collected from another task.
final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }
    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}
