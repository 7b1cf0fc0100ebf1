import Foundation
import PostgresNIO
import Testing
import WingtelClient
import WingtelCodegen
import WingtelDatabase
import WingtelTestSupport

/// The generated client against the real database, as two users of two organizations:
/// inserts, selects, updates, function calls and named queries, with RLS applied.
@Suite("The generated client, round trip")
struct ClientRoundTripTests {
    static let acme = UUID(uuidString: "10000000-0000-4000-8000-00000000000a")!
    static let bolt = UUID(uuidString: "10000000-0000-4000-8000-00000000000b")!
    static let acmeAccount = UUID(uuidString: "ac000000-0000-4000-8000-00000000000a")!
    static let acmeLine = UUID(uuidString: "5b100000-0000-4000-8000-00000000000a")!
    static let talkText = UUID(uuidString: "ba100000-0000-4000-8000-00000000000a")!
    static let acmeAgent = UUID(uuidString: "a0000000-0000-4000-8000-000000000004")!
    static let acmeViewer = UUID(uuidString: "a0000000-0000-4000-8000-000000000006")!
    static let boltAgent = UUID(uuidString: "b0000000-0000-4000-8000-000000000004")!

    @Test("tables, functions and named queries as two users; each sees and changes only its own organization")
    func roundTrip() async throws {
        let client = WingtelClient(settings: try await TestCluster.shared.migratedDatabase())
        let agent = DatabaseIdentity.user(id: Self.acmeAgent)

        let accounts = try await client.session(as: agent) { try await $0.select(Public.Accounts.self) }
        #expect(Set(accounts.map(\.organizationId)) == [Self.acme])
        #expect(accounts.count == 2)
        let dana = try #require(accounts.first { $0.id == Self.acmeAccount })
        #expect(dana.email == "customer@acme.test" && dana.billingDay == 5 && dana.status == .active)

        let note = try await client.session(as: agent) { session in
            try await session.insert(
                Public.Notes.self,
                .init(
                    organizationId: Self.acme, accountId: Self.acmeAccount, subscriberId: Self.acmeLine,
                    body: "Asked about roaming \"EU\" \\ plans", authorId: Self.acmeAgent))
        }
        #expect(note.body == "Asked about roaming \"EU\" \\ plans" && note.authorId == Self.acmeAgent)
        #expect(abs(note.createdAt.timeIntervalSinceNow) < 600)

        let renamed = try await client.session(as: agent) { session in
            try await session.update(Public.Accounts.self, set: .init(name: "Dana R. Reyes"), where: .init(id: Self.acmeAccount))
        }
        #expect(renamed.map(\.name) == ["Dana R. Reyes"])

        let when = try await client.session(as: agent) { session in
            try await session.call(
                Public.Functions.ChangePlan(organizationId: Self.acme, subscriberId: Self.acmeLine, planId: Self.talkText))
        }
        #expect(when?.hasPrefix("at ") == true)
        let feed = try await client.session(as: agent) { session in
            try await session.call(Public.Functions.SubscriberActivity(subscriberId: Self.acmeLine))
        }
        #expect(feed.first?.kind == "note" || feed.contains { $0.kind == "plan_change_scheduled" })
        #expect(feed.contains { $0.kind == "plan_change_scheduled" && $0.actor == "agent@acme.test" })
        let valid = try await client.session(as: agent) { try await $0.call(Public.Functions.IsValidImei(imei: "490154203237518")) }
        #expect(valid == true)

        let lines = try await client.session(as: agent) {
            try await $0.run(Queries.LinesOfAccount(organizationId: Self.acme, accountId: Self.acmeAccount))
        }
        #expect(lines.map(\.mdn) == ["+13125550101"])
        #expect(lines.first?.planCode == "DATA-5" && lines.first?.status == .active)
        let tagged = try await client.session(as: agent) {
            try await $0.run(Queries.TagLine(organizationId: Self.acme, subscriberId: Self.acmeLine, tag: "vip"))
        }
        #expect(tagged == 1)
        let byNumber = try await client.session(as: agent) {
            try await $0.run(Queries.LineByMDN(organizationId: Self.acme, mdn: "+13125550101"))
        }
        #expect(byNumber?.tags == ["vip"])
        let counts = try await client.session(as: agent) { try await $0.run(Queries.LineCountsByStatus(organizationId: Self.acme)) }
        #expect(counts.map(\.lines).reduce(0, +) == 1)

        // The other organization's agent: nothing of Acme is visible or changeable.
        let other = DatabaseIdentity.user(id: Self.boltAgent)
        let boltAccounts = try await client.session(as: other) { try await $0.select(Public.Accounts.self) }
        #expect(Set(boltAccounts.map(\.organizationId)) == [Self.bolt])
        let hijack = try await client.session(as: other) { session in
            try await session.update(Public.Accounts.self, set: .init(name: "Hijacked"), where: .init(id: Self.acmeAccount))
        }
        #expect(hijack.isEmpty)
        let foreignLines = try await client.session(as: other) {
            try await $0.run(Queries.LinesOfAccount(organizationId: Self.acme, accountId: Self.acmeAccount))
        }
        #expect(foreignLines.isEmpty)
        await #expect {
            _ = try await client.session(as: other) { session in
                try await session.call(
                    Public.Functions.SuspendSubscriber(organizationId: Self.acme, subscriberId: Self.acmeLine, reason: .fraud))
            }
        } throws: { SQLFailure($0)?.sqlState == "42501" }
        let removed = try await client.session(as: .user(id: Self.acmeViewer)) {
            try await $0.delete(Public.Notes.self, where: .init(id: note.id))
        }
        #expect(removed == 0, "a viewer cannot delete notes")
    }

    @Test("the generated structs decode PostgREST's JSON (supabase-swift users)")
    func decodesPostgRESTJSON() throws {
        let json = """
            [{"organization_id":"10000000-0000-4000-8000-00000000000a","id":"ac000000-0000-4000-8000-00000000000a","external_id":"BQ-1001-a",
              "name":"Dana Reyes","email":"customer@acme.test","phone":"+13125550142","address_line1":"233 S Wacker Dr","address_line2":null,
              "city":"Chicago","state":"IL","postal_code":"60606","country":"US","county":"Cook","billing_day":5,"status":"active","tags":[],
              "created_at":"2026-11-24T19:18:11.605826+00:00","updated_at":"2026-11-24T19:18:11Z","stripe_customer_id":null,"autopay":false}]
            """
        let rows = try WingtelJSON.decoder().decode([Public.Accounts.Row].self, from: Data(json.utf8))
        #expect(rows.first?.billingDay == 5 && rows.first?.status == .active && rows.first?.autopay == false)
        #expect(abs((rows.first?.createdAt.timeIntervalSince1970 ?? 0) - 1_795_547_891.605826) < 0.000_01)
    }
}
