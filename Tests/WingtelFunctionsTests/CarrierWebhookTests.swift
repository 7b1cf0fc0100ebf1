import Foundation
import Testing
import WingtelDatabase
import WingtelTestSupport
import WingtelVerification

@Suite("POST /functions/v1/carriers/verizon|att|tmobile over HTTP and a real database")
struct CarrierWebhookTests {
    static let org = "10000000-0000-4000-8000-00000000000a"
    static let line = "5b100000-0000-4000-8000-00000000000a"

    /// Suspends the seed's ThingSpace line and hands the command to the carrier as request `requestID`.
    static func suspendInFlight(_ settings: ConnectionSettings, requestID: String) async throws {
        try await Probe.execute(
            settings,
            """
            select public.suspend_subscriber('\(org)', '\(line)', 'non_payment');
            select public.claim_carrier_commands('test-worker');
            select public.mark_carrier_command_sent('\(org)', (select id from public.carrier_commands where status = 'in_flight'), '\(requestID)');
            """)
    }

    static func verizon(_ json: String) -> [UInt8] { Array(json.utf8) }

    @Test("a ThingSpace CarrierService callback completes the command it answers; its repeats change nothing")
    func verizonResult() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        try await Self.suspendInFlight(settings, requestID: "vz-req-77")
        let body = """
            {"username":"\(LiveServer.secrets.verizonUser)","password":"\(LiveServer.secrets.verizonPassword)","requestId":"vz-req-77",
             "deviceIds":[{"id":"89012600000000000011","kind":"iccid"}],"deviceResponse":{"state":"suspend"},"status":"Success",
             "callbackCount":1,"maxCallbackThreshold":4}
            """
        let answer = try await server.post(
            "/functions/v1/carriers/verizon", body: Self.verizon(body), headers: ["Content-Type": "application/json"])
        #expect(answer.status == 200)
        #expect(answer.body.contains("applied"))
        let again = try await server.post(
            "/functions/v1/carriers/verizon",
            body: Self.verizon(body.replacingOccurrences(of: #""callbackCount":1"#, with: #""callbackCount":2"#)),
            headers: ["Content-Type": "application/json"])
        #expect(again.body.contains("duplicate"))
        let state = try await Probe.rows(
            settings,
            "select s.status::text, s.network_status::text, c.status::text from public.subscribers s join public.carrier_commands c on c.subscriber_id = s.id where s.id = '\(Self.line)' and c.carrier_request_id = 'vz-req-77'"
        )
        #expect(state == [["suspended", "suspended", "succeeded"]])
        // The stored event does not keep the callback password.
        #expect(try await Probe.int(settings, "select count(*) from private.webhook_receipts where payload ? 'password'") == 0)
    }

    @Test("a ThingSpace fault rolls the line back to where it was; wrong credentials are refused and store nothing")
    func verizonFaultAndRejection() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        try await Self.suspendInFlight(settings, requestID: "vz-req-78")
        let forged =
            #"{"username":"wingtel-callbacks","password":"guess","requestId":"vz-req-78","faultResponse":{"faultcode":"x","faultstring":"y"}}"#
        #expect(try await server.post("/functions/v1/carriers/verizon", body: Self.verizon(forged), headers: [:]).status == 401)
        #expect(try await server.post("/functions/v1/carriers/verizon", body: Self.verizon("not json"), headers: [:]).status == 400)
        #expect(try await Probe.int(settings, "select count(*) from private.webhook_receipts") == 0)

        let fault = """
            {"username":"\(LiveServer.secrets.verizonUser)","password":"\(LiveServer.secrets.verizonPassword)","requestId":"vz-req-78",
             "faultResponse":{"faultcode":"Device.Suspend.Limit","faultstring":"Suspension limit reached for this line"}}
            """
        let answer = try await server.post("/functions/v1/carriers/verizon", body: Self.verizon(fault), headers: [:])
        #expect(answer.status == 200)
        let state = try await Probe.rows(
            settings,
            "select s.status::text, s.network_status::text, c.status::text, c.error from public.subscribers s join public.carrier_commands c on c.subscriber_id = s.id where c.carrier_request_id = 'vz-req-78'"
        )
        #expect(state == [["active", "active", "failed", "Suspension limit reached for this line"]])
    }

