import Foundation
import Testing
import WingtelDatabase
import WingtelFunctions
import WingtelTestSupport
import WingtelVerification

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("The functions server: health, metrics, database outages, graceful shutdown, configuration")
struct ServerTests {
    static let account = "ac000000-0000-4000-8000-00000000000a"

    @Test("database unreachable: 503 with Retry-After and nothing applied; the provider's retry then applies once")
    func databaseDown() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        // Nothing listens on port 9 of loopback: every connection attempt is refused.
        let unreachable = ConnectionSettings(
            host: "127.0.0.1", port: 9, username: settings.username, password: settings.password, database: settings.database)
        let down = try await LiveServer.start(settings: unreachable, configuration: LiveServer.configuration(databaseTimeout: .seconds(2)))
        let delivery = StripeDelivery.paymentSucceeded(event: "evt_outage", intent: "pi_outage", cents: 1500, account: Self.account)
        let refused = try await down.post(
            "/functions/v1/stripe-webhook", body: delivery.body, headers: ["Stripe-Signature": delivery.header])
        #expect(refused.status == 503)
        #expect(refused.headers["retry-after"] == "5")
        #expect(refused.body.contains("retry later"))
        #expect(try await down.get("/health").status == 503)
        try await down.stop()
        #expect(try await Probe.int(settings, "select count(*) from private.webhook_receipts") == 0)

        let up = try await LiveServer.start(settings: settings)
        defer { Task { try await up.stop() } }
        #expect(try await up.get("/health").body == #"{"status":"ok","database":"ok"}"#)
        let retried = try await up.post("/functions/v1/stripe-webhook", body: delivery.body, headers: ["Stripe-Signature": delivery.header])
        #expect(retried.status == 200)
        #expect(try await Probe.int(settings, "select count(*) from public.payments where provider_payment_id = 'pi_outage'") == 1)
    }

    @Test("/metrics counts requests per route and status, and events per provider and outcome")
    func metrics() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        let delivery = StripeDelivery.paymentSucceeded(event: "evt_metrics", intent: "pi_metrics", cents: 700, account: Self.account)
        for _ in 0..<2 {
            _ = try await server.post("/functions/v1/stripe-webhook", body: delivery.body, headers: ["Stripe-Signature": delivery.header])
        }
        _ = try await server.post("/functions/v1/stripe-webhook", body: delivery.body, headers: [:])
        let text = try await server.get("/metrics")
        #expect(text.status == 200)
        #expect(text.headers["content-type"]?.hasPrefix("text/plain") == true)
        #expect(text.body.contains(#"wingtel_webhook_events_total{provider="stripe",outcome="applied"} 1"#))
        #expect(text.body.contains(#"wingtel_webhook_events_total{provider="stripe",outcome="duplicate"} 1"#))
        #expect(text.body.contains(#"wingtel_webhook_rejected_total{provider="stripe",reason="missing"} 1"#))
        #expect(text.body.contains(#"wingtel_http_requests_total{route="/functions/v1/stripe-webhook",status="200"} 2"#))
        #expect(text.body.contains(#"wingtel_http_requests_total{route="/functions/v1/stripe-webhook",status="401"} 1"#))
        #expect(text.body.contains(#"wingtel_http_request_duration_seconds_count{route="/functions/v1/stripe-webhook"} 3"#))
    }

    @Test("graceful shutdown during load: every answered event is complete, no event half-applied")
    func gracefulShutdown() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        let deliveries = (0..<60).map {
            StripeDelivery.paymentSucceeded(event: "evt_load_\($0)", intent: "pi_load_\($0)", cents: 100 + $0, account: Self.account)
        }
        // Shut down once a few answers are in, with the rest still in flight or not yet sent
        // (waiting for answers, not for a fixed time, so a loaded machine cannot change the test).
        let answers = AnswerCounter()
        let results = await withTaskGroup(of: (Int, Int?).self) { group in
            for (index, delivery) in deliveries.enumerated() {
                group.addTask {
                    let answer = try? await server.post(
                        "/functions/v1/stripe-webhook", body: delivery.body, headers: ["Stripe-Signature": delivery.header])
                    if answer?.status == 200 { await answers.add() }
                    return (index, answer?.status)
                }
            }
            group.addTask {
                while await answers.count < 5 { try? await Task.sleep(for: .milliseconds(5)) }
                try? await server.stop()
                return (-1, nil)
            }
            return await group.reduce(into: [(Int, Int?)]()) { $0.append($1) }
        }
        let answered = results.filter { $0.1 == 200 }.map { "'evt_load_\($0.0)'" }
        #expect(!answered.isEmpty)
        // Every 200 is in the database with its payment.
        let list = answered.joined(separator: ",")
        #expect(
            try await Probe.int(
                settings, "select count(*) from private.webhook_receipts where event_id in (\(list)) and outcome = 'applied'")
                == answered.count)
        // Whatever was recorded (answered or not) is whole: receipt and payment together.
        let receipts = try await Probe.int(settings, "select count(*) from private.webhook_receipts where event_id like 'evt_load_%'")
        let payments = try await Probe.int(settings, "select count(*) from public.payments where provider_payment_id like 'pi_load_%'")
        #expect(receipts == payments)
        #expect(!results.contains { $0.1 != nil && $0.1 != 200 && $0.0 >= 0 }, "no request got an error status: \(results)")
    }

    actor AnswerCounter {
        private(set) var count = 0
        func add() { count += 1 }
    }

    @Test("configuration from the environment over a file; rotation lists; clear errors")
    func configuration() throws {
        let directory = try TemporaryDirectory("functions-config")
        defer { directory.remove() }
        let file = try directory.write(
            "wingtel.env",
            """
            # settings for wingtel serve
            PORT=9090
            STRIPE_WEBHOOK_SECRET="whsec_a,whsec_b"
            VERIZON_CALLBACK_USERNAME=u1,u2
            VERIZON_CALLBACK_PASSWORD=p1,p2
            WINGTEL_PUBLIC_URL=https://api.example.com/
            """)
        let configuration = try FunctionsConfiguration(environment: ["PORT": "9191", "TWILIO_AUTH_TOKEN": "tok"], file: file.path)
        #expect(configuration.port == 9191)
        #expect(configuration.stripeWebhookSecrets.values == ["whsec_a", "whsec_b"])
        #expect(configuration.twilioAuthTokens.values == ["tok"])
        #expect(configuration.verizonCallbackCredentials == [.init(username: "u1", password: "p1"), .init(username: "u2", password: "p2")])
        #expect(configuration.publicURL == "https://api.example.com")
        #expect(
            configuration.unconfiguredRoutes == [
                "zift-webhook (ZIFT_WEBHOOK_SECRET)", "carriers/att (ATT_PUSH_SECRET)", "carriers/tmobile (TMOBILE_WEBHOOK_SECRET)",
            ])

        #expect(throws: FunctionsError.self) { try FunctionsConfiguration(environment: ["PORT": "eighty"]) }
        #expect(throws: FunctionsError.self) { try FunctionsConfiguration(environment: ["WINGTEL_PUBLIC_URL": "api.example.com"]) }
        #expect(throws: FunctionsError.self) {
            try FunctionsConfiguration(environment: ["VERIZON_CALLBACK_USERNAME": "u1,u2", "VERIZON_CALLBACK_PASSWORD": "p1"])
        }
        #expect(throws: FunctionsError.self) {
            try FunctionsConfiguration(environment: [:], file: directory.url.appendingPathComponent("missing").path)
        }
    }
}
