import Foundation
import Logging
import PostgresNIO
import Testing
import WingtelDatabase
import WingtelTestSupport

/// Two staff members act on one line at the same moment: the lifecycle functions lock the
/// line, so one request wins and the other is refused with a clear message — never a lost
/// update or two open carrier requests.
@Suite("Concurrent lifecycle requests on one line")
struct LifecycleConcurrencyTests {
    static let acme = UUID(uuidString: "10000000-0000-4000-8000-00000000000a")!
    static let line = UUID(uuidString: "5b100000-0000-4000-8000-00000000000a")!
    static let unlimited = UUID(uuidString: "ba300000-0000-4000-8000-00000000000a")!
    static let agent = UUID(uuidString: "a0000000-0000-4000-8000-000000000004")!
    static let operatorUser = UUID(uuidString: "a0000000-0000-4000-8000-000000000003")!
    static let logger = Logger(label: "wingtel.tests.concurrency")

    enum Outcome: Equatable {
        case done
        case refused(String)
    }

    /// Runs `sql` as `user` and keeps the transaction (and its locks) open a moment longer.
    static func act(_ settings: ConnectionSettings, as user: UUID, _ sql: PostgresQuery) async throws -> Outcome {
        do {
            try await Database.withIdentity(.user(id: user), on: settings, logger: logger) { connection in
                try await connection.run(sql, logger: logger)
                try await connection.run("select pg_sleep(0.3)", logger: logger)
            }
            return .done
        } catch {
            guard let failure = SQLFailure(error) else { throw error }
            return .refused(failure.sqlState ?? "?")
        }
    }

    @Test("suspend and change plan at once: one wins, the other is refused, the line stays consistent", arguments: 1...3)
    func suspendVersusChangePlan(round: Int) async throws {
        let settings = try await TestCluster.shared.migratedDatabase("concurrency_\(round)")
        async let suspension = Self.act(
            settings, as: Self.agent, "select public.suspend_subscriber(\(Self.acme), \(Self.line), 'customer_request')")
        async let planChange = Self.act(
            settings, as: Self.operatorUser, "select public.change_plan(\(Self.acme), \(Self.line), \(Self.unlimited))")
        let outcomes = try await [suspension, planChange]

        #expect(outcomes.filter { $0 == .done }.count == 1, "exactly one request wins: \(outcomes)")
        #expect(outcomes.filter { $0 == .refused("P0001") }.count == 1, "the other is refused as a business rule: \(outcomes)")

        let open = try await Probe.rows(
            settings, "select kind::text from carrier_commands where subscriber_id = '\(Self.line)' and status = 'pending'")
        #expect(open.count == 1, "one open carrier request, never two")
        let state = try await Probe.rows(
            settings,
            """
            select l.status::text, p.code from subscribers l
            join subscriptions s on s.organization_id = l.organization_id and s.subscriber_id = l.id and upper_inf(s.effective)
            join plans p on p.organization_id = s.organization_id and p.id = s.plan_id
            where l.id = '\(Self.line)'
            """)
        if outcomes[0] == .done {
            #expect(open.first?[0] == "suspend")
            #expect(state == [["suspended", "DATA-5"]], "the suspension won; the plan is unchanged")
        } else {
            #expect(open.first?[0] == "change_plan")
            #expect(state == [["active", "UNLIMITED"]], "the plan change won; the line stays active")
        }
    }
}
