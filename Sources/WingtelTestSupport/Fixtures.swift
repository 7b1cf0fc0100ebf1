import Foundation
import Logging
import PostgresNIO
import WingtelDatabase

/// A directory under the system temporary folder, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let url: URL

    public init(_ label: String = "wingtel") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Writes `contents` to `relativePath`, creating folders as needed; returns the file's URL.
    @discardableResult
    public func write(_ relativePath: String, _ contents: String) throws -> URL {
        let file = url.appendingPathComponent(relativePath)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try contents.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Small read helpers for assertions against the real database.
public enum Probe {
    static let logger = Logger(label: "wingtel.tests.probe")

    /// Rows of a query, each column cast to text by the caller's SQL.
    public static func rows(_ settings: ConnectionSettings, _ sql: String) async throws -> [[String?]] {
        try await Database.withConnection(settings, logger: logger) { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            var values: [[String?]] = []
            for try await row in rows {
                let cells = row.makeRandomAccess()
                values.append(try (0..<cells.count).map { try cells[$0].decode(String?.self) })
            }
            return values
        }
    }

    /// A single integer (`count(*)`, `exists(…)::int`…).
    public static func int(_ settings: ConnectionSettings, _ sql: String) async throws -> Int {
        try await Database.withConnection(settings, logger: logger) { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: "select (\(sql))::int"), logger: logger)
            for try await value in rows.decode(Int.self) { return value }
            return 0
        }
    }

    /// Runs statements (a script) as the superuser.
    public static func execute(_ settings: ConnectionSettings, _ sql: String) async throws {
        try await Database.withConnection(settings, logger: logger) { connection in
            try await Database.runScript(sql, on: connection, logger: logger)
        }
    }
}
