import Foundation
import WingtelVerification

/// Settings of `wingtel serve`, read from the environment variables of ARCHITECTURE.md §3 or
/// a file of `KEY=value` lines with the same keys (the environment wins). Secrets may hold
/// several comma-separated values while they rotate.
public struct FunctionsConfiguration: Sendable {
    public var host: String = "0.0.0.0"
    public var port: Int = 8080
    /// The external base URL providers call (`https://api.example.com`); Twilio signs the full
    /// URL it called, so behind a proxy the signature can only be checked against this.
    public var publicURL: String?
    public var stripeWebhookSecrets = SecretList([])
    public var twilioAuthTokens = SecretList([])
    public var ziftWebhookSecrets = SecretList([])
    public var attPushSecrets = SecretList([])
    public var verizonCallbackCredentials: [ThingSpaceCredentials.Pair] = []
    public var tmobileWebhookSecrets = SecretList([])
    /// Header carrying the aggregator's and Zift's `t=…,v1=…` signature (unconfirmed by the providers: a setting).
    public var tmobileSignatureHeader = TimestampedHMAC.defaultHeader
    public var ziftSignatureHeader = TimestampedHMAC.defaultHeader
    /// How far a signed timestamp may be from now (Stripe's default, also used for AT&T and HMAC routes).
    public var signatureTolerance: Int64 = StripeSignature.defaultTolerance
    /// Largest request body accepted (Twilio caps an SMS at 1600 characters; Stripe events are a few kB).
    public var maxBodyBytes = 1 << 20
    /// How long one request may wait for the database before answering 503 (the provider retries).
    public var databaseTimeout: Duration = .seconds(5)
    /// Connections in the pool.
    public var databaseConnections = 10
    /// Carrier APIs the outbox worker sends commands to; a carrier without settings keeps its
    /// commands pending (visible in public.outbox_status).
    public var thingSpace: ThingSpaceSettings?
    public var controlCenter: ControlCenterSettings?
    public var aggregator: AggregatorSettings?
    /// The Zift gateway, which confirms Zift notifications (`find`) before they are applied.
    public var zift: ZiftSettings?
    /// Stripe's API for charging saved payment methods (autopay); STRIPE_SECRET_KEY turns it on.
    public var stripeAPI: StripeAPISettings?
    /// Twilio's Messages API for queued outbound SMS (TWILIO_ACCOUNT_SID with the first TWILIO_AUTH_TOKEN).
    public var twilioMessaging: TwilioMessagingSettings?
    /// Outbox workers in this process (0 turns the worker off, e.g. on a webhook-only replica).
    public var outboxWorkers = 1
    public var outboxPollInterval: Duration = .seconds(5)
    /// How often the scheduler looks for due jobs (bill runs, dunning, scheduled plan changes); it
    /// runs with the outbox workers (OUTBOX_WORKERS=0 turns both off).
    public var schedulerInterval: Duration = .seconds(60)
    /// SCHEDULER=off runs no scheduler (a development database whose fixed data tests check).
    public var schedulerEnabled = true
    /// Unix time now; tests pass a fixed clock.
    public var now: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }

    public init() {}

    /// The keys this configuration reads.
    public static let keys = [
        "PORT", "HOST", "WINGTEL_PUBLIC_URL", "STRIPE_WEBHOOK_SECRET", "TWILIO_AUTH_TOKEN", "ZIFT_WEBHOOK_SECRET",
        "ZIFT_SIGNATURE_HEADER", "ATT_PUSH_SECRET", "VERIZON_CALLBACK_USERNAME", "VERIZON_CALLBACK_PASSWORD",
        "TMOBILE_WEBHOOK_SECRET", "TMOBILE_SIGNATURE_HEADER", "WEBHOOK_TOLERANCE_SECONDS", "MAX_BODY_BYTES",
        "DATABASE_TIMEOUT_SECONDS", "DATABASE_POOL_SIZE", "THINGSPACE_API_URL", "THINGSPACE_CLIENT_ID", "THINGSPACE_CLIENT_SECRET",
        "THINGSPACE_USERNAME", "THINGSPACE_PASSWORD", "THINGSPACE_ACCOUNT_NAME", "ATT_API_URL", "ATT_USERNAME", "ATT_API_KEY",
        "TMOBILE_API_URL", "TMOBILE_USERNAME", "TMOBILE_PASSWORD", "TMOBILE_CLIENT_ID", "TMOBILE_CLIENT_SECRET", "OUTBOX_WORKERS",
        "OUTBOX_POLL_SECONDS", "TWILIO_ACCOUNT_SID", "TWILIO_API_URL", "SCHEDULER_INTERVAL_SECONDS", "SCHEDULER", "ZIFT_API_URL",
        "ZIFT_USERNAME", "ZIFT_PASSWORD", "ZIFT_ACCOUNT_ID", "STRIPE_API_URL", "STRIPE_SECRET_KEY",
    ]

    /// Reads settings; `file` (KEY=value lines, `#` comments) first, then `environment` over it.
    public init(environment: [String: String], file: String? = nil) throws(FunctionsError) {
        var values: [String: String] = [:]
        if let file {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                throw .configuration("cannot read the config file \(file): \(error.localizedDescription)")
            }
            for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = rawLine.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                guard let equals = line.firstIndex(of: "=") else {
                    throw .configuration("\(file):\(number + 1): expected KEY=value")
                }
                var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                values[line[..<equals].trimmingCharacters(in: .whitespaces)] = value
            }
        }
        for key in Self.keys { if let value = environment[key] { values[key] = value } }

        func integer(_ key: String) throws(FunctionsError) -> Int? {
            guard let text = values[key], !text.isEmpty else { return nil }
            guard let value = Int(text), value > 0 else { throw .configuration("\(key) must be a positive integer, not \(text)") }
            return value
        }
        if let port = try integer("PORT") { self.port = port }
        if let host = values["HOST"], !host.isEmpty { self.host = host }
        if let url = values["WINGTEL_PUBLIC_URL"], !url.isEmpty {
            guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                throw .configuration("WINGTEL_PUBLIC_URL must start with https:// (it is the URL providers call), not \(url)")
            }
            publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        }
        stripeWebhookSecrets = SecretList(parsing: values["STRIPE_WEBHOOK_SECRET"])
        twilioAuthTokens = SecretList(parsing: values["TWILIO_AUTH_TOKEN"])
        ziftWebhookSecrets = SecretList(parsing: values["ZIFT_WEBHOOK_SECRET"])
        attPushSecrets = SecretList(parsing: values["ATT_PUSH_SECRET"])
        tmobileWebhookSecrets = SecretList(parsing: values["TMOBILE_WEBHOOK_SECRET"])
        let usernames = SecretList(parsing: values["VERIZON_CALLBACK_USERNAME"])
        let passwords = SecretList(parsing: values["VERIZON_CALLBACK_PASSWORD"])
        guard usernames.values.count == passwords.values.count else {
            throw .configuration(
                "VERIZON_CALLBACK_USERNAME has \(usernames.values.count) values and VERIZON_CALLBACK_PASSWORD \(passwords.values.count); give them pairwise"
            )
        }
        verizonCallbackCredentials = ThingSpaceCredentials.pairs(usernames: usernames, passwords: passwords)
        if let header = values["TMOBILE_SIGNATURE_HEADER"], !header.isEmpty { tmobileSignatureHeader = header }
        if let header = values["ZIFT_SIGNATURE_HEADER"], !header.isEmpty { ziftSignatureHeader = header }
        if let seconds = try integer("WEBHOOK_TOLERANCE_SECONDS") { signatureTolerance = Int64(seconds) }
        if let bytes = try integer("MAX_BODY_BYTES") { maxBodyBytes = bytes }
        if let seconds = try integer("DATABASE_TIMEOUT_SECONDS") { databaseTimeout = .seconds(seconds) }
        if let size = try integer("DATABASE_POOL_SIZE") { databaseConnections = size }

        func value(_ key: String) -> String? { values[key].flatMap { $0.isEmpty ? nil : $0 } }
        if let id = value("THINGSPACE_CLIENT_ID"), let secret = value("THINGSPACE_CLIENT_SECRET"), let user = value("THINGSPACE_USERNAME"),
            let password = value("THINGSPACE_PASSWORD"), let account = value("THINGSPACE_ACCOUNT_NAME")
        {
            thingSpace = ThingSpaceSettings(
                baseURL: value("THINGSPACE_API_URL") ?? "https://thingspace.verizon.com", clientID: id, clientSecret: secret,
                username: user,
                password: password, accountName: account)
        }
        if let user = value("ATT_USERNAME"), let key = value("ATT_API_KEY") {
            controlCenter = ControlCenterSettings(
                baseURL: value("ATT_API_URL") ?? "https://restapi1.jasper.com", username: user, apiKey: key)
        }
        if let base = value("TMOBILE_API_URL"), let user = value("TMOBILE_USERNAME"), let password = value("TMOBILE_PASSWORD") {
            aggregator = AggregatorSettings(
                baseURL: base, username: user, password: password, clientID: value("TMOBILE_CLIENT_ID") ?? "",
                clientSecret: value("TMOBILE_CLIENT_SECRET") ?? "")
        }
        if let user = value("ZIFT_USERNAME"), let password = value("ZIFT_PASSWORD"), let account = value("ZIFT_ACCOUNT_ID") {
            zift = ZiftSettings(
                baseURL: value("ZIFT_API_URL") ?? "https://sandbox-secure.zift.io/gates/xurl", userName: user, password: password,
                accountID: account)
        }
        if let key = value("STRIPE_SECRET_KEY") {
            guard key.hasPrefix("sk_") || key.hasPrefix("rk_") else {
                throw .configuration("STRIPE_SECRET_KEY must be a secret (sk_…) or restricted (rk_…) key, not a publishable one")
            }
            stripeAPI = StripeAPISettings(baseURL: value("STRIPE_API_URL") ?? "https://api.stripe.com", secretKey: key)
        }
        if let account = value("TWILIO_ACCOUNT_SID"), let token = twilioAuthTokens.values.first {
            twilioMessaging = TwilioMessagingSettings(
                baseURL: value("TWILIO_API_URL") ?? "https://api.twilio.com", accountSID: account, authToken: token,
                statusCallback: publicURL.map { $0 + "/functions/v1/twilio-status" })
        }
        if let text = values["OUTBOX_WORKERS"], !text.isEmpty {
            guard let count = Int(text), count >= 0 else { throw .configuration("OUTBOX_WORKERS must be 0 or more, not \(text)") }
            outboxWorkers = count
        }
        if let seconds = try integer("OUTBOX_POLL_SECONDS") { outboxPollInterval = .seconds(seconds) }
        if let seconds = try integer("SCHEDULER_INTERVAL_SECONDS") { schedulerInterval = .seconds(seconds) }
        if let text = value("SCHEDULER") {
            switch text.lowercased() {
            case "on", "true", "1", "yes": schedulerEnabled = true
            case "off", "false", "0", "no": schedulerEnabled = false
            default: throw .configuration("SCHEDULER must be on or off, not \(text)")
            }
        }
    }

    /// The adapters for the carriers that have settings.
    public func carrierAdapters(transport: any HTTPTransport) -> [any CarrierAdapter] {
        var adapters: [any CarrierAdapter] = []
        if let thingSpace { adapters.append(ThingSpaceAdapter(settings: thingSpace, transport: transport)) }
        if let controlCenter { adapters.append(ControlCenterAdapter(settings: controlCenter, transport: transport)) }
        if let aggregator { adapters.append(AggregatorAdapter(settings: aggregator, transport: transport)) }
        return adapters
    }

    /// The payment adapters for the providers that have settings (Stripe's API key, Zift's gateway).
    public func paymentAdapters(transport: any HTTPTransport) -> [any PaymentAdapter] {
        var adapters: [any PaymentAdapter] = []
        if let stripeAPI { adapters.append(StripePaymentAdapter(settings: stripeAPI, transport: transport)) }
        if let zift { adapters.append(ZiftPaymentAdapter(gateway: ZiftGateway(settings: zift, transport: transport))) }
        return adapters
    }

    /// Routes whose secret is not configured answer 401 to everything; say so at start-up.
    public var unconfiguredRoutes: [String] {
        var routes: [String] = []
        if stripeWebhookSecrets.isEmpty { routes.append("stripe-webhook (STRIPE_WEBHOOK_SECRET)") }
        if twilioAuthTokens.isEmpty { routes.append("twilio-sms, twilio-status (TWILIO_AUTH_TOKEN)") }
        if ziftWebhookSecrets.isEmpty { routes.append("zift-webhook (ZIFT_WEBHOOK_SECRET)") }
        if attPushSecrets.isEmpty { routes.append("carriers/att (ATT_PUSH_SECRET)") }
        if verizonCallbackCredentials.isEmpty { routes.append("carriers/verizon (VERIZON_CALLBACK_USERNAME/PASSWORD)") }
        if tmobileWebhookSecrets.isEmpty { routes.append("carriers/tmobile (TMOBILE_WEBHOOK_SECRET)") }
        return routes
    }
}
