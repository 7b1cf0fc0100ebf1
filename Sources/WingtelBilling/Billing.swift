import Foundation
import Logging
import PostgresNIO
import WingtelDatabase

/// A billing month as the CLI names it (`2026-11`), checked before it reaches the database.
public struct BillingMonth: Sendable, Equatable, CustomStringConvertible {
    public let year: Int
    public let month: Int

    public init(_ text: String) throws {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), (1...12).contains(month), year >= 2000
        else {
            throw BillingError.badMonth(text)
        }
        self.year = year
        self.month = month
    }

    /// The first day of the month, as PostgreSQL reads a date.
    public var firstDay: String { String(format: "%04d-%02d-01", year, month) }
    public var description: String { String(format: "%04d-%02d", year, month) }
}

public enum BillingError: Error, CustomStringConvertible, Equatable {
    case badMonth(String)
    case unknownOrganization(String)
    case noInvoice(String, String)

    public var description: String {
        switch self {
        case .badMonth(let text):
            return "'\(text)' is not a billing month; write it as YYYY-MM, for example 2026-11"
        case .unknownOrganization(let slug):
            return "no organization with slug '\(slug)'; list them with: psql \"$(wingtel db url)\" -c 'select slug from organizations'"
        case .noInvoice(let slug, let number):
            return "organization '\(slug)' has no invoice \(number); list them with: select display_number from invoices order by number"
        }
    }
}

/// What one call of run_bill_cycle did.
public struct BillRunSummary: Sendable, Equatable {
    public var runID: UUID
    public var invoicesCreated: Int
    public var firstInvoiceNumber: Int64?
    public var lastInvoiceNumber: Int64?
    public var totalCents: Int64
    public var taxCents: Int64
    public var accountsDue: Int
}

/// The billing operations behind `wingtel bill` and `wingtel report`: thin calls of the SQL
/// functions (the logic lives in the database), plus CSV and HTML output.
public struct Billing: Sendable {
    public let settings: ConnectionSettings
    public let logger: Logger

    public init(settings: ConnectionSettings, logger: Logger = Logger(label: "wingtel.billing")) {
        self.settings = settings
        self.logger = logger
    }

    static func organizationID(_ slug: String, on connection: PostgresConnection, logger: Logger) async throws -> UUID {
        let rows = try await connection.query("select id from public.organizations where slug = \(slug)", logger: logger)
        for try await id in rows.decode(UUID.self) { return id }
        throw BillingError.unknownOrganization(slug)
    }

