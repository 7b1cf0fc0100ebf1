import Foundation
import Logging
import PostgresNIO
import Testing
import WingtelDatabase
import WingtelFunctions
import WingtelTestSupport

@Suite("The scheduler: daily bill runs, autopay and dunning, once per organization and day")
struct SchedulerTests {
    static func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test("jobs run once per local day after their hour, in order; a failed job keeps its error and is claimed again later")
    func daily() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        var logger = Logger(label: "wingtel.tests.scheduler")
        logger.logLevel = .critical
        let client = PostgresClient(
            configuration: settings.postgresClientConfiguration(role: "service_role", maximumConnections: 2), backgroundLogger: logger)
        let running = Task { await client.run() }
        defer { running.cancel() }
        let scheduler = Scheduler(client: client, logger: logger)
        let zone = try #require(
            try await Probe.rows(settings, "select time_zone from public.organizations where slug = 'acme-mobile'").first?[0] ?? nil)

        // 01:00 local: nothing is due yet.
        let night = try await Probe.rows(
            settings,
            "select to_char((timestamp '2026-03-10 01:00' at time zone '\(zone)') at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
        let nightText = try #require(night[0][0])
        #expect(
            await scheduler.tick(asOf: Self.date(nightText)).filter { $0.organization == "10000000-0000-4000-8000-00000000000a" }.isEmpty)

        // 07:00 local: the bill run, then the autopay charges, then dunning, for each organization; once.
        let morning = try await Probe.rows(
            settings,
            "select to_char((timestamp '2026-03-10 07:00' at time zone '\(zone)') at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
        let morningText = try #require(morning[0][0])
        let ran = await scheduler.tick(asOf: Self.date(morningText))
        let acme = ran.filter { $0.organization == "10000000-0000-4000-8000-00000000000a" }
        #expect(acme.map(\.job) == ["bill_run", "autopay", "dunning"])
        #expect(acme.allSatisfy { $0.succeeded })
        #expect(await scheduler.tick(asOf: Self.date(morningText)).isEmpty)
        let runs = try await Probe.rows(
            settings,
            "select job, outcome, run_on::text from private.job_runs where organization_id = '10000000-0000-4000-8000-00000000000a' order by job"
        )
        #expect(
            runs == [
                ["autopay", "succeeded", "2026-03-10"], ["bill_run", "succeeded", "2026-03-10"], ["dunning", "succeeded", "2026-03-10"],
            ])
        // The March bill run billed what was due (the seed's accounts bill on day 5 and 1).
        #expect(try await Probe.int(settings, "select count(*) from public.bill_runs where billing_month = '2026-03-01'") >= 1)

        // A failure is kept with its error and retried after ten minutes, not before.
        try await Probe.execute(
            settings,
            "select public.fail_scheduled_job('dunning', '10000000-0000-4000-8000-00000000000a', '2026-03-10', 'simulated: the database was restarting')"
        )
        let failed = try await Probe.rows(
            settings,
            "select outcome, result ->> 'error' from private.job_runs where job = 'dunning' and organization_id = '10000000-0000-4000-8000-00000000000a'"
        )
        #expect(failed == [["failed", "simulated: the database was restarting"]])
        #expect(await scheduler.tick(asOf: Self.date(morningText)).isEmpty)
        try await Probe.execute(
            settings, "update private.job_runs set finished_at = finished_at - interval '11 minutes' where outcome = 'failed'")
        let retried = await scheduler.tick(asOf: Self.date(morningText))
        #expect(retried.map(\.job) == ["dunning"])
        #expect(retried.allSatisfy { $0.succeeded })
    }
}
