import Foundation
import PostgresNIO
import Testing
import WingtelDatabase
import WingtelTestSupport

@Suite("Acting as a user, anon or a service (as PostgREST does)")
struct IdentityTests {
    static let acmeOwner = UUID(uuidString: "a0000000-0000-4000-8000-000000000001")!
    static let acme = UUID(uuidString: "10000000-0000-4000-8000-00000000000a")!

    @Test("a user's work sees auth.uid(), role authenticated and the claims, for that transaction only")
    func userClaims() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let identity = DatabaseIdentity.user(id: Self.acmeOwner, email: "owner@acme.test", extraClaims: ["app": "portal"])
        let seen = try await Database.withIdentity(identity, on: settings) { connection in
            let rows = try await connection.query(
                "select auth.uid()::text, current_user::text, auth.email(), auth.jwt() ->> 'app'", logger: Logger(label: "t"))
            var values: [String?] = []
            for try await (uid, role, email, app) in rows.decode((String?, String, String?, String?).self) {
                values = [uid, role, email, app]
            }
            return values
        }
        #expect(seen == [Self.acmeOwner.uuidString.lowercased(), "authenticated", "owner@acme.test", "portal"])
        // Nothing leaks past the transaction.
        #expect(try await Probe.rows(settings, "select current_user::text, coalesce(auth.uid()::text, 'none')") == [["postgres", "none"]])
    }

    @Test("work that throws is rolled back")
    func rollback() async throws {
        struct Stop: Error {}
        let settings = try await TestCluster.shared.migratedDatabase()
        await #expect(throws: Stop.self) {
            try await Database.withIdentity(.user(id: Self.acmeOwner), on: settings) { connection in
                try await connection.run(
                    "select public.change_member_role(\(Self.acme), 'a0000000-0000-4000-8000-000000000006'::uuid, 'agent')",
                    logger: Logger(label: "t"))
                throw Stop()
            }
        }
        #expect(
            try await Probe.rows(
                settings, "select role::text from organization_members where user_id = 'a0000000-0000-4000-8000-000000000006'")
                == [["viewer"]])
    }

    @Test("a service's changes are audited under its name and the request id")
    func serviceActor() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        _ = try await Database.withIdentity(.service(name: "carrier-webhook"), on: settings, requestID: "req-42") { connection in
            try await connection.query(
                "update organizations set settings = '{\"x\": 1}' where id = \(Self.acme)", logger: Logger(label: "t"))
        }
        let entries = try await Probe.rows(
            settings,
            "select actor_name, request_id, db_role from audit.entries where table_name = 'public.organizations' and action = 'update'")
        #expect(entries == [["carrier-webhook", "req-42", "service_role"]])
    }

    @Test("anon is refused the tenancy tables outright")
    func anonymous() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        await #expect {
            try await Database.withIdentity(.anonymous, on: settings) { connection in
                try await connection.run("select count(*) from organizations", logger: Logger(label: "t"))
            }
        } throws: { SQLFailure($0)?.sqlState == "42501" }
    }
}
