import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Sends carrier commands from the outbox (`carrier_commands`) through the adapters.
///
/// It claims due commands with `claim_outbox_commands` (FOR UPDATE SKIP LOCKED, under a lease),
/// sends each through its carrier's adapter with the command's idempotency key, and writes the
/// outcome back through SQL: `mark_carrier_command_sent` (accepted, answer by callback),
/// `complete_carrier_command` (done or refused), `retry_carrier_command` (backoff with jitter or
/// the carrier's Retry-After; dead letter after max_attempts). It wakes on
/// `NOTIFY wingtel_carrier_commands` and polls as a fallback. Any number of workers may run side
/// by side; a command whose worker died is claimed again when its lease runs out. On graceful
/// shutdown it stops claiming and finishes the commands it holds.
public struct OutboxWorker: Service {
    public struct Settings: Sendable {
        public var name: String
        public var batchSize = 16
        public var lease: Duration = .seconds(60)
        public var pollInterval: Duration = .seconds(5)

        public init(name: String = "worker-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))") {
            self.name = name
        }
    }

    public static let channel = "wingtel_carrier_commands"

    let client: PostgresClient
    let adapters: [String: any CarrierAdapter]
    let settings: Settings
    let logger: Logger
    let metrics: FunctionsMetrics?

    public init(
        client: PostgresClient, adapters: [any CarrierAdapter], settings: Settings = Settings(), metrics: FunctionsMetrics? = nil,
        logger: Logger
    ) {
        self.client = client
        self.adapters = Dictionary(adapters.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.settings = settings
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "worker"] = "\(settings.name)"
        self.logger = logger
    }

    public func run() async throws {
        guard !adapters.isEmpty else {
            logger.notice("no carrier adapter is configured; the outbox worker is idle")
            try? await gracefulShutdown()
            return
        }
        logger.info("outbox worker started", metadata: ["adapters": "\(adapters.keys.sorted().joined(separator: ","))"])
        await drainQueue(client: client, channel: Self.channel, pollInterval: settings.pollInterval, logger: logger) { await drainOnce() }
        logger.info("outbox worker stopped")
    }

    /// Claims one batch and sends it; returns how many commands it handled.
    @discardableResult
    public func drainOnce() async -> Int {
        let commands: [CarrierCommand]
        do {
            commands = try await claim()
        } catch {
            logger.warning(
                "claiming commands failed; retrying after the poll interval", metadata: ["error": "\(String(reflecting: error))"])
            return 0
        }
        await withTaskGroup(of: Void.self) { group in
            for command in commands { group.addTask { await process(command) } }
        }
        return commands.count
    }

    func claim() async throws -> [CarrierCommand] {
        let names = adapters.keys.sorted()
        let lease = "\(Int(settings.lease.components.seconds)) seconds"
        let rows = try await client.query(
            """
            select organization_id::text, id::text, kind::text, adapter::text, payload::text, idempotency_key, attempts, max_attempts
            from public.claim_outbox_commands(\(settings.name), \(names)::public.carrier_adapter[], \(settings.batchSize)::integer, \(lease)::interval)
            """, logger: logger)
        var commands: [CarrierCommand] = []
        for try await (org, id, kind, adapter, payload, key, attempts, maxAttempts) in rows.decode(
            (String, String, String, String, String, String, Int, Int).self)
        {
            commands.append(
                CarrierCommand(
                    organizationID: org, id: id, kind: kind, adapter: adapter, payload: payload, idempotencyKey: key, attempts: attempts,
                    maxAttempts: maxAttempts))
        }
        return commands
    }

