import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Testing
import WingtelDatabase
import WingtelFunctions
import WingtelTestSupport

@Suite("The outbox worker against a fake ThingSpace and a real database")
struct OutboxWorkerTests {
    static let org = "10000000-0000-4000-8000-00000000000a"
    static let verizon = "ca100000-0000-4000-8000-00000000000a"

    /// `count` active ThingSpace lines (with valid ICCIDs) in organization A, each with a
    /// suspension queued in the outbox.
    static func queueSuspensions(_ settings: ConnectionSettings, count: Int, from first: Int = 1) async throws {
        let range = "generate_series(\(first), \(first + count - 1)) g"
        try await Probe.execute(
            settings,
            """
            insert into public.sim_cards (organization_id, id, iccid, kind, carrier_id, state)
            select '\(org)', md5('outbox-sim' || g)::uuid,
                   (select x.body || d from generate_series(0, 9) d where public.luhn_valid(x.body || d) limit 1), 'physical', '\(verizon)', 'active'
            from \(range), lateral (select '8901260000001' || lpad(g::text, 6, '0') as body) x;
            insert into public.accounts (organization_id, id, name, state, billing_day)
            select '\(org)', md5('outbox-account' || g)::uuid, 'Outbox ' || g, 'OR', 1 from \(range);
            insert into public.subscribers (organization_id, id, account_id, carrier_id, status, network_status, current_sim_id)
            select '\(org)', md5('outbox-line' || g)::uuid, md5('outbox-account' || g)::uuid, '\(verizon)', 'active', 'active', md5('outbox-sim' || g)::uuid
            from \(range);
            select public.suspend_subscriber('\(org)', md5('outbox-line' || g)::uuid, 'non_payment') from \(range);
            """)
    }

    static func client(_ settings: ConnectionSettings) -> (PostgresClient, Task<Void, Never>) {
        let client = PostgresClient(
            configuration: settings.postgresClientConfiguration(role: "service_role", maximumConnections: 6), backgroundLogger: logger)
        return (client, Task { await client.run() })
    }

    static let logger: Logger = {
        var logger = Logger(label: "wingtel.tests.outbox")
        logger.logLevel = .warning
        return logger
    }()

    static func adapter(_ fake: FakeThingSpace, loginBackoff: Duration = .seconds(60)) -> ThingSpaceAdapter {
        var settings = ThingSpaceSettings(
            baseURL: fake.baseURL, clientID: "key", clientSecret: "secret", username: "api-user", password: "api-pass",
            accountName: "0000123456-00001")
        settings.loginBackoff = loginBackoff
        return ThingSpaceAdapter(settings: settings, transport: URLSessionTransport(timeout: .seconds(10)))
    }

    static func worker(_ client: PostgresClient, _ adapter: ThingSpaceAdapter, name: String, poll: Duration = .milliseconds(100))
        -> OutboxWorker
    {
        var settings = OutboxWorker.Settings(name: name)
        settings.pollInterval = poll
        return OutboxWorker(client: client, adapters: [adapter], settings: settings, logger: logger)
    }

    /// Rows of the queued commands: status, attempts, carrier request id, error.
    static func commands(_ settings: ConnectionSettings) async throws -> [[String?]] {
        try await Probe.rows(
            settings,
            "select status::text, attempts::text, carrier_request_id, error, claimed_by from public.carrier_commands where created_at > now() - interval '1 hour' order by created_at"
        )
    }

