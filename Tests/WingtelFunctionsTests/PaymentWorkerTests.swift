import Foundation
import Logging
import PostgresNIO
import Testing
import WingtelDatabase
import WingtelFunctions
import WingtelTestSupport
import WingtelVerification

/// The payment worker against a fake Stripe API and a fake Zift gateway, over a real database:
/// autopay and staff charges of saved methods, sent with their idempotency keys, their outcomes
/// recorded once whether the worker or the provider's webhook tells first.
@Suite("The payment worker: autopay and saved-card charges through Stripe and Zift")
struct PaymentWorkerTests {
    static let orgA = "10000000-0000-4000-8000-00000000000a"
    static let accountA = "ac000000-0000-4000-8000-00000000000a"
    static let orgB = "10000000-0000-4000-8000-00000000000b"
    static let accountB = "ac000000-0000-4000-8000-00000000000b"

    struct Harness {
        let settings: ConnectionSettings
        let stripe: FakeStripeAPI
        let zift: FakeZift
        let worker: PaymentWorker
        let running: Task<Void, Never>

        func stop() {
            running.cancel()
            stripe.server.abandon()
            zift.server.abandon()
        }

        /// Skips the backoff of charges waiting for a resend (what the clock would do).
        func due() async throws {
            try await Probe.execute(settings, "update public.payment_charges set next_attempt_at = now() where status = 'pending'")
        }

        func charge(_ key: String) async throws -> [String?] {
            let rows = try await Probe.rows(
                settings,
                """
                select status, sends::text, provider_payment_id, failure_code, last_error, amount_cents::text, id::text
                from public.payment_charges where idempotency_key = '\(key)'
                """)
            return try #require(rows.first)
        }
    }

    static func harness() async throws -> Harness {
        let settings = try await TestCluster.shared.migratedDatabase()
        let stripe = try await FakeStripeAPI.start()
        let zift = try await FakeZift.start()
        var logger = Logger(label: "wingtel.tests.payments")
        logger.logLevel = .critical
        let client = PostgresClient(
            configuration: settings.postgresClientConfiguration(role: "service_role", maximumConnections: 4), backgroundLogger: logger)
        let running = Task { await client.run() }
        // A short timeout, so an answer the fake loses is a timeout here.
        let transport = URLSessionTransport(timeout: .seconds(4))
        let worker = PaymentWorker(
            client: client,
            adapters: [
                StripePaymentAdapter(settings: .init(baseURL: stripe.baseURL, secretKey: FakeStripeAPI.secretKey), transport: transport),
                ZiftPaymentAdapter(
                    gateway: ZiftGateway(
                        settings: .init(baseURL: zift.baseURL, userName: "merchant", password: "pw", accountID: "acct-1"),
                        transport: transport)),
            ], name: "test-payments", logger: logger)
        return Harness(settings: settings, stripe: stripe, zift: zift, worker: worker, running: running)
    }

