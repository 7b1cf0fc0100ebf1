import Foundation
import Logging
import PostgresNIO
import Testing
import WingtelDatabase
import WingtelTestSupport

/// The generic isolation test: every table carrying organization_id, in every exposed schema,
/// today's and tomorrow's, is checked for every staff role of organization A, A's customer,
/// a user of no organization and anon. No table has a special case: a new table is covered
/// as soon as its migration and its seed rows exist.
@Suite("Tenant isolation across every tenant table")
struct TenantIsolationTests {
    static let orgA = "10000000-0000-4000-8000-00000000000a"
    static let orgB = "10000000-0000-4000-8000-00000000000b"
    static let customerA = UUID(uuidString: "c0000000-0000-4000-8000-00000000000a")!
    static let customerAccountA = "ac000000-0000-4000-8000-00000000000a"
    static let logger = Logger(label: "wingtel.tests.isolation")

    static var identities: [(String, DatabaseIdentity)] {
        let staff = ["owner", "admin", "operator", "agent", "analyst", "viewer"].enumerated().map { index, role in
            (role, DatabaseIdentity.user(id: UUID(uuidString: "a0000000-0000-4000-8000-00000000000\(index + 1)")!))
        }
        return staff + [
            ("customer", .user(id: customerA)),
            ("outsider", .user(id: UUID(uuidString: "d0000000-0000-4000-8000-000000000001")!)),
            ("anon", .anonymous),
        ]
    }

    enum Outcome: Equatable, CustomStringConvertible {
        case count(Int)
        case refused(String)
        var description: String {
            switch self {
            case .count(let n): return "\(n) rows"
            case .refused(let state): return "refused (\(state))"
            }
        }
    }

    private struct Undo: Error { let count: Int }

    /// Runs one statement as `identity` and always rolls back; returns the single integer it
    /// yields, or the SQLSTATE it raised.
    static func attempt(_ settings: ConnectionSettings, _ identity: DatabaseIdentity, _ sql: String) async throws -> Outcome {
        do {
            _ = try await Database.withIdentity(identity, on: settings, logger: logger) { connection -> Int in
                let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
                var value = 0
                for try await count in rows.decode(Int.self) { value = count }
                throw Undo(count: value)
            }
            return .count(-1)
        } catch let undo as Undo {
            return .count(undo.count)
        } catch {
            guard let failure = SQLFailure(error) else { throw error }
            return .refused(failure.sqlState ?? "?")
        }
    }

    struct TenantTable {
        var name: String
        /// organization_id, or id for the tenant root (public.organizations).
        var tenantColumn: String
        var hasAccountID: Bool
        var sampleOfB: String
        /// Columns an INSERT may name (not GENERATED ALWAYS).
        var insertableColumns: String
    }

    static func tenantTables(_ settings: ConnectionSettings) async throws -> [TenantTable] {
        let rows = try await Probe.rows(
            settings,
            """
            select format('%I.%I', n.nspname, c.relname),
                   case when c.oid = 'public.organizations'::regclass then 'id' else 'organization_id' end,
                   exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'account_id' and not a.attisdropped)::text,
                   (select string_agg(quote_ident(a.attname), ', ' order by a.attnum) from pg_attribute a
                     where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attidentity <> 'a' and a.attgenerated = '')
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('public', 'audit') and c.relkind in ('r', 'p') and not c.relispartition
              and (c.oid = 'public.organizations'::regclass
                   or exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped))
            order by 1
            """)
        var tables: [TenantTable] = []
        for row in rows {
            let name = row[0]!
            let column = row[1]!
            let sample = try await Probe.rows(
                settings, "select to_jsonb(t)::text from \(name) t where \(column) = '\(orgB)' limit 1")
            tables.append(
                TenantTable(
                    name: name, tenantColumn: column, hasAccountID: row[2] == "true", sampleOfB: sample.first?[0] ?? "",
                    insertableColumns: row[3] ?? ""))
        }
        return tables
    }

    @Test(
        "no identity of organization A reads, changes, deletes or inserts organization B's rows; customers see only their account; anon nothing"
    )
    func isolation() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        try await Probe.execute(settings, "select audit.seal()")  // so the chain tables hold rows too
        let tables = try await Self.tenantTables(settings)
        #expect(tables.count >= 7, "expected the tenancy and audit tables at least")

        for table in tables {
            for org in [Self.orgA, Self.orgB] {
                let present = try await Probe.int(settings, "select count(*) from \(table.name) where \(table.tenantColumn) = '\(org)'")
                #expect(present > 0, "seed.sql has no rows of \(table.name) for organization \(org): add some so isolation is tested")
            }
            let key = table.tenantColumn
            for (label, identity) in Self.identities {
                let context = "\(label) on \(table.name)"
                let seen = try await Self.attempt(
                    settings, identity, "select count(*)::int from \(table.name) where \(key) = '\(Self.orgB)'")
                #expect(seen == .count(0) || seen == .refused("42501"), "\(context): reads B → \(seen)")

                let updated = try await Self.attempt(
                    settings, identity,
                    "with changed as (update \(table.name) set \(key) = \(key) where \(key) = '\(Self.orgB)' returning 1) select count(*)::int from changed"
                )
                #expect(updated == .count(0) || updated == .refused("42501"), "\(context): updates B → \(updated)")

                let deleted = try await Self.attempt(
                    settings, identity,
                    "with gone as (delete from \(table.name) where \(key) = '\(Self.orgB)' returning 1) select count(*)::int from gone")
                #expect(deleted == .count(0) || deleted == .refused("42501"), "\(context): deletes B → \(deleted)")

                // A copy of one of B's rows, with fresh uuid keys, must not go in.
                let json = table.sampleOfB.replacingOccurrences(of: "'", with: "''")
                let inserted = try await Self.attempt(
                    settings, identity,
                    """
                    with copied as (
                      insert into \(table.name) (\(table.insertableColumns))
                      select \(table.insertableColumns) from jsonb_populate_record(null::\(table.name),
                              '\(json)'::jsonb || jsonb_build_object('id', gen_random_uuid(), 'user_id', gen_random_uuid()))
                      returning 1)
                    select count(*)::int from copied
                    """)
                #expect(inserted == .refused("42501"), "\(context): inserts into B → \(inserted)")

                if label == "anon" || label == "outsider" {
                    let any = try await Self.attempt(settings, identity, "select count(*)::int from \(table.name)")
                    #expect(any == .count(0) || any == .refused("42501"), "\(context): sees \(any)")
                }
                if label == "customer" {
                    let foreign = try await Self.attempt(
                        settings, identity,
                        "select count(*)::int from \(table.name) where \(key) <> '\(Self.orgA)'"
                            + (table.hasAccountID ? " or account_id <> '\(Self.customerAccountA)'" : ""))
                    #expect(foreign == .count(0) || foreign == .refused("42501"), "\(context): sees others' rows → \(foreign)")
                }
            }
        }
    }
}
