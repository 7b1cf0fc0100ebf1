import Foundation
import Logging
import PostgresNIO
import WingtelDatabase

/// The demo's billing history, made by the billing functions themselves: tax rates for the
/// demo's ten cities, then for each month of the window a bill run at the month's end,
/// card payments with realistic failures (churn-bound accounts fail far more often), a few
/// wallet top-ups, and one dunning run at the end. Outcomes come from a hash of the account,
/// the month and the seed, so the same seed gives the same invoices and payments.
extension DemoGenerator {
    /// Sales tax (state + county, percent) and the 911 fee (cents per line) of each demo city:
    /// illustrative rates, not a tax service.
    static let taxes: [(state: String, county: String, statePercent: Double, countyPercent: Double, e911: Int)] = [
        ("IL", "Cook", 6.25, 1.75, 150), ("NY", "Kings", 4.0, 4.5, 120), ("TX", "Harris", 6.25, 1.0, 50),
        ("CA", "Los Angeles", 7.25, 2.25, 30), ("FL", "Miami-Dade", 6.0, 1.0, 40), ("WA", "King", 6.5, 3.6, 95),
        ("CO", "Denver", 2.9, 4.81, 70), ("GA", "Fulton", 4.0, 3.75, 150), ("OR", "Multnomah", 0, 0, 75),
        ("TN", "Davidson", 7.0, 2.25, 116),
    ]

    struct BillingHistory {
        var invoices = 0
        var payments = 0
        var failedPayments = 0
        var topUps = 0
    }

