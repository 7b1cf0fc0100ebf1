import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// Builds the functions server: routes of ARCHITECTURE.md §3 over a pooled database client, the
/// outbox workers for the carriers that have settings, the payment worker for the payment
/// providers that have settings, the SMS sender and the scheduler.
/// `wingtel serve` and the tests call this same function. The client is added as a service
/// before the HTTP server, so on SIGTERM the server stops accepting and finishes its requests
/// before the pool closes.
public func buildFunctionsApplication(
    configuration: FunctionsConfiguration,
    client: PostgresClient,
    metrics: FunctionsMetrics = FunctionsMetrics(),
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int?) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let store = EventStore(client: client, timeout: configuration.databaseTimeout)
    let handling = Handling(store: store, metrics: metrics)
    let router = Router(context: WingtelRequestContext.self)
    router.add(middleware: RouteMetricsMiddleware(metrics: metrics))
    router.add(middleware: LogRequestsMiddleware(.info))

    router.get("health") { _, context -> Response in
        let healthy = await store.isHealthy(logger: context.logger)
        return Handling.response(
            healthy ? #"{"status":"ok","database":"ok"}"# : #"{"status":"unavailable","database":"unreachable"}"#,
            contentType: "application/json; charset=utf-8", requestID: context.id, status: healthy ? .ok : .serviceUnavailable)
    }
    // What this server is; no database, no verification (also the bare route of benchmark B4).
    router.get("/") { _, context -> Response in
        Handling.response(
            #"{"service":"wingtel-functions","docs":"docs/API.md","health":"/health","metrics":"/metrics"}"#,
            contentType: "application/json; charset=utf-8", requestID: context.id)
    }
    router.get("metrics") { _, context -> Response in
        Handling.response(metrics.prometheusText(), contentType: "text/plain; version=0.0.4; charset=utf-8", requestID: context.id)
    }

    StripeController(configuration: configuration, handling: handling).addRoutes(to: router)
    TwilioController(configuration: configuration, handling: handling).addRoutes(to: router)
    CarriersController(configuration: configuration, handling: handling).addRoutes(to: router)
    ZiftController(
        configuration: configuration, handling: handling,
        gateway: configuration.zift.map { ZiftGateway(settings: $0, transport: URLSessionTransport(timeout: .seconds(10))) }
    ).addRoutes(to: router)

    var app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "wingtel"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port) },
        logger: logger
    )
    // Order matters for shutdown (reverse order): the HTTP server stops first, then the workers
    // finish the commands they hold, then the pool closes.
    app.addServices(client)
    let adapters = configuration.carrierAdapters(transport: URLSessionTransport())
    if configuration.outboxWorkers > 0 {
        for index in 0..<configuration.outboxWorkers {
            var settings = OutboxWorker.Settings()
            settings.name = "\(settings.name)-\(index + 1)"
            settings.pollInterval = configuration.outboxPollInterval
            app.addServices(OutboxWorker(client: client, adapters: adapters, settings: settings, metrics: metrics, logger: logger))
        }
        if configuration.schedulerEnabled {
            app.addServices(Scheduler(client: client, interval: configuration.schedulerInterval, logger: logger))
        }
        let payments = configuration.paymentAdapters(transport: URLSessionTransport(timeout: .seconds(60)))
        if !payments.isEmpty {
            app.addServices(
                PaymentWorker(
                    client: client, adapters: payments, pollInterval: configuration.outboxPollInterval, metrics: metrics, logger: logger))
        }
        if let messaging = configuration.twilioMessaging {
            app.addServices(
                SmsSender(
                    client: client, settings: messaging, transport: URLSessionTransport(), pollInterval: configuration.outboxPollInterval,
                    logger: logger))
        }
    }
    return app
}
