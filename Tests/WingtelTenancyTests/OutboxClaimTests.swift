import Foundation
import Logging
import PostgresNIO
import Testing
import WingtelDatabase
import WingtelTestSupport

/// Workers claiming the carrier outbox at the same moment never get the same command.
@Suite("Concurrent outbox claims")
struct OutboxClaimTests {
    static let logger = Logger(label: "wingtel.tests.outbox")

    static func claim(_ settings: ConnectionSettings, worker: String) async throws -> [String] {
        try await Database.withIdentity(.service(name: worker), on: settings, logger: logger) { connection in
            let rows = try await connection.query(
                "select id::text from public.claim_carrier_commands(\(worker), 15)", logger: logger)
            var ids: [String] = []
            for try await id in rows.decode(String.self) { ids.append(id) }
            // Hold the claim's row locks a moment, as a worker calling a carrier would.
            try await connection.run("select pg_sleep(0.2)", logger: logger)
            return ids
        }
    }

    @Test("two workers claiming 15 each from 20 due commands get disjoint sets covering all 20")
    func disjointClaims() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        try await Probe.execute(
            settings,
            """
            insert into public.subscribers (organization_id, id, account_id, carrier_id, status)
            select '10000000-0000-4000-8000-00000000000a', md5('outbox-line' || g)::uuid, 'ac100000-0000-4000-8000-00000000000a',
                   'ca200000-0000-4000-8000-00000000000a', 'pending'
            from generate_series(1, 20) g;
            insert into public.carrier_commands (organization_id, subscriber_id, carrier_id, kind, idempotency_key)
            select '10000000-0000-4000-8000-00000000000a', md5('outbox-line' || g)::uuid, 'ca200000-0000-4000-8000-00000000000a',
                   'activate', 'outbox-test-' || g
            from generate_series(1, 20) g;
            """)
        async let first = Self.claim(settings, worker: "worker-a")
        async let second = Self.claim(settings, worker: "worker-b")
        let (a, b) = try await (first, second)
        #expect(Set(a).isDisjoint(with: Set(b)), "no command is claimed twice")
        #expect(a.count + b.count == 20, "every due command is claimed once: \(a.count) + \(b.count)")
        #expect(try await Probe.int(settings, "select count(*) from carrier_commands where status = 'in_flight' and attempts = 1") == 20)
    }
}
