import Logging
import PostgresNIO

/// The database side of the functions: one SQL call per request, each a `public.handle_*`
/// function that records the event once and applies it in the same transaction. Calls run on a
/// pooled client whose sessions act as service_role.
public struct EventStore: Sendable {
    let client: PostgresClient
    let timeout: Duration

    public init(client: PostgresClient, timeout: Duration) {
        self.client = client
        self.timeout = timeout
    }

    /// `{outcome, event_id, detail}` as the SQL handler returned it (JSON text).
    public func stripe(event: String, requestID: String, logger: Logger) async throws -> String {
        try await text("select public.handle_stripe_event(\(event)::jsonb, \(requestID))::text", logger: logger)
    }

    /// The TwiML answer.
    public func twilioMessage(parameters: String, requestID: String, logger: Logger) async throws -> String {
        try await text("select public.handle_twilio_sms(\(parameters)::jsonb, \(requestID))", logger: logger)
    }

    public func twilioStatus(parameters: String, requestID: String, logger: Logger) async throws -> String {
        try await text("select public.handle_twilio_status(\(parameters)::jsonb, \(requestID))::text", logger: logger)
    }

    public func carrier(_ carrier: Provider, event: String, requestID: String, logger: Logger) async throws -> String {
        try await text("select public.handle_carrier_event(\(carrier.rawValue), \(event)::jsonb, \(requestID))::text", logger: logger)
    }

    public func zift(notification: String, confirmation: String, requestID: String, logger: Logger) async throws -> String {
        try await text(
            "select public.handle_zift_event(\(notification)::jsonb, \(confirmation)::jsonb, \(requestID))::text", logger: logger)
    }

    /// True when the database answers within the timeout.
    public func isHealthy(logger: Logger) async -> Bool {
        (try? await text("select 'ok'", logger: logger)) == "ok"
    }

    func text(_ query: PostgresQuery, logger: Logger) async throws -> String {
        let client = client
        return try await withDeadline(timeout) {
            let rows = try await client.query(query, logger: logger)
            for try await value in rows.decode(String.self) { return value }
            throw FunctionsError.internal
        }
    }
}

/// Runs `work`; if it takes longer than `limit`, cancels it and answers 503 (the provider retries;
/// a late commit of the same event is then found as a duplicate).
func withDeadline<T: Sendable>(_ limit: Duration, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await work() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw FunctionsError.unavailable("the database did not answer within \(limit)")
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw FunctionsError.internal }
        return first
    }
}
