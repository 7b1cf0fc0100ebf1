import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle
import Testing
import WingtelFunctions
import WingtelTestSupport

/// A carrier API on loopback that records each request and answers from a script.
final class RecordingCarrier: Sendable {
    struct Seen: Sendable {
        let method: String
        let path: String
        let headers: [String: String]
        let body: String
    }

    actor State {
        var seen: [Seen] = []
        var answers: [(Int, String, [String: String])] = []
        var tokenRequests = 0
        func script(_ status: Int, _ body: String, headers: [String: String] = [:]) { answers.append((status, body, headers)) }
        func record(_ request: Seen) -> (Int, String, [String: String]) {
            if request.path.hasSuffix("/oauth/token") {
                tokenRequests += 1
                return (200, #"{"access_token":"agg-token-\#(tokenRequests)","expires_in":86400}"#, [:])
            }
            seen.append(request)
            return answers.isEmpty ? (200, "{}", [:]) : answers.removeFirst()
        }
    }

    let state: State
    let server: LoopbackServer
    var baseURL: String { server.baseURL }

    private init(state: State, server: LoopbackServer) {
        self.state = state
        self.server = server
    }

    static func start() async throws -> RecordingCarrier {
        let state = State()
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            var request = request
            let body = String(buffer: try await request.collectBody(upTo: 1 << 16))
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let (status, text, extra) = await state.record(
                Seen(method: request.method.rawValue, path: request.uri.path, headers: headers, body: body))
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            for (name, value) in extra { fields[HTTPField.Name(name)!] = value }
            return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.on("**", method: .put, use: handler)
        router.on("**", method: .post, use: handler)
        router.on("**", method: .patch, use: handler)
        return RecordingCarrier(state: state, server: try await LoopbackServer.start(router: router, label: "fake.carrier"))
    }
}

@Suite("Carrier adapters speak their APIs: Control Center and the T-Mobile aggregator")
struct CarrierAdapterTests {
    static func command(_ kind: String, _ payload: String, key: String = "org:line:kind:1") -> CarrierCommand {
        CarrierCommand(
            organizationID: "10000000-0000-4000-8000-00000000000a", id: "c0000000-0000-4000-8000-000000000001", kind: kind, adapter: "x",
            payload: payload, idempotencyKey: key, attempts: 1, maxAttempts: 8)
    }

    @Test("Control Center: PUT /devices/{iccid} with Basic auth; 200 completes, 429 retries after Retry-After, 404 refuses")
    func controlCenter() async throws {
        let fake = try await RecordingCarrier.start()
        defer { fake.server.abandon() }
        let adapter = ControlCenterAdapter(
            settings: .init(baseURL: fake.baseURL, username: "mvno", apiKey: "k3y"), transport: URLSessionTransport(timeout: .seconds(5)))
        await fake.state.script(200, #"{"iccid":"89011234567890123456","status":"ACTIVATED"}"#)
        let activated = await adapter.send(Self.command("activate", #"{"iccid":"89011234567890123456","rate_plan":"ATT-5GB"}"#))
        #expect(activated == .completed(result: #"{"iccid":"89011234567890123456","status":"ACTIVATED"}"#))
        let seen = try #require(await fake.state.seen.first)
        #expect(seen.method == "PUT")
        #expect(seen.path == "/rws/api/v1/devices/89011234567890123456")
        #expect(seen.headers["authorization"] == "Basic " + Data("mvno:k3y".utf8).base64EncodedString())
        let body = try #require(try JSONSerialization.jsonObject(with: Data(seen.body.utf8)) as? [String: String])
        #expect(body == ["status": "ACTIVATED", "ratePlan": "ATT-5GB"])

        await fake.state.script(429, #"{"errorMessage":"rate limited"}"#, headers: ["Retry-After": "17"])
        let limited = await adapter.send(Self.command("suspend", #"{"iccid":"89011234567890123456"}"#))
        guard case .retry(_, let after) = limited else {
            Issue.record("expected a retry, got \(limited)")
            return
        }
        #expect(after == .seconds(17))
        await fake.state.script(404, #"{"errorMessage":"Invalid ICCID"}"#)
        let refused = await adapter.send(Self.command("deactivate", #"{"iccid":"89011234567890123456"}"#))
        guard case .refused(let error) = refused else {
            Issue.record("expected a refusal, got \(refused)")
            return
        }
        #expect(error.contains("404") && error.contains("Invalid ICCID"))
        // Not supported by the API: refused without a call.
        let calls = await fake.state.seen.count
        guard case .refused = await adapter.send(Self.command("swap_sim", #"{"iccid":"89011234567890123456","new_iccid":"1"}"#)) else {
            Issue.record("swap_sim should be refused")
            return
        }
        #expect(await fake.state.seen.count == calls)
    }

    @Test("aggregator: password-grant token reused, renewed on 401; PATCH subscriber state with the idempotency key; PENDING is accepted")
    func aggregator() async throws {
        let fake = try await RecordingCarrier.start()
        defer { fake.server.abandon() }
        let adapter = AggregatorAdapter(
            settings: .init(baseURL: fake.baseURL, username: "mvno", password: "pw", clientID: "id", clientSecret: "secret"),
            transport: URLSessionTransport(timeout: .seconds(5)))
        let suspended = await adapter.send(Self.command("suspend", #"{"mdn":"+13125550101","reason":"non_payment"}"#, key: "k-1"))
        #expect(suspended == .completed(result: "{}"))
        let patch = try #require(await fake.state.seen.first)
        #expect(patch.method == "PATCH" && patch.path == "/api/mobility-subscriber/ctn")
        #expect(patch.headers["authorization"] == "Bearer agg-token-1")
        #expect(patch.headers["idempotency-key"] == "k-1")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(patch.body.utf8)) as? [String: String])
        #expect(body == ["ctn": "3125550101", "subscriberState": "Suspend", "reasonCode": "NP"])

        await fake.state.script(202, #"{"requestId":"agg-77","status":"PENDING"}"#)
        let activation = await adapter.send(Self.command("activate", #"{"iccid":"8901","imei":"3569","rate_plan":"TMO-UNL"}"#))
        #expect(activation == .accepted(requestID: "agg-77"))
        #expect(await fake.state.tokenRequests == 1)

        // The token expired at the aggregator: one new token, the call repeated once.
        await fake.state.script(401, #"{"error":"invalid_token"}"#)
        await fake.state.script(200, #"{"status":"ACTIVE"}"#)
        let restored = await adapter.send(Self.command("restore", #"{"mdn":"+13125550101"}"#))
        #expect(restored == .completed(result: #"{"status":"ACTIVE"}"#))
        #expect(await fake.state.tokenRequests == 2)
    }
}
