import ArgumentParser
import Foundation
import WingtelDatabase
import WingtelUsage

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage", abstract: "Usage (CDR) ingestion.", subcommands: [UsageIngestCommand.self])
}

struct UsageIngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Load a carrier usage file (CSV: mdn, recorded_at, kind, quantity, record_id).",
        discussion: """
            The file streams into the database with COPY; ingest_usage then resolves each MDN to its line, ignores \
            records already loaded (same source, record id and start time), quarantines what cannot be taken with the \
            reason — all in one transaction — then adds the new records to the daily rollups in a second one (if that \
            step never runs, `select roll_up_usage(<organization id>)` or the next bill run does it). Quarantined rows: \
            select line_number, reason from usage_quarantine where batch_id = '<batch id>'.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The usage file.") var file: String
    @Option(help: "Organization slug.") var org: String
    @Option(help: "Where the file comes from (verizon, att, tmobile, or a feed name); part of the de-duplication key.") var source: String

    func run() async throws {
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        let url = URL(fileURLWithPath: file)
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw CommandFailure("cannot read \(file); check the path")
        }
        let started = ContinuousClock.now
        note("Loading \(url.lastPathComponent) into \(org) (source \(source)) …")
        let summary = try await UsageIngestor(logger: commandLogger).ingest(
            file: url, organizationSlug: org, source: source, settings: settings, progress: note)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let records = seconds - (summary.rollupSeconds ?? 0)  // from the command's start to the records' commit
        print(
            "Batch \(summary.id): \(summary.rowsTotal) rows — \(summary.rowsInserted) new, \(summary.rowsDuplicate) already loaded, \(summary.rowsQuarantined) quarantined — in \(formatDuration(elapsed)) (\(Int(Double(summary.rowsTotal) / max(seconds, 0.001))) rows/s)."
        )
        print(
            String(
                format: "  records committed after %.2f s (%.0f rows/s); daily rollups %.2f s", records,
                Double(summary.rowsTotal) / max(records, 0.001), summary.rollupSeconds ?? 0))
    }
}
