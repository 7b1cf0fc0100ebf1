import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// The scheduler of `wingtel serve`: at every tick it seals the audit trail's new entries into
/// their organizations' hash chains (`audit.seal`), queues the carrier changes of downgrades
/// whose period has started (`apply_scheduled_plan_changes`) and runs the daily jobs that are due
/// — each organization's bill run and autopay charges from 02:00 and dunning from 06:00 local
/// time — each job in a
/// transaction of its own, claimed once per organization and day across all servers
/// (sql/50_functions/70_scheduler.sql). A failed job keeps its error (`scheduled_job_runs`) and is
/// tried again ten minutes later.
public struct Scheduler: Service {
    let client: PostgresClient
    let interval: Duration
    let logger: Logger

    public init(client: PostgresClient, interval: Duration = .seconds(60), logger: Logger) {
        self.client = client
        self.interval = interval
        var logger = logger
        logger[metadataKey: "service"] = "scheduler"
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await tick()
            let interval = interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pass; returns the daily jobs it ran (job, organization, succeeded).
    @discardableResult
    public func tick(asOf: Date? = nil) async -> [(job: String, organization: String, succeeded: Bool)] {
        let moment = asOf.map { ISO8601DateFormatter().string(from: $0) }
        do {
            // The audit trail's hash chain takes in the entries of finished transactions.
            try await client.query("select audit.seal()", logger: logger)
        } catch {
            logger.error("sealing the audit trail failed", metadata: ["error": "\(String(reflecting: error))"])
        }
        do {
            let rows = try await client.query(
                "select public.apply_scheduled_plan_changes(coalesce(\(moment)::timestamptz, now()))", logger: logger)
            for try await queued in rows.decode(Int.self) where queued > 0 {
                logger.info("queued the carrier changes of scheduled downgrades", metadata: ["count": "\(queued)"])
            }
        } catch {
            logger.error("applying scheduled plan changes failed", metadata: ["error": "\(String(reflecting: error))"])
        }
        var claimed: [(String, String, String)] = []
        do {
            let rows = try await client.query(
                "select job, organization_id::text, run_on::text from public.claim_scheduled_jobs(coalesce(\(moment)::timestamptz, now()))",
                logger: logger)
            for try await row in rows.decode((String, String, String).self) { claimed.append(row) }
        } catch {
            logger.error("claiming scheduled jobs failed", metadata: ["error": "\(String(reflecting: error))"])
            return []
        }
        // Bill runs first, then autopay charges of the new invoices, then dunning; one job at a
        // time (each may be a minute's work).
        let order = ["bill_run": 0, "autopay": 1, "dunning": 2]
        var ran: [(job: String, organization: String, succeeded: Bool)] = []
        for (job, organization, day) in claimed.sorted(by: { (order[$0.0] ?? 9, $0.1) < (order[$1.0] ?? 9, $1.1) }) {
            var jobLogger = logger
            jobLogger[metadataKey: "job"] = "\(job)"
            jobLogger[metadataKey: "organization"] = "\(organization)"
            do {
                let started = ContinuousClock.now
                let rows = try await client.query(
                    "select public.run_scheduled_job(\(job), \(organization)::uuid, \(day)::date, coalesce(\(moment)::timestamptz, now()))::text",
                    logger: jobLogger)
                for try await result in rows.decode(String.self) {
                    jobLogger.info(
                        "scheduled job done", metadata: ["result": "\(result.prefix(300))", "took": "\(ContinuousClock.now - started)"])
                }
                ran.append((job, organization, true))
            } catch {
                jobLogger.error(
                    "scheduled job failed; it is tried again in ten minutes", metadata: ["error": "\(String(reflecting: error))"])
                let message = (error as? PSQLError)?.serverInfo?[.message] ?? "\(error)"
                _ = try? await client.query(
                    "select public.fail_scheduled_job(\(job), \(organization)::uuid, \(day)::date, \(message))", logger: jobLogger)
                ran.append((job, organization, false))
            }
        }
        return ran
    }
}
