import Foundation
import Logging
import PostgresNIO
import WingtelDatabase
import WingtelFunctions
import WingtelTestSupport
import WingtelVerification

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The functions server on a free loopback port, over a real database, driven over real HTTP.
final class LiveServer: Sendable {
    static let secrets = (
        stripe: "whsec_test_current", stripeOld: "whsec_test_old", twilio: "twilio_token", att: "att_secret",
        verizonUser: "wingtel-callbacks", verizonPassword: "vz-pass", tmobile: "agg_secret", zift: "zift_secret"
    )

    let server: LoopbackServer
    let settings: ConnectionSettings
    var port: Int { server.port }

    private init(server: LoopbackServer, settings: ConnectionSettings) {
        self.server = server
        self.settings = settings
    }

    /// The database deadline is generous by default: on a loaded two-core machine running every
    /// suite at once a statement can take seconds, and only the tests of the deadline itself (which
    /// pass a short one over an unreachable or locked database) may see its 503.
    static func configuration(databaseTimeout: Duration = .seconds(60)) -> FunctionsConfiguration {
        var configuration = FunctionsConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.stripeWebhookSecrets = .init([secrets.stripe, secrets.stripeOld])
        configuration.twilioAuthTokens = .init([secrets.twilio])
        configuration.attPushSecrets = .init([secrets.att])
        configuration.verizonCallbackCredentials = [.init(username: secrets.verizonUser, password: secrets.verizonPassword)]
        configuration.tmobileWebhookSecrets = .init([secrets.tmobile])
        configuration.ziftWebhookSecrets = .init([secrets.zift])
        configuration.databaseTimeout = databaseTimeout
        configuration.maxBodyBytes = 64 * 1024
        // No outbox workers or scheduler: these tests drive the routes alone.
        configuration.outboxWorkers = 0
        return configuration
    }

    /// Starts a server over `settings` (a migrated, seeded database).
    static func start(
        settings: ConnectionSettings, configuration: FunctionsConfiguration = LiveServer.configuration()
    ) async throws -> LiveServer {
        var logger = Logger(label: "wingtel.tests.functions")
        logger.logLevel = .warning
        let client = PostgresClient(
            configuration: settings.postgresClientConfiguration(role: "service_role", maximumConnections: 8), backgroundLogger: logger)
        let server = try await LoopbackServer.start(label: "wingtel.tests.functions") { onRunning in
            buildFunctionsApplication(configuration: configuration, client: client, logger: logger, onServerRunning: onRunning)
        }
        return LiveServer(server: server, settings: settings)
    }

    func stop() async throws {
        try await server.stop()
    }

    var base: String { "http://127.0.0.1:\(port)" }

    struct Answer: Sendable {
        let status: Int
        let body: String
        let headers: [String: String]
    }

    func post(_ path: String, body: [UInt8], headers: [String: String]) async throws -> Answer {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        return try await send(request)
    }

    func get(_ path: String) async throws -> Answer {
        try await send(URLRequest(url: URL(string: base + path)!))
    }

    private func send(_ request: URLRequest) async throws -> Answer {
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields { headers[String(describing: name).lowercased()] = String(describing: value) }
        return Answer(status: http.statusCode, body: String(decoding: data, as: UTF8.self), headers: headers)
    }

    /// Twilio's form body with its signature for this server's URL.
    func twilio(_ path: String, _ parameters: [(String, String)], token: String = LiveServer.secrets.twilio) async throws -> Answer {
        let signature = TwilioSignature.signature(url: base + path, parameters: parameters, authToken: token)
        return try await post(
            path, body: Array(FormURLEncoded.encode(parameters).utf8),
            headers: ["Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature])
    }
}
