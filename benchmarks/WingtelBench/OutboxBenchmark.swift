import ArgumentParser
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle
import WingtelDatabase
import WingtelFunctions
import WingtelTestSupport

/// B8: the outbox loop — claim → call the carrier → complete — with N workers, against a fake
/// Control Center on loopback (a real HTTP round trip per command), and the same loop with a
/// no-op adapter as the reference.
@main
struct WingtelBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wingtel-bench",
        abstract: "B8: outbox throughput (claim → call a fake carrier → complete) vs the same loop with a no-op carrier.",
        discussion:
            "Writes benchmarks/results/outbox.{json,md}. Uses the scratch database wingtel_bench (run `wingtel db reset --database wingtel_bench` first)."
    )

    @Option(help: "postgres:// URL of the scratch database.") var dbURL = "postgresql://postgres:postgres@127.0.0.1:54322/wingtel_bench"
    @Option(help: "Commands per run.") var commands = 20_000
    @Option(help: "Workers side by side.") var workers = 4
    @Option(help: "Commands each worker claims at once.") var batch = 32
    @Option(help: "Repetitions (each run uses fresh lines).") var reps = 5
    @Option(help: "Where to write results.") var results = "benchmarks/results"

    static let org = "10000000-0000-4000-8000-00000000000a"

    func run() async throws {
        var logger = Logger(label: "wingtel.bench")
        logger.logLevel = .error
        let settings = try ConnectionSettings(url: dbURL)
        let client = PostgresClient(
            configuration: settings.postgresClientConfiguration(role: "service_role", maximumConnections: workers * 2 + 2),
            backgroundLogger: logger)
        let clientTask = Task { await client.run() }
        defer { clientTask.cancel() }

        note("creating \((commands * reps * 2).formatted()) AT&T lines (setup, not timed) …")
        let carrier = try await scalar(
            client, "select id::text from public.carriers where organization_id = '\(Self.org)' and adapter = 'att_control_center'")
        let lines = commands * reps * 2
        // Setup data is valid by construction: loaded without triggers (validation, audit), which
        // row by row on a table the planner still thinks is empty would take minutes.
        try await Database.withConnection(settings, logger: logger) { connection in
            try await connection.query("set session_replication_role = replica", logger: logger)
            for sql in [
                """
                insert into public.sim_cards (organization_id, id, iccid, kind, carrier_id, state)
                select '\(Self.org)', md5('b8-sim' || g)::uuid,
                       (select x.body || d from generate_series(0, 9) d where public.luhn_valid(x.body || d) limit 1), 'physical', '\(carrier)', 'active'
                from generate_series(1, \(lines)) g, lateral (select '890141' || lpad(g::text, 13, '0') as body) x
                on conflict do nothing
                """,
                """
                insert into public.accounts (organization_id, id, name, state, billing_day)
                select '\(Self.org)', md5('b8-account' || g)::uuid, 'B8 ' || g, 'OR', 1 from generate_series(1, \(lines)) g
                on conflict do nothing
                """,
                """
                insert into public.subscribers (organization_id, id, account_id, carrier_id, status, network_status, current_sim_id)
                select '\(Self.org)', md5('b8-line' || g)::uuid, md5('b8-account' || g)::uuid, '\(carrier)', 'active', 'active', md5('b8-sim' || g)::uuid
                from generate_series(1, \(lines)) g
                on conflict do nothing
                """,
                "set session_replication_role = origin",
                "analyze public.sim_cards, public.accounts, public.subscribers, public.carrier_commands",
            ] {
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            }
        }

        let fake = try await FakeControlCenter.start()
        defer { fake.abandon() }
        var real: [Double] = []
        var noop: [Double] = []
        var next = 1
        for rep in 1...reps {
            for useFake in [true, false] {
                try await queue(client, from: next, count: commands)
                let adapter: any CarrierAdapter =
                    useFake
                    ? ControlCenterAdapter(
                        settings: .init(baseURL: fake.baseURL, username: "bench", apiKey: "key"),
                        transport: URLSessionTransport(timeout: .seconds(10)))
                    : NoOpCarrier()
                let rate = try await drain(client, adapter: adapter, first: next, logger: logger)
                if useFake { real.append(rate) } else { noop.append(rate) }
                note("repetition \(rep)/\(reps) \(useFake ? "fake Control Center" : "no-op carrier"): \(Int(rate)) commands/s")
                next += commands
            }
        }
        try write(real: real, noop: noop)
    }

    /// Queues `count` suspensions (as suspend_subscriber would) on fresh lines, in one statement.
    func queue(_ client: PostgresClient, from first: Int, count: Int) async throws {
        try await execute(
            client,
            """
            insert into public.carrier_commands (organization_id, subscriber_id, carrier_id, kind, payload, rollback_state, idempotency_key)
            select s.organization_id, s.id, s.carrier_id, 'suspend',
                   jsonb_build_object('iccid', c.iccid, 'reason', 'non_payment'),
                   jsonb_build_object('status', 'active', 'network_status', 'active', 'sims', '[]'::jsonb), 'b8:' || g
            from generate_series(\(first), \(first + count - 1)) g
            join public.subscribers s on s.organization_id = '\(Self.org)' and s.id = md5('b8-line' || g)::uuid
            join public.sim_cards c on c.organization_id = s.organization_id and c.id = s.current_sim_id
            """)
    }

    /// Runs the workers until every queued command is done; returns commands per second.
    func drain(_ client: PostgresClient, adapter: any CarrierAdapter, first: Int, logger: Logger) async throws -> Double {
        let services = (1...workers).map { index -> OutboxWorker in
            var settings = OutboxWorker.Settings(name: "b8-\(first)-\(index)")
            settings.batchSize = batch
            settings.pollInterval = .milliseconds(50)
            return OutboxWorker(client: client, adapters: [adapter], settings: settings, logger: logger)
        }
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        let started = ContinuousClock.now
        let running = Task { try await group.run() }
        while true {
            let open = try await scalar(
                client,
                "select count(*)::text from public.carrier_commands where idempotency_key like 'b8:%' and status in ('pending', 'in_flight')"
            )
            if open == "0" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let elapsed = ContinuousClock.now - started
        await group.triggerGracefulShutdown()
        try await running.value
        let failed = try await scalar(
            client, "select count(*)::text from public.carrier_commands where idempotency_key like 'b8:%' and status <> 'succeeded'")
        guard failed == "0" else { throw ValidationError("\(failed) commands did not succeed") }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Double(commands) / seconds
    }

    func write(real: [Double], noop: [Double]) throws {
        func stats(_ values: [Double]) -> [String: Double] {
            let sorted = values.sorted()
            return [
                "min": sorted.first!.rounded(), "median": sorted[sorted.count / 2].rounded(), "max": sorted.last!.rounded(),
                "runs": Double(values.count),
            ]
        }
        let realStats = stats(real)
        let noopStats = stats(noop)
        let ratio = (realStats["median"]! / noopStats["median"]! * 1000).rounded() / 1000
        let date = ISO8601DateFormatter().string(from: Date())
        let json: [String: Any] = [
            "benchmark": "B8 outbox", "date": date, "machine": ["cores": ProcessInfo.processInfo.activeProcessorCount],
            "inputs": [
                "commands_per_run": commands, "workers": workers, "batch": batch, "repetitions": reps, "kind": "suspend",
                "carrier": "fake Control Center on loopback (PUT /rws/api/v1/devices/{iccid}), URLSession",
            ],
            "fake_carrier_commands_per_s": realStats, "noop_carrier_commands_per_s": noopStats, "ratio_vs_noop": ratio,
            "target_commands_per_s": 5000,
        ]
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: results + "/outbox.json"))
        let md = """
            # B8 — outbox: claim → call the carrier → complete

            Run \(date) on \(ProcessInfo.processInfo.activeProcessorCount) cores; \(commands.formatted()) suspensions per run, \(workers) workers \
            claiming \(batch) at a time, \(reps) repetitions, fresh lines each run (`swift run -c release WingtelBench`). min / median / max.

            | loop | commands/s | target |
            |---|---|---|
            | fake Control Center over HTTP (URLSession) | \(Int(realStats["min"]!)) / \(Int(realStats["median"]!)) / \(Int(realStats["max"]!)) | ≥ 5,000 |
            | no-op carrier (reference: the queue and SQL alone) | \(Int(noopStats["min"]!)) / \(Int(noopStats["median"]!)) / \(Int(noopStats["max"]!)) | reference |
            | ratio of medians | \(ratio) | |

            Each command: claimed with `claim_outbox_commands` (SKIP LOCKED, lease), sent, then `complete_carrier_command` (the line's \
            network state, its SIM's state, the command's result, audited) — one transaction per command.

            """
        try md.write(toFile: results + "/outbox.md", atomically: true, encoding: .utf8)
        print(md)
    }

    func execute(_ client: PostgresClient, _ sql: String) async throws {
        try await client.query(PostgresQuery(unsafeSQL: sql))
    }

    func scalar(_ client: PostgresClient, _ sql: String) async throws -> String {
        for try await value in try await client.query(PostgresQuery(unsafeSQL: sql)).decode(String.self) { return value }
        return ""
    }
}

func note(_ line: String) {
    FileHandle.standardError.write(Data(("[bench] " + line + "\n").utf8))
}

/// The reference carrier: answers "done" at once, no network.
struct NoOpCarrier: CarrierAdapter {
    let name = "att_control_center"
    func send(_ command: CarrierCommand) async -> CarrierOutcome { .completed(result: "{}") }
}

/// A Control Center on loopback: `PUT /rws/api/v1/devices/{iccid}` answers 200 with the device.
enum FakeControlCenter {
    static func start() async throws -> LoopbackServer {
        let router = Router()
        router.put("rws/api/v1/devices/{iccid}") { request, context -> Response in
            var request = request
            _ = try await request.collectBody(upTo: 1 << 16)
            let iccid = context.parameters.get("iccid") ?? ""
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(
                status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"iccid":"\#(iccid)","status":"DEACTIVATED"}"#))
            )
        }
        return try await LoopbackServer.start(router: router, label: "fake.control-center")
    }
}
