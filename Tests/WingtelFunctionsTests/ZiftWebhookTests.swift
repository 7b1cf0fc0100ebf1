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

/// The Zift gateway on loopback: `requestType=find` answers the stored transaction (by
/// transactionId, or by the merchant's transactionCode), form-encoded; `requestType=sale` charges
/// a token — approved (A01), declined for tokens containing "decline" (D05), pending for tokens
/// containing "pending" (X02) — and can lose its answer (the sale is made, the reply hangs).
final class FakeZift: Sendable {
    actor State {
        var transactions: [String: [String: String]] = [:]
        var down = false
        var finds = 0
        var sales: [[String: String]] = []
        var loseNextSaleAnswers = 0
        func store(_ fields: [String: String]) { transactions[fields["transactionId"]!] = fields }
        func setDown(_ value: Bool) { down = value }
        func loseSaleAnswers(_ count: Int) { loseNextSaleAnswers = count }
        func find(_ fields: [String: String]) -> (Int, String) {
            finds += 1
            if down { return (503, "") }
            let found =
                fields["transactionId"].flatMap { transactions[$0] }
                ?? fields["transactionCode"].flatMap { code in transactions.values.first { $0["transactionCode"] == code } }
            guard let found else { return (200, "responseCode=E01&responseMessage=Transaction+not+found") }
            return (200, Self.encode(found))
        }
        /// The answer, and whether to lose it.
        func sale(_ fields: [String: String]) -> (Int, String, lose: Bool) {
            if down { return (503, "", false) }
            sales.append(fields)
            let token = fields["token"] ?? ""
            let (code, message) =
                token.contains("decline")
                ? ("D05", "Insufficient funds") : token.contains("pending") ? ("X02", "Pending") : ("A01", "Approved")
            let transaction = [
                "transactionId": "ZT\(sales.count)", "transactionType": "sale", "responseCode": code, "responseMessage": message,
                "amount": fields["amount"] ?? "", "transactionCode": fields["transactionCode"] ?? "",
                "userDefinedField1": fields["userDefinedField1"] ?? "", "userDefinedField2": fields["userDefinedField2"] ?? "",
            ]
            store(transaction)
            let lose = loseNextSaleAnswers > 0
            if lose { loseNextSaleAnswers -= 1 }
            return (200, Self.encode(transaction), lose)
        }
        static func encode(_ fields: [String: String]) -> String {
            FormURLEncoded.encode(fields.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
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
            guard fields["userName"] == "merchant", fields["password"] == "pw" else {
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "responseCode=E02&responseMessage=Access+denied")))
            }
            var headers = HTTPFields()
            headers[.contentType] = "application/x-www-form-urlencoded"
            switch fields["requestType"] {
            case "find":
                let (status, text) = await state.find(fields)
                return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
            case "sale":
                let (status, text, lose) = await state.sale(fields)
                if lose { try await Task.sleep(for: .seconds(30)) }
                return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
            default:
                return Response(
                    status: .ok, body: .init(byteBuffer: ByteBuffer(string: "responseCode=E03&responseMessage=Unknown+request")))
            }
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
