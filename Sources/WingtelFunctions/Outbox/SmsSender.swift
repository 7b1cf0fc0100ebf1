import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import WingtelVerification

/// Twilio's Messages API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic
/// (Account SID : Auth Token), form fields To, From, Body, StatusCallback.
public struct TwilioMessagingSettings: Sendable {
    public var baseURL: String
    public var accountSID: String
    public var authToken: String
    /// Where Twilio reports delivery (`WINGTEL_PUBLIC_URL` + /functions/v1/twilio-status); nil sends none.
    public var statusCallback: String?

    public init(baseURL: String = "https://api.twilio.com", accountSID: String, authToken: String, statusCallback: String?) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.accountSID = accountSID
        self.authToken = authToken
        self.statusCallback = statusCallback
    }
}

/// Sends queued outbound SMS (`public.claim_sms_messages`) through Twilio and records the SID,
/// so the status callbacks find the message. Woken by `NOTIFY wingtel_sms_outbox`, polling as
/// a fallback. 429 and 5xx are retried (Retry-After honoured, at most 5 attempts); another 4xx
/// fails the message with Twilio's error code (21610: the recipient replied STOP to Twilio).
public struct SmsSender: Service {
    public static let channel = "wingtel_sms_outbox"

    let client: PostgresClient
    let settings: TwilioMessagingSettings
    let transport: any HTTPTransport
    let name: String
    let pollInterval: Duration
    let logger: Logger

    public init(
        client: PostgresClient, settings: TwilioMessagingSettings, transport: any HTTPTransport,
        name: String = "sms-\(UUID().uuidString.prefix(8))",
        pollInterval: Duration = .seconds(5), logger: Logger
    ) {
        self.client = client
        self.settings = settings
        self.transport = transport
        self.name = name
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        await drainQueue(client: client, channel: Self.channel, pollInterval: pollInterval, logger: logger) { await drainOnce() }
    }

    /// Claims a batch and sends it; returns how many messages it handled.
    @discardableResult
    public func drainOnce() async -> Int {
        var claimed: [(org: String, id: String, from: String, to: String, body: String)] = []
        do {
            let rows = try await client.query(
                "select organization_id::text, id::text, from_number, to_number, body from public.claim_sms_messages(\(name), 20, '60 seconds'::interval)",
                logger: logger)
            for try await row in rows.decode((String, String, String, String, String).self) { claimed.append(row) }
        } catch {
            logger.warning("claiming SMS failed", metadata: ["error": "\(String(reflecting: error))"])
            return 0
        }
        await withTaskGroup(of: Void.self) { group in
            for message in claimed { group.addTask { await send(message) } }
        }
        return claimed.count
    }

    func send(_ message: (org: String, id: String, from: String, to: String, body: String)) async {
        var form = [("To", message.to), ("From", message.from), ("Body", message.body)]
        if let callback = settings.statusCallback { form.append(("StatusCallback", callback)) }
        let basic = Data("\(settings.accountSID):\(settings.authToken)".utf8).base64EncodedString()
        let request = OutboundRequest(
            method: "POST", url: "\(settings.baseURL)/2010-04-01/Accounts/\(settings.accountSID)/Messages.json",
            headers: [("Authorization", "Basic \(basic)"), ("Content-Type", "application/x-www-form-urlencoded")],
            body: Array(FormURLEncoded.encode(form).utf8))
        var sid: String?
        var status = "queued"
        var errorCode: String?
        var retryAfter: String?
        do {
            let reply = try await transport.send(request)
            let json = reply.json ?? [:]
            switch reply.status {
            case 200...299:
                sid = json["sid"] as? String
                let known = ["accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered", "failed"]
                status = (json["status"] as? String).flatMap { known.contains($0) ? $0 : nil } ?? "queued"
                if sid == nil { (errorCode, retryAfter) = ("no_sid", "5 seconds") }
            case 429, 500...599:
                errorCode = "http_\(reply.status)"
                retryAfter = "\(reply.retryAfter.map { Int($0.components.seconds) } ?? 5) seconds"
            default:
                errorCode = (json["code"] as? Int).map(String.init) ?? "http_\(reply.status)"
            }
        } catch {
            errorCode = "unreachable"
            retryAfter = "5 seconds"
        }
        do {
            try await client.query(
                """
                select 1 from public.finish_sms_message(\(message.org)::uuid, \(message.id)::uuid, \(sid), \(status)::public.sms_status,
                                                        \(errorCode), \(retryAfter)::interval)
                """, logger: logger)
        } catch {
            logger.error(
                "recording an SMS outcome failed", metadata: ["error": "\(String(reflecting: error))", "message": "\(message.id)"])
        }
    }
}