    @Test("Control Center push: signature2 over the timestamp, stale pushes refused, SIM state changes followed")
    func attPush() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        // Move the seed line of organization acme-mobile to an AT&T carrier for this test.
        try await Probe.execute(
            settings,
            """
            update public.subscribers
               set carrier_id = (select id from public.carriers where organization_id = '\(Self.org)' and adapter = 'att_control_center')
             where id = '\(Self.line)';
            """)
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        let iccid = try #require(
            try await Probe.rows(
                settings,
                "select c.iccid from public.sim_cards c join public.subscribers s on s.current_sim_id = c.id and s.organization_id = c.organization_id where s.id = '\(Self.line)'"
            ).first?.first ?? nil)
        func push(eventID: String, state: String, at date: Date, secret: String = LiveServer.secrets.att) -> [UInt8] {
            let formatter = ISO8601DateFormatter()
            let timestamp = formatter.string(from: date)
            let data =
                "<Payload><iccid>\(iccid)</iccid><previousState>ACTIVATED</previousState><currentState>\(state)</currentState></Payload>"
            return Array(
                FormURLEncoded.encode([
                    ("eventId", eventID), ("eventType", "SIM_STATE_CHANGE"), ("timestamp", timestamp), ("data", data),
                    ("signature2", ControlCenterSignature.signature(timestamp: timestamp, secret: secret)),
                ]).utf8)
        }
        let path = "/functions/v1/carriers/att"
        let form = ["Content-Type": "application/x-www-form-urlencoded"]
        #expect(
            try await server.post(path, body: push(eventID: "e-1", state: "DEACTIVATED", at: Date(), secret: "wrong"), headers: form).status
                == 401)
        #expect(
            try await server.post(path, body: push(eventID: "e-1", state: "DEACTIVATED", at: Date() - 600), headers: form).status == 401)
        #expect(try await Probe.int(settings, "select count(*) from private.webhook_receipts") == 0)

        let answer = try await server.post(path, body: push(eventID: "e-1", state: "DEACTIVATED", at: Date()), headers: form)
        #expect(answer.status == 200)
        #expect(answer.body.contains("network state active → deactivated"))
        let history = try await Probe.rows(
            settings,
            "select kind, details ->> 'carrier_state' from public.subscriber_events where subscriber_id = '\(Self.line)' and kind = 'network_state_changed'"
        )
        #expect(history == [["network_state_changed", "DEACTIVATED"]])
    }

    @Test("aggregator callbacks: timestamped HMAC under the configured header; unknown lines are kept as unmatched")
    func tmobile() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        let body = Array(#"{"eventId":"tm-1","eventType":"status","msisdn":"2125550199","status":"SUSPENDED"}"#.utf8)
        let header = TimestampedHMAC.header(payload: body, secret: LiveServer.secrets.tmobile, timestamp: Clock.now)
        let path = "/functions/v1/carriers/tmobile"
        #expect(try await server.post(path, body: body, headers: ["X-Webhook-Signature": "t=1,v1=00"]).status == 401)
        let answer = try await server.post(path, body: body, headers: ["X-Webhook-Signature": header])
        #expect(answer.status == 200)
        #expect(answer.body.contains("unmatched"))
        let noID = Array(#"{"eventType":"status"}"#.utf8)
        let noIDHeader = TimestampedHMAC.header(payload: noID, secret: LiveServer.secrets.tmobile, timestamp: Clock.now)
        #expect(try await server.post(path, body: noID, headers: ["X-Webhook-Signature": noIDHeader]).status == 400)
        #expect(try await Probe.int(settings, "select count(*) from private.webhook_receipts") == 1)
    }
}
