import ArgumentParser
import Foundation
import WingtelDatabase
import WingtelImport

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Migrate data from other systems.", subcommands: [ImportBeQuickCommand.self])
}

struct ImportBeQuickCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bequick",
        abstract: "Import a BeQuick export: stage, validate and migrate subscribers (accounts, lines, SIMs, devices, plans).",
        discussion: """
            The file is recognised by its header (BeQuick's subscription export, or the staging shape with external_id, \
            msisdn, iccid, …); other layouts need --mapping. Every row is staged with its line number as one import batch, \
            validated (validate_import_data) and, unless --validate-only, migrated (migrate_subscriber_data) in one \
            transaction: rows with blocking issues are skipped and stay listed; the rest are created or updated by their \
            BeQuick ids, so importing the same file again changes nothing and a newer export applies its changes. \
            Every issue: select line_number, issue_type, message from import_issues where batch_id = '<batch>' order by 1. \
            Reconciliation: select * from migration_summary_report('<organization id>'). \
            Walkthrough: docs/migrating-from-bequick.md.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The export file (CSV, UTF-8).") var file: String
    @Option(help: "Organization slug.") var org: String
    @Flag(help: "Stage, validate and migrate, print what would happen, then roll everything back.") var dryRun = false
    @Flag(help: "Stage and validate only; keep the batch and its issues for review.") var validateOnly = false
    @Option(help: "Column mapping file: `wingtel_column = File header` per line (for other layouts).") var mapping: String?

    func run() async throws {
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        let url = URL(fileURLWithPath: file)
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw CommandFailure("cannot read \(file); check the path")
        }
        var options = BeQuickImporter.Options(dryRun: dryRun, validateOnly: validateOnly)
        if let mapping {
            guard let text = try? String(contentsOfFile: mapping, encoding: .utf8) else {
                throw CommandFailure("cannot read the mapping file \(mapping); check the path")
            }
            options.mapping = try ExportLayout.parseMapping(text)
        }
        note("Importing \(url.lastPathComponent) into \(org)\(dryRun ? " (dry run: nothing will be kept)" : "") …")
        let result = try await BeQuickImporter(logger: commandLogger).run(
            file: url, organizationSlug: org, options: options, settings: settings, progress: note)
        print("Batch \(result.batchID) (\(result.shape.rawValue)): \(result.rows) rows, \(result.unreadableRows) unreadable.")
        if result.issues.isEmpty {
            print("Validation: no issues.")
        } else {
            print("Validation:")
            for issue in result.issues {
                print("  \(issue.severity.padding(toLength: 8, withPad: " ", startingAt: 0))  \(issue.type): \(issue.count)")
                if let data = issue.samples.data(using: .utf8),
                    let samples = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
                {
                    for sample in samples.prefix(3) {
                        let line = (sample["line"] as? Int).map { "line \($0)" } ?? "—"
                        print("      \(line): \(sample["message"] as? String ?? "")")
                    }
                }
            }
        }
        if let migration = result.migration {
            print(result.dryRun ? "Would migrate:" : "Migrated:")
            for count in migration {
                let skipped = count.skipped.map { ", \($0) skipped" } ?? ""
                print(
                    "  \(count.entity.padding(toLength: 13, withPad: " ", startingAt: 0))  \(count.created) created, \(count.updated) updated, \(count.unchanged) unchanged\(skipped)"
                )
            }
        }
        let rate = Double(result.rows) / max(result.seconds, 0.001)
        print(String(format: "%@ in %.2f s (%.0f rows/s).", result.dryRun ? "Dry run rolled back" : "Done", result.seconds, rate))
        if result.blockingIssues > 0 && !result.dryRun {
            let consequence =
                result.migration == nil ? "those rows will not be migrated until they are fixed" : "those rows were not migrated"
            note(
                "\(result.blockingIssues) blocking issues: \(consequence). List them with: psql \"$(wingtel db url)\" -c \"select line_number, issue_type, message from import_issues where batch_id = '\(result.batchID)' and severity = 'blocking' order by line_number\"; fix the file and import it again."
            )
        }
    }
}
