import Foundation
import HTTPTypes
import Hummingbird
import WingtelTestSupport
import WingtelVerification

/// Stripe's `POST /v1/payment_intents` on loopback, as its API reference documents it: Bearer
/// secret key, form-encoded parameters, `Idempotency-Key` (a repeated key with the same
/// parameters replays the first answer with `Idempotent-Replayed: true`; with other parameters it
/// is a 400 `idempotency_error`), 402 `card_error` for declines. The saved method decides the
/// result, like Stripe's test PaymentMethods: a token containing `Declined` is declined
/// (`insufficient_funds`), `authenticationRequired` needs the customer (`authentication_required`),
/// `processing` stays processing; any other succeeds. It can fail before charging (`fail`) and
/// lose its answer after charging (`loseAnswers`: the reply hangs past the client's timeout).
final class FakeStripeAPI: Sendable {
    static let secretKey = "sk_test_wingtel"

    struct Stored: Sendable {
        let form: [String: String]
        let status: Int
        let body: String
    }

    actor State {
        var byKey: [String: Stored] = [:]
        var requests: [(key: String?, form: [String: String], authorization: String?)] = []
        var failures: [(Int, String, String?)] = []
        var loseNext = 0
        var intents = 0
        /// Each PaymentIntent's current JSON, as `GET /v1/payment_intents/{id}` answers it.
        var byIntent: [String: String] = [:]
        var lookups = 0

        func fail(_ status: Int, _ body: String, retryAfter: String? = nil) { failures.append((status, body, retryAfter)) }

        /// A processing PaymentIntent finishes (as Stripe would, later, without Wingtel asking).
        func settle(_ id: String) {
            guard let body = byIntent[id], let amount = body.firstMatch(of: /"amount":([0-9]+)/)?.1 else { return }
            byIntent[id] = body.replacingOccurrences(of: #""status":"processing""#, with: #""status":"succeeded""#)
                .replacingOccurrences(of: #""amount_received":0"#, with: #""amount_received":\#(amount)"#)
        }

        func lookup(_ id: String, authorization: String?) -> (Int, String) {
            lookups += 1
            guard authorization == "Bearer \(FakeStripeAPI.secretKey)" else {
                return (401, #"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}"#)
            }
            guard let body = byIntent[id] else {
                return (404, #"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such payment_intent"}}"#)
            }
            return (200, body)
        }
        func loseAnswers(_ count: Int) { loseNext = count }

        /// The answer: status, body, replayed, Retry-After, whether to lose it.
        func handle(key: String?, form: [String: String], authorization: String?) -> (Int, String, Bool, String?, Bool) {
            requests.append((key, form, authorization))
            guard authorization == "Bearer \(FakeStripeAPI.secretKey)" else {
                return (401, #"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}"#, false, nil, false)
            }
            if !failures.isEmpty {
                let (status, body, retryAfter) = failures.removeFirst()
                return (status, body, false, retryAfter, false)
            }
            if let key, let stored = byKey[key] {
                guard stored.form == form else {
                    return (
                        400,
                        #"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}"#,
                        false, nil, false
                    )
                }
                return (stored.status, stored.body, true, nil, false)
            }
            intents += 1
            let id = "pi_fake\(intents)"
            let amount = form["amount"] ?? "0"
            let metadata = form.filter { $0.key.hasPrefix("metadata[") }
                .map { (String($0.key.dropFirst("metadata[".count).dropLast()), $0.value) }
            let metadataJSON = metadata.sorted { $0.0 < $1.0 }.map { #""\#($0.0)":"\#($0.1)""# }.joined(separator: ",")
            let method = form["payment_method"] ?? ""
            let status: Int
            let body: String
            if method.contains("Declined") || method.contains("authenticationRequired") {
                let (code, decline, message) =
                    method.contains("Declined")
                    ? ("card_declined", #","decline_code":"insufficient_funds""#, "Your card has insufficient funds.")
                    : ("authentication_required", "", "Your card was declined. This transaction requires authentication.")
                status = 402
                body =
                    #"{"error":{"type":"card_error","code":"\#(code)"\#(decline),"message":"\#(message)","payment_intent":{"id":"\#(id)","object":"payment_intent","status":"requires_payment_method","amount":\#(amount)}}}"#
            } else {
                status = 200
                let state = method.contains("processing") ? "processing" : "succeeded"
                body =
                    #"{"id":"\#(id)","object":"payment_intent","status":"\#(state)","amount":\#(amount),"amount_received":\#(state == "succeeded" ? amount : "0"),"currency":"\#(form["currency"] ?? "")","customer":"\#(form["customer"] ?? "")","metadata":{\#(metadataJSON)}}"#
            }
            if let key { byKey[key] = Stored(form: form, status: status, body: body) }
            if status == 200 { byIntent[id] = body }
            let lose = loseNext > 0
            if lose { loseNext -= 1 }
            return (status, body, false, nil, lose)
        }
    }

    let state: State
    let server: LoopbackServer
    var baseURL: String { server.baseURL }

    private init(state: State, server: LoopbackServer) {
        self.state = state
        self.server = server
    }

    static func start() async throws -> FakeStripeAPI {
        let state = State()
        let router = Router()
        router.post("v1/payment_intents") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 16)
            let form = Dictionary(FormURLEncoded.parse(Array(body.readableBytesView)) ?? [], uniquingKeysWith: { _, last in last })
            let key = HTTPField.Name("Idempotency-Key").flatMap { request.headers[$0] }
            let (status, text, replayed, retryAfter, lose) = await state.handle(
                key: key, form: form, authorization: request.headers[.authorization])
            if lose { try await Task.sleep(for: .seconds(30)) }
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            if replayed, let name = HTTPField.Name("Idempotent-Replayed") { headers[name] = "true" }
            if let retryAfter { headers[.retryAfter] = retryAfter }
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("v1/payment_intents/{id}") { request, context -> Response in
            let (status, text) = await state.lookup(context.parameters.get("id") ?? "", authorization: request.headers[.authorization])
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return FakeStripeAPI(state: state, server: try await LoopbackServer.start(router: router, label: "fake.stripe-api"))
    }
}
