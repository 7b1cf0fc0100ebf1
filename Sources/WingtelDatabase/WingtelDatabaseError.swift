import Foundation
import PostgresNIO

/// Errors of the database layer. Each message says what went wrong and what to do next.
public enum WingtelDatabaseError: Error, CustomStringConvertible, Sendable {
    case invalidURL(String, reason: String)
    case unreachable(String, underlying: String)
    case noDatabaseConfigured
    case clusterNotRunning(String)
    case binariesNotFound(String)
    case pgvectorMissing(String)
    case pgtapMissing
    case commandFailed(command: String, status: Int32, output: String)
    case unprivilegedUserUnavailable(String)
    case sql(SQLFailure)

    public var description: String {
        switch self {
        case .invalidURL(let url, let reason):
            return "invalid database URL '\(url)': \(reason)"
        case .unreachable(let url, let underlying):
            return
                "cannot reach the database at \(url) (\(underlying)); check the URL and that the server is running, or start the local one with `wingtel db start`"
        case .noDatabaseConfigured:
            return "no database: pass --db-url, set DATABASE_URL, or start the local cluster with `wingtel db start`"
        case .clusterNotRunning(let root):
            return "the local cluster in \(root) is not running; start it with `wingtel db start`"
        case .binariesNotFound(let detail):
            return "no PostgreSQL binaries: \(detail)"
        case .pgvectorMissing(let binDir):
            return
                "the PostgreSQL in \(binDir) has no pgvector extension; unset WINGTEL_PG_BIN to use the bundled PostgreSQL 18 + pgvector, or install pgvector for that server"
        case .pgtapMissing:
            return
                "pgTAP is not installed; install it with `apt-get install postgresql-15-pgtap` (or run scripts/test, which does) and try again"
        case .commandFailed(let command, let status, let output):
            let tail = output.split(separator: "\n").suffix(15).joined(separator: "\n")
            return "`\(command)` failed with exit status \(status):\n\(tail)"
        case .unprivilegedUserUnavailable(let detail):
            return "PostgreSQL refuses to run as root and no unprivileged user could be used: \(detail)"
        case .sql(let failure):
            return failure.description
        }
    }
}

/// A statement the server refused, with what PostgreSQL said about it.
public struct SQLFailure: Error, CustomStringConvertible, Sendable {
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var hint: String?
    public var position: Int?
    public var context: String?

    public init(
        sqlState: String?, message: String, detail: String? = nil, hint: String? = nil, position: Int? = nil, context: String? = nil
    ) {
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.position = position
        self.context = context
    }

    /// Reads the server's fields out of a PostgresNIO error; nil for errors that did not come from the server.
    public init?(_ error: any Error) {
        guard let psql = error as? PSQLError, let info = psql.serverInfo else { return nil }
        self.sqlState = info[.sqlState]
        self.message = info[.message] ?? "unknown server error"
        self.detail = info[.detail]
        self.hint = info[.hint]
        self.position = info[.position].flatMap(Int.init)
        self.context = info[.locationContext]
    }

    public var description: String {
        var text = "ERROR"
        if let sqlState { text += " \(sqlState)" }
        text += ": \(message)"
        if let detail { text += "\nDETAIL: \(detail)" }
        if let hint { text += "\nHINT: \(hint)" }
        if let context { text += "\nCONTEXT: \(context)" }
        return text
    }
}

/// One line describing any error, with the server's SQLSTATE and message when there is one.
public func describeDatabaseError(_ error: any Error) -> String {
    if let failure = SQLFailure(error) { return failure.description }
    if let known = error as? WingtelDatabaseError { return known.description }
    if let psql = error as? PSQLError {
        if let underlying = psql.underlying {
            let text = String(describing: underlying)
            // NIO's connection errors nest; the operating system's words are the useful part.
            if let match = text.firstMatch(of: /: ([A-Z][A-Za-z ]+)\)* \(errno: (\d+)\)/) {
                return "\(match.1) (errno \(match.2))"
            }
            return "\(psql.code): \(text)"
        }
        return "\(psql.code)"
    }
    return String(describing: error)
}
