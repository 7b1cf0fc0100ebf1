import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import WingtelDatabase
import WingtelFunctions

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP functions: Stripe, Zift, Twilio and carrier webhooks, /health and /metrics.",
        discussion: """
            Routes: POST /functions/v1/stripe-webhook, /twilio-sms, /twilio-status, /carriers/verizon, /carriers/att, \
            /carriers/tmobile; GET /health, /metrics. Settings come from the environment (or --config FILE with \
            KEY=value lines; the environment wins): PORT, HOST, WINGTEL_PUBLIC_URL, STRIPE_WEBHOOK_SECRET, \
            TWILIO_AUTH_TOKEN, ATT_PUSH_SECRET, VERIZON_CALLBACK_USERNAME, VERIZON_CALLBACK_PASSWORD, \
            TMOBILE_WEBHOOK_SECRET, ZIFT_WEBHOOK_SECRET, WEBHOOK_TOLERANCE_SECONDS, MAX_BODY_BYTES, \
            DATABASE_TIMEOUT_SECONDS, DATABASE_POOL_SIZE. A secret may list several comma-separated values while it \
            rotates. SIGTERM or Ctrl-C stops accepting requests, finishes those in flight, then exits. See docs/API.md.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Port to listen on (default: PORT, else 8080; 0 picks a free one).") var port: Int?
    @Option(help: "Address to bind (default: HOST, else 0.0.0.0).") var host: String?
    @Option(name: .customLong("config"), help: "A file of KEY=value settings (the environment overrides it).") var configFile: String?
    @Option(help: "Database role the functions act as (each pooled session starts with this role).") var role = "service_role"

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var configuration = try FunctionsConfiguration(environment: environment, file: configFile)
        if let port { configuration.port = port }
        if let host { configuration.host = host }
        let settings = try connection.resolve(layout: ProjectLayout.discover())

        var logger = Logger(label: "wingtel.serve")
        logger.logLevel = environment["WINGTEL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        for route in configuration.unconfiguredRoutes {
            logger.warning("no secret configured: \(route) will answer 401 to every request")
        }
        let client = PostgresClient(
            configuration: settings.postgresClientConfiguration(role: role, maximumConnections: configuration.databaseConnections),
            backgroundLogger: logger)
        let bind = configuration.host
        let app = buildFunctionsApplication(configuration: configuration, client: client, logger: logger) { port in
            note(
                "Wingtel functions listening on http://\(bind):\(port.map(String.init) ?? "?") (database \(settings.redactedURL), role \(role))"
            )
        }
        try await app.runService()
    }
}