    func process(_ command: CarrierCommand) async {
        guard let adapter = adapters[command.adapter] else { return }
        var logger = logger
        logger[metadataKey: "command"] = "\(command.id)"
        let outcome = await adapter.send(command)
        // A worker stopped hard mid-call writes nothing: the lease runs out and another worker
        // sends the command again with the same idempotency key.
        if Task.isCancelled { return }
        do {
            switch outcome {
            case .accepted(let requestID):
                try await client.query(
                    "select 1 from public.mark_carrier_command_sent(\(command.organizationID)::uuid, \(command.id)::uuid, \(requestID))",
                    logger: logger)
                logger.info("command accepted", metadata: ["kind": "\(command.kind)", "request": "\(requestID)"])
            case .completed(let result):
                try await client.query(
                    "select 1 from public.complete_carrier_command(\(command.organizationID)::uuid, \(command.id)::uuid, true, \(result)::jsonb, null)",
                    logger: logger)
                logger.info("command completed", metadata: ["kind": "\(command.kind)"])
            case .refused(let error):
                try await client.query(
                    "select 1 from public.complete_carrier_command(\(command.organizationID)::uuid, \(command.id)::uuid, false, '{}'::jsonb, \(error))",
                    logger: logger)
                logger.notice("command refused by the carrier", metadata: ["kind": "\(command.kind)", "error": "\(error)"])
            case .retry(let error, let after):
                let interval = after?.postgresInterval
                let rows = try await client.query(
                    "select status::text from public.retry_carrier_command(\(command.organizationID)::uuid, \(command.id)::uuid, \(error), \(interval)::interval)",
                    logger: logger)
                var status = "pending"
                for try await value in rows.decode(String.self) { status = value }
                if status == "dead" {
                    logger.error(
                        "command dead after \(command.attempts) attempts", metadata: ["kind": "\(command.kind)", "error": "\(error)"])
                } else {
                    logger.notice("command will be retried", metadata: ["attempt": "\(command.attempts)", "error": "\(error)"])
                }
            }
            metrics?.outbox(command.adapter, outcome)
        } catch {
            // The lease runs out and the command is sent again (same idempotency key).
            logger.error("writing the outcome back failed", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

}

/// The loop of a queue worker (carrier outbox, payment charges, SMS): drain until a pass finds
/// nothing, then wait for a NOTIFY on `channel` or the poll interval, whichever comes first. On
/// graceful shutdown it finishes the batch in hand and returns.
func drainQueue(
    client: PostgresClient, channel: String, pollInterval: Duration, logger: Logger, drain: @escaping @Sendable () async -> Int
) async {
    let doorbell = Doorbell()
    let listener = Task { await listenForever(client: client, channel: channel, doorbell: doorbell, pause: pollInterval, logger: logger) }
    defer { listener.cancel() }
    await withGracefulShutdownHandler {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if await drain() == 0 { await doorbell.wait(timeout: pollInterval) }
        }
    } onGracefulShutdown: {
        Task { await doorbell.ring() }
    }
}

/// LISTEN on a dedicated pooled connection, ringing `doorbell` for each notification, until the
/// task is cancelled; reconnects after `pause` if the connection drops (polling covers the gap).
func listenForever(client: PostgresClient, channel: String, doorbell: Doorbell, pause: Duration, logger: Logger) async {
    while !Task.isCancelled {
        do {
            try await client.withConnection { connection in
                try await connection.listen(on: channel) { notifications in
                    for try await _ in notifications { await doorbell.ring() }
                }
            }
        } catch {
            if Task.isCancelled { return }
            logger.notice("LISTEN \(channel) lost; polling until it is back", metadata: ["error": "\(error)"])
        }
        try? await Task.sleep(for: pause)
    }
}

/// Wakes a waiting worker: a notification, the poll timer or shutdown, whichever comes first.
actor Doorbell {
    private var rung = false
    private var waiter: CheckedContinuation<Void, Never>?

    func ring() {
        if let waiter {
            self.waiter = nil
            waiter.resume()
        } else {
            rung = true
        }
    }

    func wait(timeout: Duration) async {
        if rung {
            rung = false
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.suspend() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                await self.ring()
            }
            await group.next()
            group.cancelAll()
        }
        rung = false
    }

    private func suspend() async {
        if rung { return }
        await withCheckedContinuation { waiter = $0 }
    }
}

extension Duration {
    /// The duration as a PostgreSQL interval literal (`"2.5 seconds"`), for `\(…)::interval` bindings.
    var postgresInterval: String {
        "\(Double(components.seconds) + Double(components.attoseconds) / 1e18) seconds"
    }
}
