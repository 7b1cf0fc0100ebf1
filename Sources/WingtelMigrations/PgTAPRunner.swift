import Foundation
import Logging
import PostgresNIO
import WingtelDatabase

/// Runs `supabase/tests/*.sql` (pgTAP, as `supabase test db` does) and reads their TAP.
public struct PgTAPRunner: Sendable {
    public var logger: Logger

    public init(logger: Logger = Logger(label: "wingtel.pgtap")) {
        self.logger = logger
    }

    public struct FileResult: Sendable {
        public var file: String
        /// The TAP lines the file produced, in order.
        public var lines: [String]
        public var planned: Int?
        public var passed: Int
        public var failed: Int
        /// A statement that raised instead of reporting (the file stopped there).
        public var error: String?

        public var run: Int { passed + failed }
        public var succeeded: Bool {
            error == nil && failed == 0 && planned != nil && planned == run
        }

        /// Why the file failed, in one line.
        public var problem: String? {
            if let error { return "error: \(error)" }
            if failed > 0 { return "\(failed) of \(run) tests failed" }
            guard let planned else { return "no plan (call plan(n) or no_plan())" }
            if planned != run { return "planned \(planned) tests but ran \(run)" }
            return nil
        }
    }

    /// The `.sql` files of a pgTAP folder, in name order.
    public static func testFiles(in directory: URL) throws -> [URL] {
        guard FileManager.default.fileExists(atPath: directory.path) else {
            throw MigrationError.folderMissing(directory.path)
        }
        return try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".sql") }.sorted().map { directory.appendingPathComponent($0) }
    }

    /// Makes sure pgTAP is installed in the database (schema `extensions`, as on Supabase).
    public func ensurePgTAP(_ settings: ConnectionSettings) async throws {
        try await Database.withConnection(settings, logger: logger) { connection in
            let rows = try await connection.query(
                "select count(*)::int from pg_catalog.pg_available_extensions where name = 'pgtap'", logger: logger)
            for try await count in rows.decode(Int.self) where count == 0 {
                throw WingtelDatabaseError.pgtapMissing
            }
            try await connection.execute("create extension if not exists pgtap with schema extensions", logger: logger)
        }
    }

    /// Runs one file on its own connection. Only TAP lines are kept; other text rows
    /// (such as the result of `set_config`) are ignored, as TAP consumers ignore them.
    public func run(file: URL, on settings: ConnectionSettings) async throws -> FileResult {
        let text = try String(contentsOf: file, encoding: .utf8)
        var result = FileResult(file: file.lastPathComponent, lines: [], planned: nil, passed: 0, failed: 0, error: nil)
        try await Database.withConnection(settings, logger: logger) { connection in
            for statement in SQLSplitter.split(text) where !SQLSplitter.isCommentOnly(statement) {
                do {
                    let rows = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    for try await row in rows {
                        let cells = row.makeRandomAccess()
                        guard cells.count == 1, let value = try? cells[0].decode(String.self) else { continue }
                        for line in value.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
                            Self.absorb(line, into: &result)
                        }
                    }
                } catch {
                    result.error = describeDatabaseError(error)
                    try? await connection.execute("rollback", logger: logger)
                    return
                }
            }
        }
        return result
    }

    static func absorb(_ line: String, into result: inout FileResult) {
        if let match = line.wholeMatch(of: /1\.\.(\d+)/) {
            result.planned = Int(match.1)
            result.lines.append(line)
        } else if line.hasPrefix("ok ") || line == "ok" {
            result.passed += 1
            result.lines.append(line)
        } else if line.hasPrefix("not ok") {
            // A TODO test that fails does not fail the file.
            if line.range(of: "# TODO", options: .caseInsensitive) != nil { result.passed += 1 } else { result.failed += 1 }
            result.lines.append(line)
        } else if line.hasPrefix("#") {
            result.lines.append(line)
        }
    }
}
