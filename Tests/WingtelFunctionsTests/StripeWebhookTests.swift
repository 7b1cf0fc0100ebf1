import Foundation
import Testing
import WingtelDatabase
import WingtelTestSupport
import WingtelVerification

@Suite("POST /functions/v1/stripe-webhook over HTTP and a real database")
struct StripeWebhookTests {
    static let account = "ac000000-0000-4000-8000-00000000000a"
    static let path = "/functions/v1/stripe-webhook"

    static func receipts(_ settings: ConnectionSettings) async throws -> Int {
        try await Probe.int(settings, "select count(*) from private.webhook_receipts where provider = 'stripe'")
    }

    static func stripePayments(_ settings: ConnectionSettings) async throws -> Int {
        try await Probe.int(
            settings, "select count(*) from public.payments where provider = 'stripe' and provider_payment_id not like 'ch_seed%'")
    }

    @Test("a signed payment_intent.succeeded records one payment, audited as stripe-webhook with the request id")
    func validEventApplies() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        let delivery = StripeDelivery.paymentSucceeded(event: "evt_valid_1", intent: "pi_valid_1", cents: 2500, account: Self.account)
        let answer = try await server.post(Self.path, body: delivery.body, headers: ["Stripe-Signature": delivery.header])
        #expect(answer.status == 200)
        #expect(answer.body.contains(#""outcome": "applied""#))
        let requestID = try #require(answer.headers["x-request-id"])
        let rows = try await Probe.rows(
            settings,
            "select amount_cents::text, status::text, provider_payment_id from public.payments where provider = 'stripe' and provider_payment_id not like 'ch_seed%'"
        )
        #expect(rows == [["2500", "succeeded", "pi_valid_1"]])
        let audit = try await Probe.rows(
            settings,
            "select distinct actor_name, db_role, request_id from audit.entries where table_name = 'public.payments' and request_id is not null"
        )
        #expect(audit == [["stripe-webhook", "service_role", requestID]])
        // The receipt keeps the event for analysts, with what it did.
        let receipt = try await Probe.rows(
            settings, "select outcome, organization_id::text from private.webhook_receipts where event_id = 'evt_valid_1'")
        #expect(receipt == [["applied", "10000000-0000-4000-8000-00000000000a"]])
    }

    @Test("a signature by the previous secret still verifies while it rotates")
    func rotatedSecret() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        let delivery = StripeDelivery(
            #"{"id":"evt_rot","type":"invoice.created","data":{"object":{"id":"in_1","object":"invoice"}}}"#,
            secret: LiveServer.secrets.stripeOld)
        let answer = try await server.post(Self.path, body: delivery.body, headers: ["Stripe-Signature": delivery.header])
        #expect(answer.status == 200)
        #expect(answer.body.contains(#""outcome": "ignored""#))
    }

    @Test("forged, unsigned, stale and malformed requests are refused and store nothing")
    func rejections() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        let good = StripeDelivery.paymentSucceeded(event: "evt_bad", intent: "pi_bad", cents: 900, account: Self.account)

        let forged = StripeDelivery(String(decoding: good.body, as: UTF8.self), secret: "whsec_attacker")
        #expect(try await server.post(Self.path, body: forged.body, headers: ["Stripe-Signature": forged.header]).status == 401)
        #expect(try await server.post(Self.path, body: good.body, headers: [:]).status == 401)
        // The signed body with one byte changed.
        var tampered = good.body
        tampered[tampered.count - 3] = UInt8(ascii: " ")
        #expect(try await server.post(Self.path, body: tampered, headers: ["Stripe-Signature": good.header]).status == 401)
        let stale = StripeDelivery(String(decoding: good.body, as: UTF8.self), timestamp: Clock.now - 400)
        let staleAnswer = try await server.post(Self.path, body: stale.body, headers: ["Stripe-Signature": stale.header])
        #expect(staleAnswer.status == 401)
        #expect(staleAnswer.body.contains("tolerance 300 s"))
        #expect(try await server.post(Self.path, body: good.body, headers: ["Stripe-Signature": "t,v1=,v0"]).status == 401)

        // Correctly signed but not JSON, or JSON that is no Stripe event: 400.
        let notJSON = StripeDelivery(#"{"id":"evt_broken","type":"#)
        let notJSONAnswer = try await server.post(Self.path, body: notJSON.body, headers: ["Stripe-Signature": notJSON.header])
        #expect(notJSONAnswer.status == 400)
        let notEvent = StripeDelivery(#"{"hello":"world"}"#)
        let notEventAnswer = try await server.post(Self.path, body: notEvent.body, headers: ["Stripe-Signature": notEvent.header])
        #expect(notEventAnswer.status == 400)
        #expect(notEventAnswer.body.contains("not a Stripe event"))
        // A body over the size limit.
        let huge = StripeDelivery(
            #"{"id":"evt_huge","type":"x","data":{"object":{"pad":""# + String(repeating: "x", count: 70_000) + #""}}}"#)
        #expect(try await server.post(Self.path, body: huge.body, headers: ["Stripe-Signature": huge.header]).status == 413)

        #expect(try await Self.receipts(settings) == 0)
        #expect(try await Self.stripePayments(settings) == 0)
    }

    @Test("20 identical deliveries at once: all answered 200, one payment, one receipt")
    func concurrentDuplicates() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        let delivery = StripeDelivery.paymentSucceeded(event: "evt_dup", intent: "pi_dup", cents: 4200, account: Self.account)
        let answers = try await withThrowingTaskGroup(of: LiveServer.Answer.self) { group in
            for _ in 0..<20 {
                group.addTask { try await server.post(Self.path, body: delivery.body, headers: ["Stripe-Signature": delivery.header]) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0.status == 200 })
        #expect(answers.filter { $0.body.contains(#""outcome": "applied""#) }.count == 1)
        #expect(answers.filter { $0.body.contains(#""outcome": "duplicate""#) }.count == 19)
        #expect(try await Self.stripePayments(settings) == 1)
        #expect(try await Self.receipts(settings) == 1)
        // payment_intent.succeeded and invoice.paid for the same intent are one payment.
        let invoicePaid = StripeDelivery(
            """
            {"id":"evt_dup_invoice","type":"invoice.paid","data":{"object":{"id":"in_dup","object":"invoice","amount_paid":4200,
             "payment_intent":"pi_dup","metadata":{"wingtel_account_id":"\(Self.account)"}}}}
            """)
        #expect(try await server.post(Self.path, body: invoicePaid.body, headers: ["Stripe-Signature": invoicePaid.header]).status == 200)
        #expect(try await Self.stripePayments(settings) == 1)
    }

    @Test("refunds apply by state: a repeated or out-of-order refund event refunds only what is new")
    func refundsByState() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        let paid = StripeDelivery.paymentSucceeded(event: "evt_r0", intent: "pi_r", cents: 5000, account: Self.account)
        #expect(try await server.post(Self.path, body: paid.body, headers: ["Stripe-Signature": paid.header]).status == 200)
        func refunded(_ event: String, _ total: Int) -> StripeDelivery {
            StripeDelivery(
                """
                {"id":"\(event)","type":"charge.refunded","data":{"object":{"id":"ch_r","object":"charge","payment_intent":"pi_r",
                 "amount_refunded":\(total),"metadata":{"wingtel_account_id":"\(Self.account)"}}}}
                """)
        }
        // The second refund's event (total 3000) arrives before the first's (total 1000).
        for delivery in [refunded("evt_r2", 3000), refunded("evt_r1", 1000), refunded("evt_r2", 3000)] {
            #expect(try await server.post(Self.path, body: delivery.body, headers: ["Stripe-Signature": delivery.header]).status == 200)
        }
        #expect(try await Probe.int(settings, "select refunded_cents from public.payments where provider_payment_id = 'pi_r'") == 3000)
        let outcomes = try await Probe.rows(
            settings, "select event_id, outcome from private.webhook_receipts where event_id like 'evt_r_' order by event_id")
        #expect(outcomes == [["evt_r0", "applied"], ["evt_r1", "ignored"], ["evt_r2", "applied"]])
    }

    @Test("an event for a customer Wingtel does not know is kept as unmatched, not failed")
    func unmatched() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        let delivery = StripeDelivery(
            #"{"id":"evt_unknown","type":"payment_intent.succeeded","data":{"object":{"id":"pi_x","object":"payment_intent","amount_received":100,"customer":"cus_nobody"}}}"#
        )
        let answer = try await server.post(Self.path, body: delivery.body, headers: ["Stripe-Signature": delivery.header])
        #expect(answer.status == 200)
        #expect(answer.body.contains("unmatched"))
        #expect(try await Self.stripePayments(settings) == 0)
    }
}
