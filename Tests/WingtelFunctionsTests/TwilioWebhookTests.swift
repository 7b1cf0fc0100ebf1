import Foundation
import Testing
import WingtelDatabase
import WingtelTestSupport
import WingtelVerification

@Suite("POST /functions/v1/twilio-sms and /twilio-status over HTTP and a real database")
struct TwilioWebhookTests {
    static let orgNumber = "+13125550000"
    static let customer = "+13125550101"  // line 5b100000-…-a of the seed, organization acme-mobile
    /// Rows this test wrote (the seed's SMS rows are dated March 2026).
    static let recent = "created_at > now() - interval '1 hour'"

    static func start() async throws -> (LiveServer, ConnectionSettings) {
        let settings = try await TestCluster.shared.migratedDatabase()
        try await Probe.execute(
            settings,
            "insert into public.messaging_numbers (organization_id, phone_number, label) values ('10000000-0000-4000-8000-00000000000a', '\(orgNumber)', 'support')"
        )
        return (try await LiveServer.start(settings: settings), settings)
    }

    static func inbound(_ sid: String, _ body: String, from: String = customer) -> [(String, String)] {
        [
            ("ToCountry", "US"), ("SmsMessageSid", sid), ("NumMedia", "0"), ("MessageSid", sid),
            ("AccountSid", "AC0000000000000000000000000000test"),
            ("From", from), ("To", orgNumber), ("Body", body), ("NumSegments", "1"), ("ApiVersion", "2010-04-01"),
        ]
    }

