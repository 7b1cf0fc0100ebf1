import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
import Testing
import WingtelDatabase
import WingtelFunctions
import WingtelTestSupport
import WingtelVerification

/// The Zift gateway on loopback: `requestType=find` answers the stored transaction, form-encoded.
final class FakeZift: Sendable {
    actor State {
        var transactions: [String: [String: String]] = [:]
        var down = false
        var finds = 0
        func store(_ fields: [String: String]) { transactions[fields["transactionId"]!] = fields }
        func setDown(_ value: Bool) { down = value }
        func find(_ id: String) -> (Int, String) {
            finds += 1
            if down { return (503, "") }
            guard let fields = transactions[id] else { return (200, "responseCode=E01&responseMessage=Transaction+not+found") }
            return (200, FormURLEncoded.encode(fields.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
        }
    }

    let state: State
    let server: LoopbackServer
    var baseURL: String { server.baseURL + "/gates/xurl" }

    private init(server: LoopbackServer, state: State) {
        self.server = server
        self.state = state
    }

    static func start() async throws -> FakeZift {
        let state = State()
        let router = Router()
        router.post("gates/xurl") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 16)
            let fields = Dictionary(FormURLEncoded.parse(Array(body.readableBytesView)) ?? [], uniquingKeysWith: { _, last in last })
            guard fields["requestType"] == "find", fields["userName"] == "merchant", fields["password"] == "pw" else {
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "responseCode=E02&responseMessage=Access+denied")))
            }
            let (status, text) = await state.find(fields["transactionId"] ?? "")
            var headers = HTTPFields()
            headers[.contentType] = "application/x-www-form-urlencoded"
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return FakeZift(server: try await LoopbackServer.start(router: router, label: "fake.zift"), state: state)
    }
}

@Suite("POST /functions/v1/zift-webhook: HMAC, then confirmed with the gateway's find")
struct ZiftWebhookTests {
    static let account = "ac000000-0000-4000-8000-00000000000a"
    static let path = "/functions/v1/zift-webhook"

    static func start() async throws -> (LiveServer, FakeZift, ConnectionSettings) {
        let settings = try await TestCluster.shared.migratedDatabase()
        let fake = try await FakeZift.start()
        var configuration = LiveServer.configuration()
        configuration.zift = ZiftSettings(baseURL: fake.baseURL, userName: "merchant", password: "pw", accountID: "acct-1")
        return (try await LiveServer.start(settings: settings, configuration: configuration), fake, settings)
    }

    static func notify(_ server: LiveServer, _ json: String, secret: String = LiveServer.secrets.zift) async throws -> LiveServer.Answer {
        let body = Array(json.utf8)
        let header = TimestampedHMAC.header(payload: body, secret: secret, timestamp: Clock.now)
        return try await server.post(path, body: body, headers: ["Content-Type": "application/json", "X-Webhook-Signature": header])
    }

    @Test("an approved sale the gateway confirms is one payment; what the gateway says wins over the notification")
    func confirmedSale() async throws {
        let (server, fake, settings) = try await Self.start()
        defer { Task { try await server.stop() } }
        await fake.state.store([
            "transactionId": "Z100", "transactionType": "sale", "responseCode": "A01", "amount": "3300", "userDefinedField1": Self.account,
        ])
        // The notification claims another amount: the confirmed 3300 is what is recorded.
        let answer = try await Self.notify(server, #"{"transactionId":"Z100","responseCode":"A01","amount":"999999"}"#)
        #expect(answer.status == 200)
        #expect(answer.body.contains(#""outcome": "applied""#))
        let again = try await Self.notify(server, #"{"transactionId":"Z100","responseCode":"A01"}"#)
        #expect(again.body.contains("duplicate"))
        let payments = try await Probe.rows(
            settings, "select amount_cents::text, status::text from public.payments where provider_payment_id = 'Z100'")
        #expect(payments == [["3300", "succeeded"]])

        // A notification saying "approved" for a sale the gateway reports declined: a failed attempt.
        await fake.state.store([
            "transactionId": "Z101", "transactionType": "sale", "responseCode": "D05", "responseMessage": "Insufficient funds",
            "amount": "3300",
            "userDefinedField1": Self.account,
        ])
        #expect(try await Self.notify(server, #"{"transactionId":"Z101","responseCode":"A01"}"#).status == 200)
        let failed = try await Probe.rows(
            settings, "select status::text, failure_code, failure_message from public.payments where provider_payment_id = 'failed:Z101'")
        #expect(failed == [["failed", "D05", "Insufficient funds"]])
    }

    @Test("forged, unknown to the gateway, gateway down: nothing applied; the retry after the outage applies once")
    func refusals() async throws {
        let (server, fake, settings) = try await Self.start()
        defer { Task { try await server.stop() } }
        await fake.state.store([
            "transactionId": "Z200", "transactionType": "sale", "responseCode": "A01", "amount": "1200", "userDefinedField1": Self.account,
        ])
        #expect(try await Self.notify(server, #"{"transactionId":"Z200"}"#, secret: "guess").status == 401)
        #expect(await fake.state.finds == 0)
        #expect(try await Self.notify(server, #"{"transactionId":"Z999"}"#).status == 422)
        #expect(try await Self.notify(server, #"{"amount":"1"}"#).status == 400)
        await fake.state.setDown(true)
        let down = try await Self.notify(server, #"{"transactionId":"Z200"}"#)
        #expect(down.status == 503)
        #expect(try await Probe.int(settings, "select count(*) from private.webhook_receipts") == 0)
        await fake.state.setDown(false)
        #expect(try await Self.notify(server, #"{"transactionId":"Z200"}"#).status == 200)
        #expect(try await Probe.int(settings, "select count(*) from public.payments where provider_payment_id = 'Z200'") == 1)
    }
}