    /// Waits (polling the database, at most `limit`) until `condition` holds.
    static func eventually(_ limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    @Test("a carrier failing 3 times (503, Retry-After: 0) then accepting: one effect, and the callback completes it")
    func retriesThenSucceeds() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let fake = try await FakeThingSpace.start()
        let (client, running) = Self.client(settings)
        defer {
            running.cancel()
            Task { await fake.stop() }
        }
        try await Self.queueSuspensions(settings, count: 1)
        await fake.state.failActions(3)
        let worker = Self.worker(client, Self.adapter(fake), name: "w-retry")
        let accepted = try await Self.eventually {
            await worker.drainOnce()
            let first = try await Self.commands(settings).first
            return first?[0] == "in_flight" && first?[2] != nil
        }
        #expect(accepted)
        let command = try #require(try await Self.commands(settings).first)
        #expect(command[1] == "4")
        #expect(await fake.state.actionCalls == 4)
        let effects = await fake.state.effects
        #expect(effects.count == 1)
        #expect(command[2] == effects.values.first)
        #expect(await fake.state.logins == 1)

        // The carrier's callback (as POST /carriers/verizon would pass it) finishes the suspension.
        try await Probe.execute(
            settings,
            #"select public.handle_carrier_event('verizon', '{"requestId":"\#(command[2]!)","deviceResponse":{"state":"suspend"}}')"#)
        let line = try await Probe.rows(
            settings, "select status::text, network_status::text from public.subscribers where id = md5('outbox-line1')::uuid")
        #expect(line == [["suspended", "suspended"]])
    }

    @Test("after max_attempts the command is a dead letter with its last error, and the line is rolled back")
    func deadLetter() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let fake = try await FakeThingSpace.start()
        let (client, running) = Self.client(settings)
        defer {
            running.cancel()
            Task { await fake.stop() }
        }
        try await Self.queueSuspensions(settings, count: 1)
        try await Probe.execute(settings, "update public.carrier_commands set max_attempts = 3 where status = 'pending'")
        await fake.state.failActions(100, status: 502)
        let worker = Self.worker(client, Self.adapter(fake), name: "w-dead")
        let dead = try await Self.eventually {
            await worker.drainOnce()
            return try await Self.commands(settings).first?[0] == "dead"
        }
        #expect(dead)
        let command = try #require(try await Self.commands(settings).first)
        #expect(command[1] == "3")
        #expect(command[3]?.hasPrefix("gave up after 3 attempts: ThingSpace answered 502") == true)
        #expect(await fake.state.actionCalls == 3)
        let line = try await Probe.rows(
            settings, "select status::text, network_status::text from public.subscribers where id = md5('outbox-line1')::uuid")
        #expect(line == [["active", "active"]])
        let status = try await Probe.rows(
            settings,
            "select status::text, commands::text from public.outbox_status where status = 'dead' and organization_id = '\(Self.org)'")
        #expect(status == [["dead", "1"]])
    }

