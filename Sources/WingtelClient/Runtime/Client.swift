import Foundation
import Logging
import PostgresNIO
import WingtelDatabase

/// A function argument as the generated code describes it.
public struct WingtelArgument: Sendable, Hashable {
    public var name: String
    public var sqlType: String
    public var hasDefault: Bool
    public init(name: String, sqlType: String, hasDefault: Bool) {
        self.name = name
        self.sqlType = sqlType
        self.hasDefault = hasDefault
    }
}

public enum WingtelReturnShape: Sendable { case none, single, set, rows }
public enum WingtelQueryKind: String, Sendable { case one, many, exec, execrows }

/// A generated table: its rows, the values of a new row, and updates/filters.
public protocol WingtelTable {
    associatedtype Row: Codable & Sendable
    associatedtype Insert: Codable & Sendable
    associatedtype Update: Codable & Sendable
    static var qualifiedName: String { get }
}

/// A generated view.
public protocol WingtelView {
    associatedtype Row: Codable & Sendable
    static var qualifiedName: String { get }
}

/// A generated call of a SQL function; its stored properties are the arguments.
public protocol WingtelFunction: Codable, Sendable {
    associatedtype Output: Decodable & Sendable
    static var qualifiedName: String { get }
    static var arguments: [WingtelArgument] { get }
    static var returns: WingtelReturnShape { get }
}

/// A generated named query from sql/queries.
public protocol WingtelQuery: Codable, Sendable {
    associatedtype Output: Decodable & Sendable
    static var kind: WingtelQueryKind { get }
    static var sql: String { get }
}

/// Errors of the client itself (the database's own errors arrive as PostgresNIO errors).
public enum WingtelClientError: Error, CustomStringConvertible, Sendable {
    case notAnObject(String)
    case noRow(String)
    public var description: String {
        switch self {
        case .notAnObject(let what): return "\(what) must encode to a JSON object"
        case .noRow(let what): return "\(what) returned no row"
        }
    }
}

/// The generated client's entry point: runs generated calls as a user, anon or a service,
/// each session one transaction (see DatabaseIdentity).
public struct WingtelClient: Sendable {
    public var settings: ConnectionSettings
    public var logger: Logger

    public init(settings: ConnectionSettings, logger: Logger = Logger(label: "wingtel.client")) {
        self.settings = settings
        self.logger = logger
    }

    public func session<Result: Sendable>(
        as identity: DatabaseIdentity, requestID: String? = nil, _ body: (WingtelSession) async throws -> Result
    ) async throws -> Result {
        try await Database.withIdentity(identity, on: settings, requestID: requestID, logger: logger) { connection in
            try await body(WingtelSession(connection: connection, logger: logger))
        }
    }
}

/// Generated calls on one connection, inside the identity's transaction. Values travel as
/// JSON, typed by the table's or function's own column types (`jsonb_populate_record`,
/// `jsonb_to_record`), and rows come back through `to_jsonb` — the shape PostgREST returns,
/// so the same Codable types serve supabase-swift.
public struct WingtelSession: Sendable {
    public let connection: PostgresConnection
    let logger: Logger

    static func quote(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
    static func qualified(_ name: String) -> String { name.split(separator: ".").map { quote(String($0)) }.joined(separator: ".") }

    func json<T: Encodable>(_ value: T, what: String) throws -> (text: String, keys: [String]) {
        let data = try WingtelJSON.encoder().encode(value)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw WingtelClientError.notAnObject(what)
        }
        return (String(decoding: data, as: UTF8.self), object.keys.sorted())
    }

    func rows<T: Decodable>(_ query: PostgresQuery, as type: T.Type) async throws -> [T] {
        let result = try await connection.query(query, logger: logger)
        let decoder = WingtelJSON.decoder()
        var values: [T] = []
        for try await text in result.decode(String.self) {
            values.append(try decoder.decode(T.self, from: Data(text.utf8)))
        }
        return values
    }

    func whereClause(_ keys: [String], record: String) -> String {
        keys.isEmpty ? "true" : keys.map { "t.\(Self.quote($0)) = \(record).\(Self.quote($0))" }.joined(separator: " and ")
    }

    /// Rows matching the non-nil fields of `filter` (all rows when nil), as row-level security lets the identity see them.
    public func select<T: WingtelTable>(_ table: T.Type, where filter: T.Update? = nil, limit: Int? = nil) async throws -> [T.Row] {
        let (text, keys) = try filter.map { try json($0, what: "the filter") } ?? ("{}", [])
        let sql = """
            select to_jsonb(t)::text from \(Self.qualified(T.qualifiedName)) t, jsonb_populate_record(null::\(Self.qualified(T.qualifiedName)), $1::jsonb) f
            where \(whereClause(keys, record: "f"))\(limit.map { " limit \($0)" } ?? "")
            """
        var query = PostgresQuery(unsafeSQL: sql)
        query.binds.append(text)
        return try await rows(query, as: T.Row.self)
    }

    /// The rows of a view.
    public func select<V: WingtelView>(_ view: V.Type, limit: Int? = nil) async throws -> [V.Row] {
        try await rows(
            PostgresQuery(
                unsafeSQL: "select to_jsonb(t)::text from \(Self.qualified(V.qualifiedName)) t\(limit.map { " limit \($0)" } ?? "")"),
            as: V.Row.self)
    }

