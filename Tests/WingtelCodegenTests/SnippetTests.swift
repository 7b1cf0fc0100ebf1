import Foundation
import PostgresNIO
import Testing
import WingtelDatabase
import WingtelTestSupport

@testable import WingtelCodegen

/// Small DDL in, exact Swift out: each kind the generator emits, and the tricky cases.
@Suite("Code generation snippets")
struct SnippetTests {
    /// True when `expected`'s lines appear consecutively in `output`, compared without leading indentation.
    func containsLines(_ output: String, _ expected: String) -> Bool {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map { $0.drop(while: { $0 == " " }) }
        let wanted = expected.split(separator: "\n", omittingEmptySubsequences: false).map { $0.drop(while: { $0 == " " }) }
            .drop(while: { $0.isEmpty })
        let pattern = Array(wanted.reversed().drop(while: { $0.isEmpty }).reversed())
        guard !pattern.isEmpty, lines.count >= pattern.count else { return false }
        for start in 0...(lines.count - pattern.count) where lines[start] == pattern[0] {
            if Array(lines[start..<(start + pattern.count)]) == pattern { return true }
        }
        return false
    }

    func render(_ ddl: String, queries: [String: String] = [:]) async throws -> (files: [String: String], model: CatalogModel) {
        let settings = try await TestCluster.shared.emptyDatabase()
        try await Probe.execute(settings, ddl)
        let project = try TemporaryDirectory("project")
        defer { project.remove() }
        for (name, text) in queries { try project.write("sql/queries/\(name)", text) }
        let model = try await Generator(layout: ProjectLayout(root: project.url)).model(settings)
        let files = SwiftRenderer().render(model)
        return (files, model)
    }

    @Test("enums: reserved words and labels that are not identifiers")
    func enums() async throws {
        let (files, _) = try await render(
            """
            create type public.kind as enum ('default', 'case', 'in', 'protocol', 'data-pack', 'Type');
            comment on type public.kind is 'A kind: "quoted" and \\back\\slashed.';
            """)
        let expected = """
            extension Public {
                /// A kind: "quoted" and \\back\\slashed.
                ///
                /// - Remark: Generated from enum `public.kind`.
                public enum Kind: String, Codable, Sendable, Hashable, CaseIterable {
                    case `default`
                    case `case`
                    case `in`
                    case `protocol`
                    case dataPack = "data-pack"
                    case type = "Type"
                }
            }

            """
        #expect(containsLines(files["Public.swift"]!, expected))
    }