    @Test("keywords are answered with TwiML from SQL; STOP and START are honoured; free text goes to care")
    func keywords() async throws {
        let (server, settings) = try await Self.start()
        defer { Task { try await server.stop() } }
        let path = "/functions/v1/twilio-sms"

        let help = try await server.twilio(path, Self.inbound("SM001", " help "))
        #expect(help.status == 200)
        #expect(help.headers["content-type"]?.hasPrefix("text/xml") == true)
        #expect(help.body.hasPrefix(#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acme Mobile: reply BAL"#))

        let balance = try await server.twilio(path, Self.inbound("SM002", "BAL"))
        #expect(balance.body.contains("you owe $"))
        let usage = try await server.twilio(path, Self.inbound("SM003", "usage"))
        #expect(usage.body.contains("GB of 5 GB"))

        let stop = try await server.twilio(path, Self.inbound("SM004", "Stop"))
        #expect(stop.body.contains("unsubscribed"))
        #expect(try await Probe.int(settings, "select count(*) from public.sms_opt_outs where phone_number = '\(Self.customer)'") == 1)
        // Opted out: free text is still routed to care, but no acknowledgement is sent.
        let quiet = try await server.twilio(path, Self.inbound("SM005", "my phone <is> broken & slow"))
        #expect(quiet.body == #"<?xml version="1.0" encoding="UTF-8"?><Response/>"#)
        let start = try await server.twilio(path, Self.inbound("SM006", "START"))
        #expect(start.body.contains("subscribed again"))
        #expect(try await Probe.int(settings, "select count(*) from public.sms_opt_outs where phone_number = '\(Self.customer)'") == 0)
        // Free text from someone who is not a customer: acknowledged (escaped) and in the care inbox.
        let stranger = try await server.twilio(path, Self.inbound("SM007", "who is this?", from: "+13125559999"))
        #expect(stranger.body.contains("our care team will answer"))
        let inbox = try await Probe.rows(
            settings, "select from_number, body from public.care_inbox where \(Self.recent) order by created_at")
        #expect(inbox == [[Self.customer, "my phone <is> broken & slow"], ["+13125559999", "who is this?"]])
        let keywords = try await Probe.rows(
            settings,
            "select provider_sid, coalesce(keyword, routed_to) from public.sms_messages where direction = 'inbound' and \(Self.recent) order by provider_sid"
        )
        #expect(
            keywords == [
                ["SM001", "HELP"], ["SM002", "BAL"], ["SM003", "USAGE"], ["SM004", "STOP"], ["SM005", "care"], ["SM006", "START"],
                ["SM007", "care"],
            ])
    }

    @Test("a forged or unsigned message, or one for another URL, is refused; a malformed body is 400; nothing stored")
    func rejections() async throws {
        let (server, settings) = try await Self.start()
        defer { Task { try await server.stop() } }
        let path = "/functions/v1/twilio-sms"
        #expect(try await server.twilio(path, Self.inbound("SM100", "BAL"), token: "not-the-token").status == 401)
        let body = Array(FormURLEncoded.encode(Self.inbound("SM101", "BAL")).utf8)
        #expect(try await server.post(path, body: body, headers: ["Content-Type": "application/x-www-form-urlencoded"]).status == 401)
        // Signed for the status URL, sent to the message URL.
        let signature = TwilioSignature.signature(
            url: server.base + "/functions/v1/twilio-status", parameters: Self.inbound("SM102", "BAL"), authToken: LiveServer.secrets.twilio
        )
        #expect(
            try await server.post(
                path, body: Array(FormURLEncoded.encode(Self.inbound("SM102", "BAL")).utf8),
                headers: ["Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature]
            ).status == 401)
        // Not form-encoded at all.
        #expect(
            try await server.post(
                path, body: Array("Body=%ZZ".utf8),
                headers: ["Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"]
            ).status == 400)
        // Correctly signed, but no MessageSid.
        let noSid = [("From", Self.customer), ("To", Self.orgNumber), ("Body", "BAL")]
        let answer = try await server.twilio(path, noSid)
        #expect(answer.status == 400)
        #expect(answer.body.contains("MessageSid, From and To are required"))
        // An over-long body.
        #expect(try await server.twilio(path, Self.inbound("SM103", String(repeating: "a", count: 1601))).status == 400)
        #expect(try await Probe.int(settings, "select count(*) from public.sms_messages where \(Self.recent)") == 0)
        #expect(try await Probe.int(settings, "select count(*) from private.webhook_receipts") == 0)
    }

    @Test("20 concurrent deliveries of one message: one inbound row, one reply; the others get an empty Response")
    func concurrentDuplicates() async throws {
        let (server, settings) = try await Self.start()
        defer { Task { try await server.stop() } }
        let answers = try await withThrowingTaskGroup(of: LiveServer.Answer.self) { group in
            for _ in 0..<20 { group.addTask { try await server.twilio("/functions/v1/twilio-sms", Self.inbound("SM200", "HELP")) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0.status == 200 })
        #expect(answers.filter { $0.body.contains("<Message>") }.count == 1)
        #expect(
            try await Probe.int(settings, "select count(*) from public.sms_messages where direction = 'inbound' and \(Self.recent)") == 1)
        #expect(
            try await Probe.int(settings, "select count(*) from public.sms_messages where direction = 'outbound' and \(Self.recent)") == 1)
    }

    @Test("status callbacks move a message forward only, out of order and repeated")
    func statusForwardOnly() async throws {
        let (server, settings) = try await Self.start()
        defer { Task { try await server.stop() } }
        try await Probe.execute(
            settings,
            """
            insert into public.sms_messages (organization_id, direction, provider_sid, from_number, to_number, body, status)
            values ('10000000-0000-4000-8000-00000000000a', 'outbound', 'SM300', '\(Self.orgNumber)', '\(Self.customer)', 'Your bill is ready', 'queued')
            """)
        let path = "/functions/v1/twilio-status"
        func status(_ value: String, error: String? = nil) -> [(String, String)] {
            [("MessageSid", "SM300"), ("MessageStatus", value), ("AccountSid", "ACtest")] + (error.map { [("ErrorCode", $0)] } ?? [])
        }
        for value in ["sent", "undelivered", "sent", "delivered", "undelivered"] {
            #expect(try await server.twilio(path, status(value, error: value == "undelivered" ? "30003" : nil)).status == 200)
        }
        let message = try await Probe.rows(
            settings, "select status::text, error_code from public.sms_messages where provider_sid = 'SM300'")
        #expect(message == [["undelivered", "30003"]])
        let outcomes = try await Probe.rows(
            settings, "select event_id, outcome from private.webhook_receipts order by received_at, event_id")
        #expect(outcomes == [["SM300:sent", "applied"], ["SM300:undelivered", "applied"], ["SM300:delivered", "ignored"]])
        let unknown = try await server.twilio(path, [("MessageSid", "SM300"), ("MessageStatus", "exploded")])
        #expect(unknown.status == 400)
    }

    @Test("JSON webhooks verify through bodySHA256")
    func jsonBody() async throws {
        let (server, settings) = try await Self.start()
        defer { Task { try await server.stop() } }
        let body = Array(#"{"MessageSid":"SM400","MessageStatus":"failed"}"#.utf8)
        let hex = SHA256Hex.of(body)
        let path = "/functions/v1/twilio-status?bodySHA256=\(hex)"
        let signature = TwilioSignature.signature(url: server.base + path, parameters: [], authToken: LiveServer.secrets.twilio)
        let answer = try await server.post(
            path, body: body, headers: ["Content-Type": "application/json", "X-Twilio-Signature": signature])
        #expect(answer.status == 200)
        #expect(answer.body.contains("unmatched"))
        let tampered = Array(#"{"MessageSid":"SM401","MessageStatus":"failed"}"#.utf8)
        #expect(
            try await server.post(path, body: tampered, headers: ["Content-Type": "application/json", "X-Twilio-Signature": signature])
                .status
                == 401)
        #expect(try await Probe.int(settings, "select count(*) from private.webhook_receipts") == 1)
    }
}