    /// Inserts a row; columns left nil take their defaults. Returns the row as stored.
    public func insert<T: WingtelTable>(_ table: T.Type, _ values: T.Insert) async throws -> T.Row {
        let (text, keys) = try json(values, what: "the new row")
        let columns = keys.map(Self.quote).joined(separator: ", ")
        let name = Self.qualified(T.qualifiedName)
        let sql =
            keys.isEmpty
            ? "insert into \(name) as t default values returning to_jsonb(t)::text"
            : "insert into \(name) as t (\(columns)) select \(columns) from jsonb_populate_record(null::\(name), $1::jsonb) returning to_jsonb(t)::text"
        var query = PostgresQuery(unsafeSQL: sql)
        if !keys.isEmpty { query.binds.append(text) }
        guard let row = try await rows(query, as: T.Row.self).first else {
            throw WingtelClientError.noRow("insert into \(T.qualifiedName)")
        }
        return row
    }

    /// Sets the non-nil fields of `values` on the rows matching the non-nil fields of `filter`; returns the changed rows.
    public func update<T: WingtelTable>(_ table: T.Type, set values: T.Update, where filter: T.Update) async throws -> [T.Row] {
        let (valuesText, valueKeys) = try json(values, what: "the update")
        let (filterText, filterKeys) = try json(filter, what: "the filter")
        guard !valueKeys.isEmpty else { return try await select(table, where: filter) }
        let name = Self.qualified(T.qualifiedName)
        let assignments = valueKeys.map { "\(Self.quote($0)) = v.\(Self.quote($0))" }.joined(separator: ", ")
        let sql = """
            update \(name) as t set \(assignments)
            from jsonb_populate_record(null::\(name), $1::jsonb) v, jsonb_populate_record(null::\(name), $2::jsonb) f
            where \(whereClause(filterKeys, record: "f"))
            returning to_jsonb(t)::text
            """
        var query = PostgresQuery(unsafeSQL: sql)
        query.binds.append(valuesText)
        query.binds.append(filterText)
        return try await rows(query, as: T.Row.self)
    }

    /// Deletes the rows matching the non-nil fields of `filter`; returns how many went.
    @discardableResult
    public func delete<T: WingtelTable>(_ table: T.Type, where filter: T.Update) async throws -> Int {
        let (text, keys) = try json(filter, what: "the filter")
        let name = Self.qualified(T.qualifiedName)
        var query = PostgresQuery(
            unsafeSQL: """
                with gone as (delete from \(name) as t using jsonb_populate_record(null::\(name), $1::jsonb) f
                              where \(whereClause(keys, record: "f")) returning 1)
                select count(*)::text from gone
                """)
        query.binds.append(text)
        return try await rows(query, as: Int.self).first ?? 0
    }

    /// Calls a generated SQL function. Arguments left nil that have a default take it.
    public func call<F: WingtelFunction>(_ function: F) async throws -> F.Output {
        let (text, keys) = try json(function, what: F.qualifiedName)
        let present = Set(keys)
        let record =
            F.arguments.isEmpty
            ? ""
            : ", jsonb_to_record($1::jsonb) as a(" + F.arguments.map { "\(Self.quote($0.name)) \($0.sqlType)" }.joined(separator: ", ")
                + ")"
        let passed = F.arguments.compactMap { argument -> String? in
            if present.contains(argument.name) { return "\(Self.quote(argument.name)) => a.\(Self.quote(argument.name))" }
            return argument.hasDefault ? nil : "\(Self.quote(argument.name)) => null"
        }.joined(separator: ", ")
        let call = "\(Self.qualified(F.qualifiedName))(\(passed))"
        let from = record.isEmpty ? "" : " from (select 1) as _args\(record)"
        let sql: String
        switch F.returns {
        case .none, .single:
            sql = "select jsonb_build_object('v', to_jsonb(\(call)))::text\(from)"
        case .set:
            sql =
                "select coalesce(jsonb_agg(r.v), '[]'::jsonb)::text from (select to_jsonb(x) as v\(from.isEmpty ? " from" : from + ",") lateral \(call) as x) r"
        case .rows:
            sql = "select coalesce(jsonb_agg(to_jsonb(x)), '[]'::jsonb)::text\(from.isEmpty ? " from" : from + ",") lateral \(call) as x"
        }
        var query = PostgresQuery(unsafeSQL: sql)
        if !F.arguments.isEmpty { query.binds.append(text) }
        switch F.returns {
        case .none:
            _ = try await rows(query, as: JSONValue.self)
            return try WingtelJSON.decoder().decode(F.Output.self, from: Data("{}".utf8))
        case .single:
            guard let box = try await rows(query, as: Box<F.Output>.self).first else { throw WingtelClientError.noRow(F.qualifiedName) }
            return box.v
        case .set, .rows:
            guard let value = try await rows(query, as: F.Output.self).first else { throw WingtelClientError.noRow(F.qualifiedName) }
            return value
        }
    }

    /// Runs a generated named query.
    public func run<Q: WingtelQuery>(_ query: Q) async throws -> Q.Output {
        let (text, _) = try json(query, what: "\(Q.self)")
        var statement = PostgresQuery(unsafeSQL: Q.sql)
        if Q.sql.contains("$1::jsonb") { statement.binds.append(text) }
        let decoder = WingtelJSON.decoder()
        switch Q.kind {
        case .exec:
            try await connection.run(statement, logger: logger)
            return try decoder.decode(Q.Output.self, from: Data("{}".utf8))
        case .execrows:
            let result = try await connection.query(statement, logger: logger)
            var count: Int64 = 0
            for try await value in result.decode(Int64.self) { count = value }
            return try decoder.decode(Q.Output.self, from: Data("\(count)".utf8))
        case .one, .many:
            let result = try await connection.query(statement, logger: logger)
            var elements: [String] = []
            for try await row in result.decode(String.self) { elements.append(row) }
            let json = Q.kind == .many ? "[" + elements.joined(separator: ",") + "]" : (elements.first ?? "null")
            return try decoder.decode(Q.Output.self, from: Data(json.utf8))
        }
    }
}

struct Box<Value: Decodable>: Decodable {
    var v: Value
}
