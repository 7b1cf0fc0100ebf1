import CoreMetrics
import Dispatch
import Hummingbird
import Prometheus
import WingtelVerification

/// Prometheus counters and latency histograms, in a registry of the server's own (no global
/// bootstrap, so tests and several servers in one process stay apart).
public final class FunctionsMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        self.factory = factory
    }

    /// `wingtel_http_requests_total{route,status}` and `wingtel_http_request_duration_seconds{route}`.
    func request(route: String, status: Int, nanoseconds: UInt64) {
        CoreMetrics.Counter(
            label: "wingtel_http_requests_total", dimensions: [("route", route), ("status", String(status))], factory: factory
        )
        .increment()
        CoreMetrics.Timer(label: "wingtel_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            .recordNanoseconds(Int64(nanoseconds))
    }

    /// `wingtel_webhook_events_total{provider,outcome}`: applied, ignored, unmatched, duplicate.
    func outcome(_ provider: Provider, _ outcome: String) {
        CoreMetrics.Counter(
            label: "wingtel_webhook_events_total", dimensions: [("provider", provider.rawValue), ("outcome", outcome)], factory: factory
        )
        .increment()
    }

    /// `wingtel_webhook_rejected_total{provider,reason}`.
    func rejected(_ provider: Provider, reason: VerificationFailure) {
        let kind =
            switch reason {
            case .missing: "missing"
            case .malformed: "malformed"
            case .stale: "stale"
            case .mismatch, .bodyHashMismatch: "mismatch"
            }
        CoreMetrics.Counter(
            label: "wingtel_webhook_rejected_total", dimensions: [("provider", provider.rawValue), ("reason", kind)], factory: factory
        )
        .increment()
    }

    public func prometheusText() -> String { registry.emitToString() }
}

/// Times every request and counts it by route and status, errors included.
struct RouteMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: FunctionsMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            let response = try await next(request, context)
            metrics.request(
                route: context.endpointPath ?? "unknown", status: response.status.code,
                nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.request(
                route: context.endpointPath ?? "unknown", status: status, nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
            throw error
        }
    }
}

extension FunctionsMetrics {
    /// `wingtel_outbox_commands_total{adapter,outcome}`: accepted, completed, refused, retry.
    func outbox(_ adapter: String, _ outcome: CarrierOutcome) {
        let label =
            switch outcome {
            case .accepted: "accepted"
            case .completed: "completed"
            case .refused: "refused"
            case .retry: "retry"
            }
        CoreMetrics.Counter(
            label: "wingtel_outbox_commands_total", dimensions: [("adapter", adapter), ("outcome", label)], factory: factory
        )
        .increment()
    }
}

extension FunctionsMetrics {
    /// `wingtel_payment_charges_total{provider,outcome}`: succeeded, declined, pending, retry.
    func payment(_ provider: String, _ outcome: ChargeOutcome) {
        CoreMetrics.Counter(
            label: "wingtel_payment_charges_total", dimensions: [("provider", provider), ("outcome", outcome.label)], factory: factory
        )
        .increment()
    }
}