    func loadBillingHistory(
        on connection: PostgresConnection, organization org: UUID, from windowStart: Date, to end: Date,
        progress: @escaping @Sendable (String) -> Void
    ) async throws -> BillingHistory {
        var history = BillingHistory()
        try await connection.run(
            "insert into public.billing_policies (organization_id) values (\(org)) on conflict do nothing", logger: logger)
        try await connection.run(
            """
            insert into public.tax_rates (organization_id, code, name, kind, percent)
            values (\(org), 'US-USF', 'Federal Universal Service Fund', 'usf', 13.6)
            """, logger: logger)
        for tax in Self.taxes {
            if tax.statePercent > 0 {
                try await connection.run(
                    """
                    insert into public.tax_rates (organization_id, code, name, kind, state, percent)
                    values (\(org), \(tax.state + "-SALES"), \(tax.state + " sales tax"), 'sales_tax', \(tax.state), \(tax.statePercent)::numeric)
                    """, logger: logger)
            }
            if tax.countyPercent > 0 {
                try await connection.run(
                    """
                    insert into public.tax_rates (organization_id, code, name, kind, state, county, percent)
                    values (\(org), \(tax.state + "-" + tax.county.uppercased()), \(tax.county + " County tax"), 'sales_tax', \(tax.state),
                            \(tax.county), \(tax.countyPercent)::numeric)
                    """, logger: logger)
            }
            try await connection.run(
                """
                insert into public.tax_rates (organization_id, code, name, kind, state, per_line_cents)
                values (\(org), \(tax.state + "-E911"), \(tax.state + " 911 fee"), 'e911', \(tax.state), \(tax.e911))
                """, logger: logger)
        }

        // Cards on file (Stripe tokens, as Elements would have saved them): 72% of accounts, three
        // in four of those on autopay.
        let cardSeed = Int64(bitPattern: options.seed)
        try await connection.run(
            """
            insert into public.payment_methods (organization_id, account_id, provider, token, provider_customer_id, brand, last4, exp_month,
                                                exp_year, is_default, created_at)
            select a.organization_id, a.id, 'stripe',
                   'pm_demo' || translate(left(md5(a.id::text || 'pm' || \(cardSeed)::text), 20), '0123456789', 'ghijklmnop'),
                   'cus_demo' || translate(left(md5(a.id::text || 'cus' || \(cardSeed)::text), 14), '0123456789', 'ghijklmnop'),
                   (array['visa', 'mastercard', 'amex', 'discover'])[1 + a.h % 4], lpad((a.h % 10000)::text, 4, '0'), 1 + a.h % 12,
                   2027 + a.h % 4, true, a.created_at
            from (select x.*, abs(hashtext(x.id::text || 'card' || \(cardSeed)::text)) as h from public.accounts x where x.organization_id = \(org)) a
            where a.h % 100 < 72
            """, logger: logger)
        try await connection.run(
            """
            update public.accounts a set autopay = true
            where a.organization_id = \(org) and abs(hashtext(a.id::text || 'autopay' || \(cardSeed)::text)) % 4 < 3
              and exists (select 1 from public.payment_methods m where m.organization_id = a.organization_id and m.account_id = a.id)
            """, logger: logger)

        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var month = calendar.date(from: calendar.dateComponents([.year, .month], from: windowStart))!
        month = calendar.date(byAdding: .month, value: 1, to: month)!  // the window's first whole month
        let seed = Int64(bitPattern: options.seed)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        try await connection.run(
            """
            create temp table payment_batch (account_id uuid, invoice_id uuid, amount_cents bigint, idempotency_key text, method text,
              provider text, provider_payment_id text, succeeded boolean, failure_code text, failure_message text, received_at timestamptz)
              on commit drop
            """, logger: logger)
        // The lines, plans and usage were loaded in this transaction: the bill run needs their statistics.
        try await connection.run(
            "analyze public.accounts, public.subscribers, public.subscriptions, public.subscriber_add_ons, public.usage_daily",
            logger: logger)
        while month <= end {
            let next = calendar.date(byAdding: .month, value: 1, to: month)!
            // Bill as of the month's last moment (or the demo's end, for the current month).
            let asOf = min(next.addingTimeInterval(-1), end)
            let monthText = formatter.string(from: month)
            // A few prepaid customers top up their wallets at the start of the month.
            let topUps = try await connection.query(
                """
                select count(public.top_up_wallet(a.organization_id, a.id, 1000 + 1000 * (abs(hashtext(a.id::text || \(monthText) || \(seed)::text)) % 4),
                                                  'demo-top-up-' || a.external_id || '-' || \(monthText)))::int
                from public.accounts a
                where a.organization_id = \(org) and abs(hashtext(a.id::text || 'wallet' || \(seed)::text)) % 100 < 3
                """, logger: logger)
            for try await count in topUps.decode(Int.self) { history.topUps += count }

            let run = try await connection.query(
                "select invoices_created from public.run_bill_cycle(\(org), \(monthText)::date, \(asOf))", logger: logger)
            for try await count in run.decode(Int.self) { history.invoices += count }
            // The whole load is one transaction, so autovacuum never sees these tables grow: fresh
            // statistics before the payments, so they are planned for the invoices just made.
            try await connection.run("analyze public.invoices, public.invoice_lines, public.ledger_entries", logger: logger)

            // Card payments: most succeed the day after the invoice; some fail first and succeed
            // five days later; a few fail and are never paid (dunning). Accounts with a cancelled
            // line (churners) fail five times as often.
            // The month's attempts go in set-based (record_payments_in_bulk): one statement per table,
            // not one record_payment call per attempt.
            try await connection.run("truncate pg_temp.payment_batch", logger: logger)
            try await connection.run(
                """
                with due as (
                  select i.id, i.account_id, i.display_number, i.issued_on,
                         i.total_cents - i.amount_paid_cents - i.amount_credited_cents as owed,
                         (abs(hashtext(i.account_id::text || \(monthText) || \(seed)::text)) % 10000) / 10000.0 as r,
                         exists (select 1 from public.subscribers l where l.organization_id = i.organization_id and l.account_id = i.account_id
                                   and l.status = 'cancelled') as churning
                  from public.invoices i
                  where i.organization_id = \(org) and i.billing_month = \(monthText)::date and i.status in ('open', 'past_due')
                ), attempts as (
                  select d.*, a.attempt, a.ok, a.after_days
                  from due d
                  cross join lateral (values
                    (1, d.r >= case when d.churning then 0.30 else 0.06 end, 1),
                    (2, true, 6)) as a (attempt, ok, after_days)
                  where a.attempt = 1 or (d.r < case when d.churning then 0.30 else 0.06 end
                                          and d.r >= case when d.churning then 0.15 else 0.02 end)
                )
                insert into pg_temp.payment_batch (account_id, invoice_id, amount_cents, idempotency_key, method, provider, provider_payment_id,
                                                   succeeded, failure_code, failure_message, received_at)
                select t.account_id, t.id, t.owed, 'demo-' || t.display_number || '-' || t.attempt, 'card', 'stripe',
                       'ch_demo_' || t.display_number || '_' || t.attempt, t.ok,
                       case when not t.ok then (array['card_declined', 'insufficient_funds', 'expired_card'])[1 + (t.r * 1000)::int % 3] end,
                       case when not t.ok then 'The card was declined.' end,
                       (t.issued_on + t.after_days)::timestamp + interval '14 hours'
                from attempts t
                where (t.issued_on + t.after_days)::timestamp + interval '14 hours' <= \(end)::timestamptz
                """, logger: logger)
            let payments = try await connection.query(
                "select succeeded, failed from public.record_payments_in_bulk(\(org))", logger: logger)
            for try await (succeeded, failed) in payments.decode((Int, Int).self) {
                history.payments += succeeded
                history.failedPayments += failed
            }
            progress("  billing \(monthText.prefix(7)): \(history.invoices) invoices, \(history.payments) payments so far")
            // Fresh statistics each month keep the billing functions' plans on their indexes
            // (without this each month took longer than the one before).
            try await connection.run(
                "analyze public.invoices, public.invoice_lines, public.payments, public.ledger_entries, public.wallet_transactions, public.usage_daily",
                logger: logger)
            month = next
        }
        // Dunning once, as of the end: reminders, past due, suspension for non-payment, write-off.
        try await connection.run("select count(*) from public.run_dunning(\(org), \(end))", logger: logger)
        return history
    }
}