    @Test("tables: Row, Insert without GENERATED ALWAYS columns, Update all optional, CodingKeys to SQL names")
    func table() async throws {
        let (files, _) = try await render(
            """
            create table public.line_items (
              id bigint generated always as identity primary key,
              "default" text not null,
              amount_cents bigint not null default 0,
              note text,
              doubled bigint generated always as (amount_cents * 2) stored
            );
            comment on table public.line_items is 'Items; see "docs" \\ notes.';
            comment on column public.line_items.note is 'Free text.';
            """)
        let swift = files["Public.swift"]!
        #expect(
            containsLines(
                swift,
                """
                        /// Items; see "docs" \\ notes.
                        ///
                        /// - Remark: Generated from table `public.line_items`.
                        public enum LineItems: WingtelTable {
                            public static let qualifiedName = "public.line_items"
                """))
        #expect(
            containsLines(
                swift,
                """
                            public struct Row: Codable, Sendable, Hashable {
                                public var id: Int64
                                public var `default`: String
                                public var amountCents: Int64
                                /// Free text.
                                public var note: String?
                                public var doubled: Int64?
                """))
        #expect(
            containsLines(
                swift,
                """
                            public struct Insert: Codable, Sendable, Hashable {
                                public var `default`: String
                                public var amountCents: Int64?
                                /// Free text.
                                public var note: String?

                                public init(`default`: String, amountCents: Int64? = nil, note: String? = nil) {
                                    self.default = `default`
                                    self.amountCents = amountCents
                                    self.note = note
                                }

                                public enum CodingKeys: String, CodingKey {
                                    case `default`
                                    case amountCents = "amount_cents"
                                    case note
                                }
                            }
                """))
        #expect(
            containsLines(swift, "public struct Update: Codable, Sendable, Hashable {\n                public var `default`: String?\n"))
    }

    @Test("composite types, arrays of enums, views, overloaded functions, setof and returns table; unsupported types diagnosed")
    func functionsAndTypes() async throws {
        let (files, model) = try await render(
            """
            create type public.color as enum ('red', 'green');
            create type public.money_amount as (cents bigint, currency text);
            create table public.paints (id int primary key, colors public.color[] not null, price public.money_amount, spot point);
            create view public.cheap_paints as select id, colors from public.paints;
            create function public.price_of(id int) returns bigint language sql as 'select 1::bigint';
            create function public.price_of(name text, currency text default 'USD') returns bigint language sql as 'select 2::bigint';
            create function public.all_ids() returns setof int language sql as 'select 1';
            create function public.report(since date) returns table (day date, total numeric) language sql as 'select since, 1.5::numeric';
            create function public.touch() returns void language sql as 'select';
            """)
        let swift = files["Public.swift"]!
        #expect(
            containsLines(
                swift,
                "public struct MoneyAmount: Codable, Sendable, Hashable {\n        public var cents: Int64?\n        public var currency: String?"
            ))
        #expect(containsLines(swift, "public var colors: [Public.Color]\n"))
        #expect(containsLines(swift, "public var price: Public.MoneyAmount?\n"))
        #expect(swift.contains("public enum CheapPaints: WingtelView {"))
        #expect(swift.contains("public struct PriceOfInteger: WingtelFunction {"))
        #expect(swift.contains("public struct PriceOfTextText: WingtelFunction {"))
        #expect(swift.contains("WingtelArgument(name: \"currency\", sqlType: \"text\", hasDefault: true)"))
        #expect(swift.contains("public init(name: String, currency: String? = nil)"))
        #expect(containsLines(swift, "public struct AllIds: WingtelFunction {\n        public typealias Output = [Int32]\n"))
        #expect(containsLines(swift, "public struct Report: WingtelFunction {\n        public typealias Output = [Result]\n"))
        #expect(
            containsLines(
                swift,
                "public struct Result: Codable, Sendable, Hashable {\n            public var day: WingtelDate?\n            public var total: Decimal?"
            ))
        #expect(containsLines(swift, "public struct Touch: WingtelFunction {\n        public typealias Output = WingtelVoid\n"))
        #expect(swift.contains("public var spot: JSONValue?"))
        #expect(model.diagnostics == ["unsupported type point in column public.paints.spot: emitted as JSONValue"])
        #expect(swift.contains("// - unsupported type point in column public.paints.spot: emitted as JSONValue"))
    }

    @Test("named queries: parameter and result types from the database, nullability from the catalog")
    func namedQueries() async throws {
        let (files, model) = try await render(
            "create table public.people (id int primary key, name text not null, nick text);",
            queries: [
                "people.sql": """
                -- name: PersonByID :one
                -- One person.
                -- params: person_id
                select id, name, nick, length(name) as name_length from public.people where id = $1;

                -- name: Rename :execrows
                update public.people set name = $2 where id = $1;
                """
            ])
        let query = try #require(model.queries.first)
        #expect(query.parameters.map(\.sqlType) == ["integer"])
        #expect(query.columns.map(\.name) == ["id", "name", "nick", "name_length"])
        #expect(query.columns.map(\.nullable) == [false, false, true, true])
        let swift = files["Queries.swift"]!
        #expect(containsLines(swift, "public struct PersonByID: WingtelQuery {\n        public typealias Output = Row?\n"))
        #expect(containsLines(swift, "public var personId: Int32\n"))
        #expect(containsLines(swift, "public struct Rename: WingtelQuery {\n        public typealias Output = Int64\n"))
        #expect(containsLines(swift, "returning 1)\n            select count(*) from wingtel_query"))
    }

    @Test("an unsupported type in a named query's result is diagnosed like one in a table")
    func queryDiagnostics() async throws {
        let (_, model) = try await render(
            "create table public.places (id int primary key, spot point);",
            queries: ["places.sql": "-- name: Spots :many\nselect id, spot from public.places;"])
        #expect(model.diagnostics.contains("unsupported type point in query Spots column spot: emitted as JSONValue"))
    }

    @Test("a named query with a syntax error or an unknown column names the file, the query and the database's message")
    func badQueries() async throws {
        await #expect {
            _ = try await render(
                "create table public.people (id int primary key);",
                queries: ["bad.sql": "-- name: Broken :many\nselec id from public.people;"])
        } throws: { error in
            let text = "\(error)"
            return text.contains("sql/queries/bad.sql") && text.contains("query Broken") && text.contains("42601")
        }
        await #expect {
            _ = try await render(
                "create table public.people (id int primary key);",
                queries: ["bad.sql": "-- name: Unknown :one\nselect shoe_size from public.people;"])
        } throws: { error in
            let text = "\(error)"
            return text.contains("query Unknown") && text.contains("column \"shoe_size\" does not exist")
        }
    }

    @Test("unchanged input gives byte-identical output")
    func deterministic() async throws {
        let ddl = "create type public.a as enum ('x'); create table public.t (id int primary key, a public.a);"
        let first = try await render(ddl).files
        let second = try await render(ddl).files
        #expect(first == second)
    }
}