    /// Organization A's March invoice (a 1500 SIM replacement on top of the plan), with autopay on
    /// for its seed Stripe card; returns the invoice id.
    static func autopayInvoiceA(_ settings: ConnectionSettings) async throws -> String {
        try await Probe.execute(
            settings,
            """
            insert into public.account_charges (organization_id, account_id, kind, description, amount_cents, charge_on)
            values ('\(orgA)', '\(accountA)', 'one_off', 'SIM replacement', 1500, date '2026-03-10');
            select public.run_bill_cycle('\(orgA)', date '2026-03-01', timestamptz '2026-03-20 12:00:00+00');
            select public.set_autopay('\(orgA)', '\(accountA)', true);
            select public.queue_autopay_charges('\(orgA)');
            """)
        return try #require(
            try await Probe.rows(
                settings,
                "select id::text from public.invoices where organization_id = '\(orgA)' and account_id = '\(accountA)' and billing_month = '2026-03-01'"
            ).first?.first ?? nil)
    }

    @Test(
        "a lost answer and a 500 are sent again with the same key: Stripe replays, the card is charged once, the webhook after it changes nothing"
    )
    func stripeAutopayOnce() async throws {
        let harness = try await Self.harness()
        defer { harness.stop() }
        let settings = harness.settings
        let invoice = try await Self.autopayInvoiceA(settings)
        let key = "autopay:\(invoice):1"
        let owed = try await Probe.int(
            settings,
            "select total_cents - amount_paid_cents - amount_credited_cents from public.invoices where organization_id = '\(Self.orgA)' and id = '\(invoice)'"
        )
        #expect(owed > 0)

        // 1: Stripe charges, but its answer never arrives (timeout). 2: a 500 before charging.
        // 3: the same key again — Stripe replays the first PaymentIntent.
        await harness.stripe.state.loseAnswers(1)
        #expect(await harness.worker.drainOnce() == 1)
        #expect(try await harness.charge(key)[0] == "pending")
        await harness.stripe.state.fail(500, #"{"error":{"type":"api_error","message":"An unknown error occurred"}}"#)
        try await harness.due()
        #expect(await harness.worker.drainOnce() == 1)
        try await harness.due()
        #expect(await harness.worker.drainOnce() == 1)

        let charge = try await harness.charge(key)
        #expect(charge[0] == "succeeded")
        #expect(charge[1] == "3")
        #expect(charge[2] == "pi_fake1")
        #expect(await harness.stripe.state.intents == 1)
        let requests = await harness.stripe.state.requests
        #expect(requests.count == 3)
        #expect(requests.allSatisfy { $0.key == key })
        let form = try #require(requests.first?.form)
        #expect(form["amount"] == String(owed))
        #expect(form["currency"] == "usd")
        #expect(form["customer"] == "cus_seedAcme")
        #expect(form["payment_method"] == "pm_seedVisa4242")
        #expect(form["confirm"] == "true" && form["off_session"] == "true")
        #expect(form["metadata[wingtel_invoice_id]"] == invoice)
        #expect(form["metadata[wingtel_charge_id]"] == charge[6])
        #expect(form["metadata[wingtel_account_id]"] == Self.accountA)

        let payments = try await Probe.rows(
            settings, "select status::text, amount_cents::text from public.payments where provider_payment_id = 'pi_fake1'")
        #expect(payments == [["succeeded", String(owed)]])
        #expect(
            try await Probe.rows(
                settings, "select status::text from public.invoices where organization_id = '\(Self.orgA)' and id = '\(invoice)'")
                == [["paid"]])
        // Nothing left to send, and the daily job queues nothing more for a paid invoice.
        #expect(await harness.worker.drainOnce() == 0)
        #expect(try await Probe.int(settings, "select public.queue_autopay_charges('\(Self.orgA)', now() + interval '10 days')") == 0)

        // Stripe's payment_intent.succeeded arrives afterwards: applied to the charge, no second payment.
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        let event = StripeDelivery(
            """
            {"id":"evt_autopay_1","object":"event","type":"payment_intent.succeeded","created":\(Clock.now),
             "data":{"object":{"id":"pi_fake1","object":"payment_intent","amount":\(owed),"amount_received":\(owed),"currency":"usd",
             "status":"succeeded","metadata":{"wingtel_organization_id":"\(Self.orgA)","wingtel_account_id":"\(Self.accountA)",
             "wingtel_charge_id":"\(charge[6] ?? "")"}}}}
            """)
        let answer = try await server.post(
            "/functions/v1/stripe-webhook", body: event.body,
            headers: ["Content-Type": "application/json", "Stripe-Signature": event.header])
        #expect(answer.status == 200)
        #expect(answer.body.contains("applied"))
        #expect(try await Probe.int(settings, "select count(*) from public.payments where provider_payment_id = 'pi_fake1'") == 1)
        #expect(
            try await Probe.int(
                settings,
                "select count(*) from public.payments where organization_id = '\(Self.orgA)' and received_at > now() - interval '1 hour'")
                == 1)
    }

    @Test(
        "declines are recorded once, whether the worker or the payment_failed webhook tells first; a processing charge is settled by the webhook"
    )
    func stripeDeclinesAndProcessing() async throws {
        let harness = try await Self.harness()
        defer { harness.stop() }
        let settings = harness.settings
        for (token, key) in [
            ("pm_card_chargeDeclinedInsufficientFunds", "decline-1"), ("pm_card_authenticationRequired", "auth-1"),
            ("pm_card_processing", "processing-1"),
        ] {
            try await Probe.execute(
                settings,
                """
                select public.charge_payment_method('\(Self.orgA)', '\(Self.accountA)', 2000, null,
                  (public.add_payment_method('\(Self.orgA)', '\(Self.accountA)', 'stripe', '\(token)', 'cus_seedAcme', 'visa', '0002', 1, 2031, false)).id,
                  '\(key)')
                """)
        }
        #expect(await harness.worker.drainOnce() == 3)
        let declined = try await harness.charge("decline-1")
        #expect(declined[0] == "declined" && declined[3] == "insufficient_funds")
        let authentication = try await harness.charge("auth-1")
        #expect(authentication[0] == "declined" && authentication[3] == "authentication_required")
        let processing = try await harness.charge("processing-1")
        #expect(processing[0] == "awaiting_confirmation")
        let failed = try await Probe.rows(
            settings,
            "select idempotency_key, failure_code from public.payments where status = 'failed' and idempotency_key like '%:declined' order by 1"
        )
        #expect(failed == [["auth-1:declined", "authentication_required"], ["decline-1:declined", "insufficient_funds"]])

        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        func deliver(_ json: String) async throws -> LiveServer.Answer {
            let event = StripeDelivery(json)
            return try await server.post(
                "/functions/v1/stripe-webhook", body: event.body,
                headers: ["Content-Type": "application/json", "Stripe-Signature": event.header])
        }
        // The decline Stripe reports by webhook is the one the worker recorded.
        let failedEvent = try await deliver(
            """
            {"id":"evt_failed_1","object":"event","type":"payment_intent.payment_failed","created":\(Clock.now),
             "data":{"object":{"id":"\(declined[2] ?? "")","object":"payment_intent","amount":2000,"status":"requires_payment_method",
             "last_payment_error":{"code":"card_declined","decline_code":"insufficient_funds"},
             "metadata":{"wingtel_account_id":"\(Self.accountA)","wingtel_charge_id":"\(declined[6] ?? "")"}}}}
            """)
        #expect(failedEvent.status == 200 && failedEvent.body.contains("ignored"))
        #expect(
            try await Probe.int(
                settings, "select count(*) from public.payments where status = 'failed' and received_at > now() - interval '1 hour'") == 2)

        // The processing charge succeeds later: the webhook settles it, once.
        let succeeded = """
            {"id":"evt_ok_2","object":"event","type":"payment_intent.succeeded","created":\(Clock.now),
             "data":{"object":{"id":"\(processing[2] ?? "")","object":"payment_intent","amount":2000,"amount_received":2000,"status":"succeeded",
             "metadata":{"wingtel_account_id":"\(Self.accountA)","wingtel_charge_id":"\(processing[6] ?? "")"}}}}
            """
        #expect(try await deliver(succeeded).body.contains("applied"))
        #expect(try await deliver(succeeded).body.contains("duplicate"))
        #expect(try await harness.charge("processing-1")[0] == "succeeded")
        #expect(
            try await Probe.rows(
                settings,
                "select status::text, amount_cents::text, idempotency_key from public.payments where provider_payment_id = '\(processing[2] ?? "")'"
            )
                == [["succeeded", "2000", "processing-1"]])
    }

    @Test(
        "429 waits for Retry-After, a wrong API key is not a decline, and after max_sends the charge is dead with its error and no payment")
    func stripeTransientFailures() async throws {
        let harness = try await Self.harness()
        defer { harness.stop() }
        let settings = harness.settings
        try await Probe.execute(
            settings,
            """
            select public.charge_payment_method('\(Self.orgA)', '\(Self.accountA)', 1200, null, null, 'dead-1');
            update public.payment_charges set max_sends = 3 where idempotency_key = 'dead-1';
            """)
        // A revoked key: Stripe's 401 is the operator's problem, not the customer's card.
        await harness.stripe.state.fail(
            401, #"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****oked"}}"#)
        #expect(await harness.worker.drainOnce() == 1)
        var charge = try await harness.charge("dead-1")
        #expect(charge[0] == "pending")
        #expect(charge[4]?.contains("401") == true)
        try await harness.due()
        await harness.stripe.state.fail(429, #"{"error":{"type":"rate_limit_error","message":"Too many requests"}}"#, retryAfter: "40")
        #expect(await harness.worker.drainOnce() == 1)
        #expect(
            try await Probe.int(
                settings,
                "select (next_attempt_at >= now() + interval '39 seconds')::int from public.payment_charges where idempotency_key = 'dead-1'"
            ) == 1)
        try await harness.due()
        await harness.stripe.state.fail(503, #"{"error":{"type":"api_error","message":"Service unavailable"}}"#)
        #expect(await harness.worker.drainOnce() == 1)
        charge = try await harness.charge("dead-1")
        #expect(charge[0] == "dead")
        #expect(charge[1] == "3")
        #expect(charge[4]?.contains("503") == true)
        #expect(try await Probe.int(settings, "select count(*) from public.payments where idempotency_key like 'dead-1%'") == 0)
        #expect(await harness.worker.drainOnce() == 0)
    }

    @Test(
        "Zift: a sale whose answer was lost is found by its transactionCode, not sold twice; declines, and X02 settled by the notification")
    func ziftCharges() async throws {
        let harness = try await Self.harness()
        defer { harness.stop() }
        let settings = harness.settings
        // B's seed invoice is past due with 3538 owed; its account has a saved Zift card.
        try await Probe.execute(
            settings,
            "select public.set_autopay('\(Self.orgB)', '\(Self.accountB)', true); select public.queue_autopay_charges('\(Self.orgB)');")
        let key = try #require(
            try await Probe.rows(
                settings, "select idempotency_key from public.payment_charges where organization_id = '\(Self.orgB)' and origin = 'autopay'"
            )
            .first?.first ?? nil)
        await harness.zift.state.loseSaleAnswers(1)
        #expect(await harness.worker.drainOnce() == 1)
        #expect(try await harness.charge(key)[0] == "pending")
        try await harness.due()
        #expect(await harness.worker.drainOnce() == 1)
        let charge = try await harness.charge(key)
        #expect(charge[0] == "succeeded")
        #expect(charge[2] == "ZT1")
        let sales = await harness.zift.state.sales
        #expect(sales.count == 1)
        #expect(sales.first?["token"] == "zift-tok-seed-b")
        #expect(sales.first?["amount"] == "3538")
        #expect(sales.first?["transactionCode"] == key)
        #expect(sales.first?["userDefinedField1"] == Self.accountB)
        #expect(sales.first?["userDefinedField2"] == charge[6])
        #expect(
            try await Probe.rows(settings, "select status::text from public.invoices where organization_id = '\(Self.orgB)'") == [["paid"]])
        #expect(
            try await Probe.int(settings, "select count(*) from public.payments where provider = 'zift' and provider_payment_id = 'ZT1'")
                == 1)

        // A declined token and a pending one (X02).
        for (token, key) in [("tok-decline-1", "z-decline"), ("tok-pending-1", "z-pending")] {
            try await Probe.execute(
                settings,
                """
                select public.charge_payment_method('\(Self.orgB)', '\(Self.accountB)', 1000, null,
                  (public.add_payment_method('\(Self.orgB)', '\(Self.accountB)', 'zift', '\(token)', make_default => false)).id, '\(key)')
                """)
        }
        #expect(await harness.worker.drainOnce() == 2)
        let declined = try await harness.charge("z-decline")
        #expect(declined[0] == "declined" && declined[3] == "D05")
        let pending = try await harness.charge("z-pending")
        #expect(pending[0] == "awaiting_confirmation")
        let pendingID = try #require(pending[2])

        // The gateway approves it later and notifies; the server confirms with find and settles the charge.
        await harness.zift.state.store([
            "transactionId": pendingID, "transactionType": "sale", "responseCode": "A01", "amount": "1000",
            "userDefinedField1": Self.accountB, "userDefinedField2": pending[6] ?? "", "transactionCode": "z-pending",
        ])
        var configuration = LiveServer.configuration()
        configuration.zift = ZiftSettings(baseURL: harness.zift.baseURL, userName: "merchant", password: "pw", accountID: "acct-1")
        let server = try await LiveServer.start(settings: settings, configuration: configuration)
        defer { Task { try await server.stop() } }
        let body = Array(#"{"transactionId":"\#(pendingID)","responseCode":"A01"}"#.utf8)
        let header = TimestampedHMAC.header(payload: body, secret: LiveServer.secrets.zift, timestamp: Clock.now)
        let answer = try await server.post(
            "/functions/v1/zift-webhook", body: body, headers: ["Content-Type": "application/json", "X-Webhook-Signature": header])
        #expect(answer.status == 200 && answer.body.contains("applied"))
        #expect(try await harness.charge("z-pending")[0] == "succeeded")
        #expect(
            try await Probe.rows(
                settings, "select status::text, idempotency_key from public.payments where provider_payment_id = '\(pendingID)'")
                == [["succeeded", "z-pending"]])
    }
}
