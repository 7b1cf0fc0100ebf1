import Hummingbird
import WingtelVerification

/// `POST /functions/v1/stripe-webhook`: `Stripe-Signature` over the raw body, then
/// `public.handle_stripe_event`. Answers 200 with `{outcome, event_id, detail}` for every event
/// it recorded (also ignored and unmatched ones, so Stripe stops retrying), 401 when the
/// signature fails, 400 for a body that is not a Stripe event, 503 when the database cannot
/// apply it now (Stripe retries for three days).
struct StripeController {
    let configuration: FunctionsConfiguration
    let handling: Handling

    func addRoutes(to router: Router<WingtelRequestContext>) {
        let secrets = configuration.stripeWebhookSecrets
        let tolerance = configuration.signatureTolerance
        let now = configuration.now
        router.group("functions/v1/stripe-webhook")
            .add(
                middleware: VerifyMiddleware(provider: .stripe, maxBodyBytes: configuration.maxBodyBytes, metrics: handling.metrics) {
                    request, body in
                    try StripeSignature.verify(
                        payload: Array(body.readableBytesView), header: request.header("Stripe-Signature"), secrets: secrets, now: now(),
                        tolerance: tolerance)
                    return nil
                }
            )
            .group(context: VerifiedContext.self)
            .post(use: handle)
    }

    @Sendable func handle(_ request: Request, context: VerifiedContext) async throws -> Response {
        let event = try handling.text(context.webhook)
        let answer = try await handling.call(.stripe, context: context) {
            try await handling.store.stripe(event: event, requestID: context.requestID, logger: context.logger)
        }
        return handling.jsonAnswer(.stripe, answer, context: context)
    }
}
