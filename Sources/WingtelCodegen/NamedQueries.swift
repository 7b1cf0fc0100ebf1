import Foundation
import Logging
import PostgresNIO
import WingtelDatabase

/// A named query the database refused, with where it came from.
public struct NamedQueryError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var query: String
    public var message: String
    public var description: String { "\(file): query \(query): \(message)" }
}

/// Reads `sql/queries/*.sql` (sqlc style) and learns each query's parameter and result types
/// by preparing it against the database.
///
///     -- name: LinesOfAccount :many
///     -- Lines of one account, newest first.
///     -- params: organization_id, account_id
///     -- nonnull: line_count
///     select … where organization_id = $1 and account_id = $2;
///
/// `params` names `$1, $2…` (default p1, p2…); `nonnull` marks computed columns that are never null;
/// `nullable` marks columns of the outer side of a join (the catalog cannot know they may be null).
public struct NamedQueryCompiler: Sendable {
    public var logger: Logger

    public init(logger: Logger = Logger(label: "wingtel.codegen")) {
        self.logger = logger
    }

    struct Source {
        var file: String
        var name: String
        var kind: NamedQuery.Kind
        var sql: String
        var comment: String?
        var parameterNames: [String]
        var nonNull: Set<String>
        var forcedNullable: Set<String> = []
    }

