import ArgumentParser
import Foundation
import WingtelDatabase
import WingtelDemo

struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "seed", abstract: "Demo data.", subcommands: [SeedDemoCommand.self])
}

struct SeedDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract:
            "Load a deterministic demo MVNO (staff, catalog, accounts, lines, SIMs, devices, plan changes, ports, churn, daily usage, invoices, payments, dunning).",
        discussion: "The same --seed and --as-of give the same data. What the data does and does not represent: docs/DEMO_DATA.md.")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Slug of the organization to create.") var org = "acme-demo"
    @Option(help: "Number of lines.") var subscribers = 5_000
    @Option(help: "Months of history.") var months = 6
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(name: .customLong("as-of"), help: "Last day of the data, YYYY-MM-DD (default: today, UTC).") var asOf: String?
    @Flag(name: .customLong("if-missing"), help: "Do nothing (and succeed) when the organization already exists.") var ifMissing = false
    @Flag(name: .customLong("no-billing"), help: "Skip the billing history (bill runs, payments, top-ups, dunning).") var noBilling = false

    func run() async throws {
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        var day = Date()
        if let asOf {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate]
            guard let parsed = formatter.date(from: asOf) else { throw CommandFailure("--as-of must be YYYY-MM-DD, not '\(asOf)'") }
            day = parsed
        }
        let options = DemoGenerator.Options(
            slug: org, subscribers: subscribers, months: months, seed: seed, asOf: day, billing: !noBilling)
        let summary: DemoGenerator.Summary
        let started = ContinuousClock.now
        @Sendable func timed(_ line: String) {
            let elapsed = ContinuousClock.now - started
            note(String(format: "[%6.1f s] ", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) + line)
        }
        do {
            summary = try await DemoGenerator(options: options, logger: commandLogger).run(settings, progress: timed)
        } catch DemoGenerator.DemoError.exists(let slug) where ifMissing {
            note("The demo organization \(slug) is already loaded.")
            return
        }
        let total = summary.rows.reduce(0) { $0 + $1.count }
        print("Loaded \(org) in \(String(format: "%.1f", summary.seconds)) s (\(Int(Double(total) / max(summary.seconds, 0.001))) rows/s):")
        for (table, count) in summary.rows { print("  \(table.padding(toLength: 18, withPad: " ", startingAt: 0)) \(count)") }
        print("Logins (demo only; the local database has no auth server, so no passwords are set):")
        for login in summary.logins { print("  \(login.email) (\(login.role))") }
    }
}