    @Test("a worker that died after calling the carrier: its lease runs out, another worker sends it again, the carrier acts once")
    func deadWorkerIsReplaced() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let fake = try await FakeThingSpace.start()
        let (client, running) = Self.client(settings)
        defer {
            running.cancel()
            Task { await fake.stop() }
        }
        try await Self.queueSuspensions(settings, count: 1)
        let adapter = Self.adapter(fake)
        // The first worker claims (under a lease), sends, and dies before writing anything back.
        let claimed = try await Probe.rows(
            settings,
            "select organization_id::text, id::text, kind::text, adapter::text, payload::text, idempotency_key, attempts::text, max_attempts::text from public.claim_outbox_commands('w-died', array['thingspace']::public.carrier_adapter[], 10, '1 hour')"
        )
        let row = try #require(claimed.first)
        let first = await adapter.send(
            CarrierCommand(
                organizationID: row[0]!, id: row[1]!, kind: row[2]!, adapter: row[3]!, payload: row[4]!, idempotencyKey: row[5]!,
                attempts: 1,
                maxAttempts: 8))
        guard case .accepted(let requestID) = first else {
            Issue.record("the carrier should have accepted: \(first)")
            return
        }
        // Before the lease runs out nobody else takes it.
        let worker = Self.worker(client, adapter, name: "w-alive")
        #expect(await worker.drainOnce() == 0)
        // The lease runs out (set back rather than waited for, so a loaded machine cannot make it flaky).
        try await Probe.execute(
            settings, "update public.carrier_commands set lease_until = now() - interval '1 second' where claimed_by = 'w-died'")
        #expect(await worker.drainOnce() == 1)
        let command = try #require(try await Self.commands(settings).first)
        #expect(command == ["in_flight", "2", requestID, nil, "w-alive"])
        #expect(await fake.state.effects.count == 1)
        #expect(await fake.state.actionCalls == 2)
    }

    @Test("an expired session is renewed once; a refused login is not retried in a loop")
    func sessionRenewalAndLoginBackoff() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let fake = try await FakeThingSpace.start()
        let (client, running) = Self.client(settings)
        defer {
            running.cancel()
            Task { await fake.stop() }
        }
        let worker = Self.worker(client, Self.adapter(fake), name: "w-auth")
        try await Self.queueSuspensions(settings, count: 1, from: 1)
        #expect(await worker.drainOnce() == 1)
        #expect(await fake.state.logins == 1)

        await fake.state.expireSessions()
        try await Self.queueSuspensions(settings, count: 1, from: 2)
        #expect(await worker.drainOnce() == 1)
        #expect(await fake.state.logins == 2)
        #expect(try await Self.commands(settings).map { $0[0] } == ["in_flight", "in_flight"])

        // The credentials stop working: one login attempt, then the adapter backs off.
        await fake.state.expireSessions()
        await fake.state.setRefuseLogins(true)
        try await Self.queueSuspensions(settings, count: 3, from: 3)
        #expect(await worker.drainOnce() == 3)
        #expect(await fake.state.logins == 3)
        // Even when the commands are due again at once, nobody logs in during the back-off.
        try await Probe.execute(settings, "update public.carrier_commands set next_attempt_at = now() where status = 'pending'")
        #expect(await worker.drainOnce() == 3)
        #expect(await fake.state.logins == 3)
        let waiting = try await Self.commands(settings).dropFirst(2)
        #expect(waiting.allSatisfy { $0[0] == "pending" && $0[3]?.contains("login") == true })
    }

    @Test("a carrier that hangs past the timeout, or answers garbage, is retried; the next attempt goes through once")
    func timeoutAndGarbage() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let fake = try await FakeThingSpace.start()
        let (client, running) = Self.client(settings)
        defer {
            running.cancel()
            Task { await fake.stop() }
        }
        try await Self.queueSuspensions(settings, count: 2)
        var thingSpace = ThingSpaceSettings(
            baseURL: fake.baseURL, clientID: "key", clientSecret: "secret", username: "api-user", password: "api-pass",
            accountName: "0000123456-00001")
        thingSpace.loginBackoff = .seconds(60)
        let adapter = ThingSpaceAdapter(settings: thingSpace, transport: URLSessionTransport(timeout: .seconds(1)))
        await fake.state.hangActions(1)
        await fake.state.garbleActions(1)
        let worker = Self.worker(client, adapter, name: "w-flaky")
        #expect(await worker.drainOnce() == 2)
        let errors = try await Self.commands(settings).compactMap { $0[3] }
        #expect(errors.count == 2)
        #expect(errors.contains { $0.contains("unreachable") })
        #expect(errors.contains { $0.contains("without a requestId") })
        try await Probe.execute(settings, "update public.carrier_commands set next_attempt_at = now() where status = 'pending'")
        #expect(await worker.drainOnce() == 2)
        #expect(try await Self.commands(settings).allSatisfy { $0[0] == "in_flight" && $0[2] != nil })
        #expect(await fake.state.effects.count == 2)
    }

    @Test("three workers side by side, woken by NOTIFY: 30 commands, each sent exactly once")
    func workersSideBySide() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let fake = try await FakeThingSpace.start()
        let (client, running) = Self.client(settings)
        defer {
            running.cancel()
            Task { await fake.stop() }
        }
        let adapter = Self.adapter(fake)
        // A long poll interval: only the notification can wake them in time.
        let workers = (1...3).map { Self.worker(client, adapter, name: "w-\($0)", poll: .seconds(600)) }
        let group = ServiceGroup(configuration: .init(services: workers, logger: Self.logger))
        let serving = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(300))
        try await Self.queueSuspensions(settings, count: 30)
        let done = try await Self.eventually(.seconds(60)) {
            try await Self.commands(settings).allSatisfy { $0[0] == "in_flight" && $0[2] != nil }
        }
        #expect(done)
        #expect(await fake.state.effects.count == 30)
        #expect(await fake.state.actionCalls == 30)
        await group.triggerGracefulShutdown()
        try await serving.value
    }
}
