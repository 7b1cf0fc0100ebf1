import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle
import Testing
import WingtelDatabase
import WingtelFunctions
import WingtelTestSupport
import WingtelVerification

/// Twilio's Messages API on loopback: checks HTTP Basic, answers 201 with a SID, or fails as told.
final class FakeTwilio: Sendable {
    actor State {
        var received: [[String: String]] = []
        var failures: [(Int, String)] = []
        func fail(_ status: Int, _ body: String) { failures.append((status, body)) }
        func take(_ form: [String: String]) -> (Int, String) {
            if !failures.isEmpty { return failures.removeFirst() }
            received.append(form)
            return (201, #"{"sid":"SM\#(String(format: "%032d", received.count))","status":"queued"}"#)
        }
    }

    let state: State
    let server: LoopbackServer
    var baseURL: String { server.baseURL }

    private init(state: State, server: LoopbackServer) {
        self.state = state
        self.server = server
    }

    static func start(account: String, token: String) async throws -> FakeTwilio {
        let state = State()
        let router = Router()
        let expected = "Basic " + Data("\(account):\(token)".utf8).base64EncodedString()
        router.post("2010-04-01/Accounts/{account}/Messages.json") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 16)
            guard request.headers[.authorization] == expected else {
                return Self.json(401, #"{"code":20003,"message":"Authenticate","status":401}"#)
            }
            let pairs = FormURLEncoded.parse(Array(body.readableBytesView)) ?? []
            let (status, text) = await state.take(Dictionary(pairs, uniquingKeysWith: { _, last in last }))
            return Self.json(status, text)
        }
        return FakeTwilio(state: state, server: try await LoopbackServer.start(router: router, label: "fake.twilio"))
    }

    static func json(_ status: Int, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == 429 { headers[.retryAfter] = "0" }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

@Suite("The SMS sender against a fake Twilio Messages API")
struct SmsSenderTests {
    static let org = "10000000-0000-4000-8000-00000000000a"

    @Test("queued messages are posted once with the status callback; 429 is retried, 21610 fails, opted-out numbers are not sent")
    func sends() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let fake = try await FakeTwilio.start(account: "ACtest", token: "tok")
        defer { fake.server.abandon() }
        var logger = Logger(label: "wingtel.tests.sms")
        logger.logLevel = .warning
        let client = PostgresClient(
            configuration: settings.postgresClientConfiguration(role: "service_role", maximumConnections: 4), backgroundLogger: logger)
        let running = Task { await client.run() }
        defer { running.cancel() }
        let sender = SmsSender(
            client: client,
            settings: .init(
                baseURL: fake.baseURL, accountSID: "ACtest", authToken: "tok",
                statusCallback: "https://api.example.com/functions/v1/twilio-status"),
            transport: URLSessionTransport(timeout: .seconds(5)), logger: logger)

        // Three messages: one goes through after a 429, one is refused by Twilio, one is to a number
        // that opted out after it was queued.
        try await Probe.execute(
            settings,
            """
            select public.send_sms('\(Self.org)', '(312) 555-0101', 'Your bill of $25.00 is ready.');
            select public.send_sms('\(Self.org)', '+13125550199', 'Your SIM has shipped.');
            select public.send_sms('\(Self.org)', '+13125550188', 'A message for someone about to opt out.');
            insert into public.sms_opt_outs (organization_id, phone_number, keyword) values ('\(Self.org)', '+13125550188', 'STOP');
            """)
        await fake.state.fail(429, #"{"code":20429,"message":"Too Many Requests","status":429}"#)
        await fake.state.fail(400, #"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#)
        for _ in 0..<4 {
            await sender.drainOnce()
            try await Task.sleep(for: .milliseconds(2100))  // the 429's backoff (2 s) passes
        }
        let rows = try await Probe.rows(
            settings,
            "select to_number, status::text, coalesce(error_code, ''), (provider_sid is not null)::text, attempts::text from public.sms_messages where created_at > now() - interval '1 hour' order by to_number"
        )
        let sent = await fake.state.received
        #expect(sent.count == 1)
        #expect(sent.first?["From"] == "+13125550900")
        #expect(sent.first?["StatusCallback"] == "https://api.example.com/functions/v1/twilio-status")
        // Which message met the 429 and which the 21610 depends on claim order; both outcomes must appear.
        #expect(rows.count == 3)
        #expect(rows.contains { $0[0] == "+13125550188" && $0[1] == "canceled" && $0[2] == "opted_out" && $0[3] == "false" })
        #expect(rows.filter { $0[1] == "queued" && $0[3] == "true" }.count == 1)
        #expect(rows.filter { $0[1] == "failed" && $0[2] == "21610" }.count == 1)
        #expect(
            try await Probe.int(
                settings, "select count(*) from public.sms_messages where status = 'accepted' and created_at > now() - interval '1 hour'")
                == 0)

        // Nothing left: another drain sends nothing.
        #expect(await sender.drainOnce() == 0)
        #expect(await fake.state.received.count == 1)
    }

    @Test("send_sms refuses opted-out numbers, bad numbers and empty bodies")
    func sendRules() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        for sql in [
            "select public.send_sms('\(Self.org)', '+13125550177', 'hi')",  // opted out in the seed
            "select public.send_sms('\(Self.org)', 'not a number', 'hi')",
            "select public.send_sms('\(Self.org)', '+13125550101', '   ')",
        ] {
            await #expect(throws: (any Error).self) { try await Probe.execute(settings, sql) }
        }
        #expect(try await Probe.int(settings, "select count(*) from public.sms_messages where status = 'accepted'") == 0)
    }
}
