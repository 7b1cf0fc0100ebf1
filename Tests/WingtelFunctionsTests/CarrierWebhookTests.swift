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
    @Test(
        "usage callbacks: ThingSpace usageHistory and aggregator usage records go into ingestion once; unreadable records are quarantined")
    func usageCallbacks() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let server = try await LiveServer.start(settings: settings)
        defer { Task { try await server.stop() } }
        func thingSpace(_ history: String, count: Int = 1) -> [UInt8] {
            Self.verizon(
                """
                {"username":"\(LiveServer.secrets.verizonUser)","password":"\(LiveServer.secrets.verizonPassword)",
                 "deviceIds":[{"id":"89012600000000000011","kind":"iccid"},{"id":"3125550101","kind":"mdn"}],
                 "usageHistory":[\(history)],"callbackCount":\(count),"maxCallbackThreshold":4}
                """)
        }
        let first = """
            {"timestamp":"2026-03-03T12:00:00Z","bytesUsed":5242880,"smsUsed":3},
            {"timestamp":"2026-03-04T12:00:00Z","bytesUsed":1048576},
            {"timestamp":"yesterday","bytesUsed":5}
            """
        let path = "/functions/v1/carriers/verizon"
        let answer = try await server.post(path, body: thingSpace(first), headers: ["Content-Type": "application/json"])
        #expect(answer.status == 200)
        #expect(answer.body.contains("applied") && answer.body.contains("4 records, 3 new, 0 already counted, 1 quarantined"))
        // ThingSpace repeats a callback until it is acknowledged: the repeat is a duplicate.
        let repeated = try await server.post(path, body: thingSpace(first, count: 2), headers: ["Content-Type": "application/json"])
        #expect(repeated.body.contains("duplicate"))
        // A later callback overlapping the first: the record already taken counts once.
        let later = try await server.post(
            path,
            body: thingSpace(
                #"{"timestamp":"2026-03-04T12:00:00Z","bytesUsed":1048576},{"timestamp":"2026-03-05T12:00:00Z","bytesUsed":10}"#),
            headers: ["Content-Type": "application/json"])
        #expect(later.body.contains("2 records, 1 new, 1 already counted, 0 quarantined"))
        let days = try await Probe.rows(
            settings,
            "select day::text, data_bytes::text, sms_count::text from public.usage_daily where subscriber_id = '\(Self.line)' and organization_id = '\(Self.org)' and day between '2026-03-03' and '2026-03-05' order by day"
        )
        #expect(days == [["2026-03-03", "5242880", "3"], ["2026-03-04", "1048576", "0"], ["2026-03-05", "10", "0"]])
        #expect(
            try await Probe.rows(
                settings,
                "select q.reason from public.usage_quarantine q join public.usage_batches b on b.organization_id = q.organization_id and b.id = q.batch_id where b.file_name like 'verizon callback %'"
            )
                == [["recorded_at yesterday is not a timestamp"]])

        // The aggregator's usage events, for a line on T-Mobile.
        try await Probe.execute(
            settings,
            "update public.subscribers set carrier_id = 'ca300000-0000-4000-8000-00000000000a' where organization_id = '\(Self.org)' and id = '\(Self.line)'"
        )
        let body = Array(
            #"""
            {"eventId":"tm-usage-1","eventType":"usage","msisdn":"3125550101","records":[
             {"recordId":"r-1","recordedAt":"2026-03-06T09:00:00Z","kind":"VOICE","quantity":120},
             {"recordId":"r-2","recordedAt":"2026-03-06T09:05:00Z","kind":"data","quantity":-4}]}
            """#.utf8)
        let header = TimestampedHMAC.header(payload: body, secret: LiveServer.secrets.tmobile, timestamp: Clock.now)
        let tmobile = try await server.post("/functions/v1/carriers/tmobile", body: body, headers: ["X-Webhook-Signature": header])
        #expect(tmobile.status == 200)
        #expect(tmobile.body.contains("2 records, 1 new, 0 already counted, 1 quarantined"))
        #expect(
            try await Probe.int(
                settings, "select voice_seconds from public.usage_daily where subscriber_id = '\(Self.line)' and day = '2026-03-06'") == 120
        )
        // A usage event for a line no one has is kept as unmatched; nothing is ingested.
        let stranger = Array(
            #"{"eventId":"tm-usage-2","eventType":"usage","msisdn":"2125550199","records":[{"recordId":"x","recordedAt":"2026-03-06","kind":"data","quantity":1}]}"#
                .utf8)
        let strangerHeader = TimestampedHMAC.header(payload: stranger, secret: LiveServer.secrets.tmobile, timestamp: Clock.now)
        let unmatched = try await server.post(
            "/functions/v1/carriers/tmobile", body: stranger, headers: ["X-Webhook-Signature": strangerHeader])
        #expect(unmatched.status == 200 && unmatched.body.contains("unmatched"))
        #expect(try await Probe.int(settings, "select count(*) from public.usage_records where source_record_id = 'x'") == 0)
    }
}