    /// Runs the bill cycle of a month for an organization. `progress` receives a line every
    /// couple of seconds while the database works (the run is one transaction).
    public func runBillCycle(
        organization slug: String, month: BillingMonth, asOf: String? = nil,
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> BillRunSummary {
        try await Database.withConnection(settings, logger: logger) { connection in
            let org = try await Self.organizationID(slug, on: connection, logger: logger)
            progress("\(slug) \(month): rating, invoicing and posting …")

            let started = ContinuousClock.now
            let ticker = Task {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(2))
                    progress("\(slug) \(month): working, \(Int((ContinuousClock.now - started).components.seconds)) s …")
                }
            }
            defer { ticker.cancel() }
            let rows = try await connection.query(
                """
                select r.id, r.invoices_created, r.first_invoice_number, r.last_invoice_number, r.total_cents, r.tax_cents, r.accounts_due
                from public.run_bill_cycle(\(org), \(month.firstDay)::date, coalesce(\(asOf)::timestamptz, now())) r
                """, logger: logger)
            for try await (id, invoices, first, last, total, tax, due) in rows.decode((UUID, Int, Int64?, Int64?, Int64, Int64, Int).self) {
                return BillRunSummary(
                    runID: id, invoicesCreated: invoices, firstInvoiceNumber: first, lastInvoiceNumber: last,
                    totalCents: total, taxCents: tax, accountsDue: due)
            }
            throw BillingError.unknownOrganization(slug)
        }
    }

    /// Runs the dunning job; returns (step, invoices) pairs.
    public func runDunning(organization slug: String, asOf: String? = nil) async throws -> [(String, Int)] {
        try await Database.withConnection(settings, logger: logger) { connection in
            let org = try await Self.organizationID(slug, on: connection, logger: logger)
            let rows = try await connection.query(
                "select step::text, invoices from public.run_dunning(\(org), coalesce(\(asOf)::timestamptz, now()))", logger: logger)
            var result: [(String, Int)] = []
            for try await (step, count) in rows.decode((String, Int).self) { result.append((step, count)) }
            return result
        }
    }

    /// Queues the autopay charges due (queue_autopay_charges): each issued, unsettled invoice of
    /// an autopay account, and the retries whose day has come; returns how many were queued.
    public func queueAutopay(organization slug: String, asOf: String? = nil) async throws -> Int {
        try await Database.withConnection(settings, logger: logger) { connection in
            let org = try await Self.organizationID(slug, on: connection, logger: logger)
            let rows = try await connection.query(
                "select public.queue_autopay_charges(\(org), coalesce(\(asOf)::timestamptz, now()))", logger: logger)
            var queued = 0
            for try await count in rows.decode(Int.self) { queued = count }
            return queued
        }
    }

    /// The month-end revenue and tax report per jurisdiction, as CSV (header first).
    public func revenueCSV(organization slug: String, month: BillingMonth) async throws -> String {
        try await Database.withConnection(settings, logger: logger) { connection in
            let org = try await Self.organizationID(slug, on: connection, logger: logger)
            let rows = try await connection.query(
                """
                select jurisdiction, invoices, recurring_cents, usage_cents, one_off_cents, discount_cents, net_revenue_cents,
                       sales_tax_cents, usf_cents, e911_cents, other_fees_cents, billed_cents
                from public.revenue_report(\(org), \(month.firstDay)::date)
                """, logger: logger)
            var lines = [
                CSV.row([
                    "jurisdiction", "invoices", "recurring", "usage", "one_off", "discounts", "net_revenue", "sales_tax",
                    "usf", "e911", "other_fees", "billed",
                ])
            ]
            typealias Row = (String, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64)
            for try await r in rows.decode(Row.self) {
                lines.append(
                    CSV.row(
                        [r.0, String(r.1)] + [r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11].map(CSV.money)))
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }

    /// Accounts-receivable aging per account as of a date (default today), as CSV.
    public func agingCSV(organization slug: String, asOf: String? = nil) async throws -> String {
        try await Database.withConnection(settings, logger: logger) { connection in
            let org = try await Self.organizationID(slug, on: connection, logger: logger)
            let rows = try await connection.query(
                """
                select account_id::text, account_name, invoices, current_cents, days_1_30_cents, days_31_60_cents,
                       days_61_90_cents, days_over_90_cents, total_cents
                from public.ar_aging(\(org), coalesce(\(asOf)::date, current_date))
                """, logger: logger)
            var lines = [
                CSV.row(["account_id", "account", "invoices", "current", "1_30", "31_60", "61_90", "over_90", "total"])
            ]
            typealias Row = (String, String, Int64, Int64, Int64, Int64, Int64, Int64, Int64)
            for try await r in rows.decode(Row.self) {
                lines.append(CSV.row([r.0, r.1, String(r.2)] + [r.3, r.4, r.5, r.6, r.7, r.8].map(CSV.money)))
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }

    /// One invoice as HTML (the same page the customer portal gets from invoice_html).
    public func invoiceHTML(organization slug: String, number: String) async throws -> String {
        try await Database.withConnection(settings, logger: logger) { connection in
            let org = try await Self.organizationID(slug, on: connection, logger: logger)
            let rows = try await connection.query(
                """
                select public.invoice_html(i.id) from public.invoices i
                where i.organization_id = \(org) and (i.display_number = \(number) or i.number::text = \(number))
                """, logger: logger)
            for try await html in rows.decode(String.self) { return html }
            throw BillingError.noInvoice(slug, number)
        }
    }
}

/// RFC 4180 CSV: fields with commas, quotes or line breaks are quoted, quotes doubled.
public enum CSV {
    public static func field(_ value: String) -> String {
        if value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return value
    }

    public static func row(_ values: [String]) -> String { values.map(field).joined(separator: ",") }

    /// Cents as a decimal amount with two places: -123 → "-1.23".
    public static func money(_ cents: Int64) -> String {
        let sign = cents < 0 ? "-" : ""
        let magnitude = cents.magnitude
        return "\(sign)\(magnitude / 100).\(String(format: "%02d", Int(magnitude % 100)))"
    }
}