    /// Parses one file's text into query sources.
    static func parse(file: String, text: String) throws -> [Source] {
        var sources: [Source] = []
        var current: Source?
        var inHeader = false
        var commentLines: [String] = []
        func finish() {
            guard var source = current else { return }
            source.comment = commentLines.isEmpty ? nil : commentLines.joined(separator: "\n")
            var sql = source.sql.trimmingCharacters(in: .whitespacesAndNewlines)
            while sql.hasSuffix(";") { sql = String(sql.dropLast()).trimmingCharacters(in: .whitespacesAndNewlines) }
            source.sql = sql
            sources.append(source)
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let match = trimmed.wholeMatch(of: /--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*:(\w+)\s*/) {
                finish()
                guard let kind = NamedQuery.Kind(rawValue: String(match.2)) else {
                    throw NamedQueryError(
                        file: file, query: String(match.1), message: "unknown kind :\(match.2) (use :one, :many, :exec or :execrows)")
                }
                current = Source(file: file, name: String(match.1), kind: kind, sql: "", comment: nil, parameterNames: [], nonNull: [])
                inHeader = true
                commentLines = []
                continue
            }
            guard current != nil else { continue }
            if inHeader && trimmed.hasPrefix("--") {
                let body = trimmed.dropFirst(2).trimmingCharacters(in: .whitespaces)
                if body.hasPrefix("params:") {
                    current!.parameterNames = body.dropFirst(7).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                } else if body.hasPrefix("nullable:") {
                    current!.forcedNullable = Set(body.dropFirst(9).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                } else if body.hasPrefix("nonnull:") {
                    current!.nonNull = Set(body.dropFirst(8).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                } else {
                    commentLines.append(body)
                }
                continue
            }
            inHeader = false
            current!.sql += line + "\n"
        }
        finish()
        return sources
    }

    /// All queries of a folder, described against the database, with the diagnostics of their types.
    public func compile(directory: URL, connection: PostgresConnection, introspector: Introspector) async throws
        -> (queries: [NamedQuery], diagnostics: [String])
    {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return ([], []) }
        // The type catalog is read once for all queries.
        let types = try await introspector.loadTypes(connection)
        let relations = try await introspector.loadRelationNames(connection)
        let diagnostics = Introspector.Diagnostics()
        let mapper = TypeMapper(types: types, relations: relations, exposed: Set(introspector.schemas), diagnostics: diagnostics)
        var queries: [NamedQuery] = []
        for name in names.sorted() where name.hasSuffix(".sql") {
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            for (index, source) in try Self.parse(file: "sql/queries/\(name)", text: text).enumerated() {
                queries.append(
                    try await describe(
                        source, statement: "wingtel_codegen_\(queries.count)_\(index)", connection: connection, types: types, mapper: mapper
                    ))
            }
        }
        return (queries, diagnostics.messages.sorted())
    }

    func describe(
        _ source: Source, statement: String, connection: PostgresConnection, types: [Int64: Introspector.TypeInfo], mapper: TypeMapper
    ) async throws -> NamedQuery {
        func fail(_ error: any Error) -> NamedQueryError {
            NamedQueryError(file: source.file, query: source.name, message: SQLFailure(error)?.description ?? describeDatabaseError(error))
        }
        do {
            try await connection.execute("prepare \(statement) as \(source.sql)", logger: logger)
        } catch {
            throw fail(error)
        }
        do {
            let query = try await describePrepared(
                source, statement: statement, connection: connection, types: types, mapper: mapper, fail: fail)
            try? await connection.execute("deallocate \(statement)", logger: logger)
            return query
        } catch {
            try? await connection.execute("deallocate \(statement)", logger: logger)
            throw error
        }
    }

    func describePrepared(
        _ source: Source, statement: String, connection: PostgresConnection, types: [Int64: Introspector.TypeInfo], mapper: TypeMapper,
        fail: (any Error) -> NamedQueryError
    ) async throws -> NamedQuery {
        var parameterTypes: [Int64] = []
        let rows = try await connection.query(
            "select array(select x::oid::int8 from unnest(parameter_types) x) from pg_catalog.pg_prepared_statements where name = \(statement)",
            logger: logger)
        for try await value in rows.decode([Int64].self) { parameterTypes = value }
        if !source.parameterNames.isEmpty && source.parameterNames.count != parameterTypes.count {
            throw NamedQueryError(
                file: source.file, query: source.name,
                message: "-- params names \(source.parameterNames.count) parameters but the query uses \(parameterTypes.count)")
        }
        let parameters = parameterTypes.enumerated().map { index, oid in
            ArgumentModel(
                name: source.parameterNames.isEmpty ? "p\(index + 1)" : source.parameterNames[index],
                sqlType: types[oid]?.regtype ?? "text",
                swiftType: mapper.swiftType(oid: oid, context: "query \(source.name) parameter $\(index + 1)"), hasDefault: false)
        }

        var columns: [ColumnModel] = []
        if source.kind == .one || source.kind == .many {
            // Run it with null arguments in a read-only transaction that is rolled back: only the
            // row description is wanted (names, types, source columns for nullability).
            try await connection.execute("begin read only", logger: logger)
            do {
                let nulls = Array(repeating: "null", count: parameterTypes.count).joined(separator: ", ")
                let result = try await connection.query(
                    PostgresQuery(unsafeSQL: "execute \(statement)\(parameterTypes.isEmpty ? "" : "(\(nulls))")"), logger: logger)
                let described = result.columns.map {
                    ($0.name, Int64($0.tableOID), Int64($0.columnAttributeNumber), Int64($0.dataType.rawValue))
                }
                for try await _ in result {}
                try await connection.execute("rollback", logger: logger)
                for (name, table, attribute, typeOID) in described {
                    var nullable = true
                    if table != 0 {
                        let lookup = try await connection.query(
                            "select attnotnull from pg_catalog.pg_attribute where attrelid = \(table)::oid and attnum = \(Int16(attribute))",
                            logger: logger)
                        for try await notNull in lookup.decode(Bool.self) { nullable = !notNull }
                    }
                    if source.nonNull.contains(name) { nullable = false }
                    if source.forcedNullable.contains(name) { nullable = true }
                    columns.append(
                        ColumnModel(
                            name: name, sqlType: types[typeOID]?.regtype ?? "unknown",
                            swiftType: mapper.swiftType(oid: typeOID, context: "query \(source.name) column \(name)"),
                            nullable: nullable, hasDefault: false, writeNever: false, comment: nil))
                }
            } catch {
                try? await connection.execute("rollback", logger: logger)
                throw fail(error)
            }
        }
        return NamedQuery(
            file: source.file, name: source.name, kind: source.kind,
            sql: Self.runtimeSQL(source.sql, kind: source.kind, parameters: parameters),
            comment: source.comment, parameters: parameters, columns: columns)
    }

    /// The statement the client sends: parameters come in as one JSON object ($1), typed by
    /// `jsonb_to_record`, and rows come back as JSON (`to_jsonb`), as PostgREST would return them.
    static func runtimeSQL(_ sql: String, kind: NamedQuery.Kind, parameters: [ArgumentModel]) -> String {
        var body = replacePlaceholders(sql) { index in
            guard index >= 1 && index <= parameters.count else { return "$\(index)" }
            return "(select \(quote(parameters[index - 1].name)) from wingtel_params)"
        }
        let params =
            parameters.isEmpty
            ? nil
            : "wingtel_params as (select * from jsonb_to_record($1::jsonb) as p("
                + parameters.map { "\(quote($0.name)) \($0.sqlType)" }.joined(separator: ", ") + "))"
        let startsWithWith = body.lowercased().hasPrefix("with ") || body.lowercased().hasPrefix("with\n")
        switch kind {
        case .one, .many:
            let ctes = [params, "wingtel_query as (\(body))"].compactMap { $0 }.joined(separator: ",\n")
            return "with \(ctes)\nselect to_jsonb(wingtel_query) from wingtel_query"
        case .exec:
            guard let params else { return body }
            if startsWithWith {
                body = String(body.dropFirst(4))
                return "with \(params),\(body)"
            }
            return "with \(params)\n\(body)"
        case .execrows:
            let returning =
                body.range(of: #"\breturning\b"#, options: [.regularExpression, .caseInsensitive]) == nil ? "\nreturning 1" : ""
            let ctes = [params, "wingtel_query as (\(body)\(returning))"].compactMap { $0 }.joined(separator: ",\n")
            return "with \(ctes)\nselect count(*) from wingtel_query"
        }
    }

    static func quote(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// Replaces `$n` outside strings, quoted names, comments and dollar quotes.
    static func replacePlaceholders(_ sql: String, _ replacement: (Int) -> String) -> String {
        let characters = Array(sql)
        var out = ""
        var index = 0
        while index < characters.count {
            let character = characters[index]
            let next: Character? = index + 1 < characters.count ? characters[index + 1] : nil
            if character == "-" && next == "-" {
                while index < characters.count && characters[index] != "\n" {
                    out.append(characters[index])
                    index += 1
                }
                continue
            }
            if character == "/" && next == "*" {
                while index < characters.count
                    && !(characters[index] == "*" && index + 1 < characters.count && characters[index + 1] == "/")
                {
                    out.append(characters[index])
                    index += 1
                }
                continue
            }
            if character == "'" || character == "\"" {
                out.append(character)
                index += 1
                while index < characters.count {
                    out.append(characters[index])
                    if characters[index] == character {
                        index += 1
                        break
                    }
                    index += 1
                }
                continue
            }
            if character == "$", let next, next.isNumber {
                var end = index + 1
                while end < characters.count && characters[end].isNumber { end += 1 }
                out += replacement(Int(String(characters[(index + 1)..<end]))!)
                index = end
                continue
            }
            if character == "$" {
                // A dollar quote: copy through its closing tag.
                var end = index + 1
                while end < characters.count && (characters[end].isLetter || characters[end] == "_") { end += 1 }
                if end < characters.count && characters[end] == "$" {
                    let tag = String(characters[index...end])
                    out += tag
                    index = end + 1
                    let rest = String(characters[index...])
                    if let close = rest.range(of: tag) {
                        out += rest[..<close.upperBound]
                        index += rest.distance(from: rest.startIndex, to: close.upperBound)
                    }
                    continue
                }
            }
            out.append(character)
            index += 1
        }
        return out
    }
}
