import Foundation
import Logging
import PostgresNIO

/// Opens connections and runs SQL scripts. A thin layer over PostgresNIO.
public enum Database {
    /// Connects, runs `body`, and closes the connection whatever happens.
    public static func withConnection<Result: Sendable>(
        _ settings: ConnectionSettings,
        logger: Logger = Logger(label: "wingtel.db"),
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let connection = try await connect(settings, logger: logger)
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Opens one connection; an unreachable server gives a message that says what to do.
    public static func connect(_ settings: ConnectionSettings, logger: Logger) async throws -> PostgresConnection {
        let configuration = try settings.postgresConfiguration()
        do {
            return try await PostgresConnection.connect(configuration: configuration, id: nextConnectionID(), logger: logger)
        } catch {
            if let failure = SQLFailure(error) {
                // The server answered (bad password, unknown database…): its words are the clearest.
                throw WingtelDatabaseError.unreachable(settings.redactedURL, underlying: failure.message)
            }
            throw WingtelDatabaseError.unreachable(settings.redactedURL, underlying: describeDatabaseError(error))
        }
    }

    /// Runs every statement of a script in order, on the given connection, outside any explicit transaction.
    public static func runScript(_ sql: String, on connection: PostgresConnection, logger: Logger) async throws {
        for statement in SQLSplitter.split(sql) where !SQLSplitter.isCommentOnly(statement) {
            try await connection.execute(statement, logger: logger)
        }
    }

    private static let counter = Counter()
    private static func nextConnectionID() -> Int { counter.next() }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int {
            lock.lock()
            defer { lock.unlock() }
            value += 1
            return value
        }
    }
}

extension PostgresConnection {
    /// Runs a statement whose rows are of no interest, reading them to the end: a statement
    /// that returns rows reports an error raised while it runs (in a function it calls, say)
    /// only as its rows are read.
    public func execute(_ sql: String, logger: Logger) async throws {
        try await self.run(PostgresQuery(unsafeSQL: sql), logger: logger)
    }

    /// Runs a query and reads its rows to the end, so that any error it raises is thrown here.
    public func run(_ query: PostgresQuery, logger: Logger) async throws {
        let rows = try await self.query(query, logger: logger)
        for try await _ in rows {}
    }
}
