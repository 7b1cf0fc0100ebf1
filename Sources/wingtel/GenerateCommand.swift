import ArgumentParser
import Foundation
import WingtelCodegen
import WingtelDatabase

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen", abstract: "Generate code from the database.", subcommands: [GenerateSwiftCommand.self])
}

struct GenerateSwiftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swift",
        abstract: "Regenerate the typed Swift client (Sources/WingtelClient/Generated) from the database and sql/queries.",
        discussion: """
            Introspects the exposed schemas (tables, views, enums, composite types, functions) and prepares every \
            named query in sql/queries against the database. Run it against a database with every migration applied \
            (the local cluster after `wingtel db push`).
            """)

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Change nothing; fail when the committed files differ from what the database gives.") var check = false
    @Option(help: "Exposed schemas, comma-separated.") var schemas = "public"

    func run() async throws {
        let layout = ProjectLayout.discover()
        let settings = try connection.resolve(layout: layout)
        let generator = Generator(
            layout: layout, schemas: schemas.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }, logger: commandLogger)
        let outcome = try await generator.generate(settings, check: check)
        for diagnostic in outcome.diagnostics { note("warning: \(diagnostic)") }
        if check {
            if outcome.changed.isEmpty {
                note("The generated Swift client is up to date (\(outcome.files.count) files).")
                return
            }
            throw CommandFailure(
                "the generated Swift client is stale: \(outcome.changed.joined(separator: ", ")); run `wingtel gen swift` and commit the result"
            )
        }
        note(
            outcome.changed.isEmpty
                ? "Nothing changed." : "Wrote \(outcome.changed.joined(separator: ", ")) in \(generator.outputDirectory.path).")
    }
}
