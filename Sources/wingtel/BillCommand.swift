import ArgumentParser
import Foundation
import WingtelBilling
import WingtelDatabase

struct BillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bill", abstract: "Bill runs, dunning, autopay and invoices.",
        subcommands: [BillRunCommand.self, BillDunningCommand.self, BillAutopayCommand.self, BillInvoiceCommand.self])
}

struct BillRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Invoice an organization's accounts for a billing month (run_bill_cycle).",
        discussion: """
            Bills every account whose cycle in the month has started (the cycle starts on the account's billing day) \
            and that has no invoice for the month yet: recurring charges for the cycle in advance, usage, prorations \
            and one-off charges of the cycle before in arrears, discounts, taxes and fees, the ledger, and wallet \
            balances applied. One transaction: a failure leaves nothing. Running it again changes nothing; running it \
            daily bills each account on its billing day. A month is closed once a later month has been billed.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Organization slug.") var org: String
    @Option(help: "Billing month, YYYY-MM.") var period: String
    @Option(name: .customLong("as-of"), help: "Bill as if it were this moment (ISO 8601; default now). For back-filling and tests.")
    var asOf: String?

    func run() async throws {
        let month = try BillingMonth(period)
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        let started = ContinuousClock.now
        let summary = try await Billing(settings: settings, logger: commandLogger).runBillCycle(
            organization: org, month: month, asOf: asOf, progress: note)
        let elapsed = ContinuousClock.now - started
        let numbers =
            summary.firstInvoiceNumber.map { first in "numbers \(first)–\(summary.lastInvoiceNumber ?? first)" } ?? "no numbers used"
        print(
            "Bill run \(summary.runID) for \(org) \(month): \(summary.invoicesCreated) invoice(s) (\(numbers)), total \(CSV.money(summary.totalCents)) incl. tax \(CSV.money(summary.taxCents)), in \(formatDuration(elapsed))."
        )
        if summary.accountsDue > summary.invoicesCreated {
            note("\(summary.accountsDue - summary.invoicesCreated) account(s) had nothing to bill (no live line, charge or credit).")
        }
        if summary.accountsDue == 0 {
            note("Nothing to bill: every account due in \(month) has its invoice already, or its cycle has not started.")
        }
    }
}

struct BillDunningCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dunning",
        abstract: "Run the dunning job: reminders, past due, suspension for non-payment, write-off, restore when paid.",
        discussion:
            "Schedule it daily (the server's scheduler, cron or pg_cron: select * from run_dunning(org_id)). Policy: billing_policies.")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Organization slug.") var org: String
    @Option(name: .customLong("as-of"), help: "Run as if it were this moment (ISO 8601; default now).") var asOf: String?

    func run() async throws {
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        let steps = try await Billing(settings: settings, logger: commandLogger).runDunning(organization: org, asOf: asOf)
        print("Dunning for \(org): " + steps.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + ".")
    }
}

struct BillAutopayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autopay",
        abstract: "Queue the autopay charges due: new invoices of autopay accounts, and retries after declines.",
        discussion: """
            The daily job the server's scheduler runs after the bill run (select queue_autopay_charges(org_id)). The \
            charges are sent by the payment worker of `wingtel serve` (STRIPE_SECRET_KEY, the ZIFT_* settings); see \
            them with: select status, count(*) from payment_charges group by status. Retry days: \
            billing_policies.autopay_retry_days (docs/BILLING.md, Autopay).
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Organization slug.") var org: String
    @Option(name: .customLong("as-of"), help: "Queue as if it were this moment (ISO 8601; default now).") var asOf: String?

    func run() async throws {
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        let queued = try await Billing(settings: settings, logger: commandLogger).queueAutopay(organization: org, asOf: asOf)
        print("Autopay for \(org): \(queued) charge(s) queued.")
        if queued > 0 { note("The payment worker of `wingtel serve` sends them (docs/API.md, The payment worker).") }
    }
}

struct BillInvoiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invoice", abstract: "Render an invoice as HTML (the customer portal's page).")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Organization slug.") var org: String
    @Argument(help: "Invoice number, as printed (INV-000042) or bare (42).") var number: String
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?

    func run() async throws {
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        let html = try await Billing(settings: settings, logger: commandLogger).invoiceHTML(organization: org, number: number)
        if let output {
            try html.write(toFile: output, atomically: true, encoding: .utf8)
            note("Wrote \(output).")
        } else {
            print(html, terminator: "")
        }
    }
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Finance reports as CSV.", subcommands: [RevenueReportCommand.self, AgingReportCommand.self])
}

struct RevenueReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revenue",
        abstract: "Month-end revenue and tax liability per jurisdiction (CSV, amounts in currency units).",
        discussion: "The same numbers as: select * from revenue_report(org_id, 'YYYY-MM-01').")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Organization slug.") var org: String
    @Option(help: "Billing month, YYYY-MM.") var period: String

    func run() async throws {
        let month = try BillingMonth(period)
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        print(try await Billing(settings: settings, logger: commandLogger).revenueCSV(organization: org, month: month), terminator: "")
    }
}

struct AgingReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aging", abstract: "Accounts-receivable aging per account (CSV, amounts in currency units).")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Organization slug.") var org: String
    @Option(name: .customLong("as-of"), help: "Age as of this date (YYYY-MM-DD; default today).") var asOf: String?

    func run() async throws {
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        print(try await Billing(settings: settings, logger: commandLogger).agingCSV(organization: org, asOf: asOf), terminator: "")
    }
}
