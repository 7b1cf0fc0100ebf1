import Foundation
import Logging
import PostgresNIO
import WingtelDatabase

/// `wingtel gen swift`: introspect → model → render → write (or compare, with `--check`).
public struct Generator: Sendable {
    public var layout: ProjectLayout
    public var schemas: [String]
    public var logger: Logger

    public init(layout: ProjectLayout, schemas: [String] = ["public"], logger: Logger = Logger(label: "wingtel.codegen")) {
        self.layout = layout
        self.schemas = schemas
        self.logger = logger
    }

    public var outputDirectory: URL { layout.root.appendingPathComponent("Sources/WingtelClient/Generated") }
    public var queriesDirectory: URL { layout.sqlDirectory.appendingPathComponent("queries") }

    /// The model of the database behind `settings`.
    public func model(_ settings: ConnectionSettings) async throws -> CatalogModel {
        try await Database.withConnection(settings, logger: logger) { connection in
            let introspector = Introspector(schemas: schemas, logger: logger)
            var model = try await introspector.introspect(connection)
            let named = try await NamedQueryCompiler(logger: logger).compile(
                directory: queriesDirectory, connection: connection, introspector: introspector)
            model.queries = named.queries
            model.diagnostics = Array(Set(model.diagnostics + named.diagnostics)).sorted()
            return model
        }
    }

    public struct Outcome: Sendable {
        public var files: [String: String]
        public var changed: [String]
        public var diagnostics: [String]
    }

    /// Renders the files and compares them with what is on disk; writes them unless `check`.
    public func generate(_ settings: ConnectionSettings, check: Bool) async throws -> Outcome {
        let model = try await model(settings)
        let files = SwiftRenderer().render(model)
        var changed: [String] = []
        let existing = Set((try? FileManager.default.contentsOfDirectory(atPath: outputDirectory.path)) ?? [])
        for (name, contents) in files.sorted(by: { $0.key < $1.key }) {
            let url = outputDirectory.appendingPathComponent(name)
            if (try? String(contentsOf: url, encoding: .utf8)) != contents {
                changed.append(name)
                if !check {
                    try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
                    try contents.write(to: url, atomically: true, encoding: .utf8)
                }
            }
        }
        for stale in existing.subtracting(files.keys).sorted() where stale.hasSuffix(".swift") {
            changed.append(stale + " (no longer generated)")
            if !check { try FileManager.default.removeItem(at: outputDirectory.appendingPathComponent(stale)) }
        }
        return Outcome(files: files, changed: changed, diagnostics: model.diagnostics)
    }
}
