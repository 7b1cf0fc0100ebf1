import Foundation
import Hummingbird
import WingtelVerification

/// `POST /functions/v1/carriers/verizon|att|tmobile`: asynchronous command results and line
/// state changes, each authenticated the carrier's way, then `public.handle_carrier_event`.
///   verizon  ThingSpace callbacks (JSON); the registered username and password echoed in the body
///   att      Control Center push (form: eventId, eventType, timestamp, data XML, signature2)
///   tmobile  the aggregator's signed JSON (`t=…,v1=…` under TMOBILE_SIGNATURE_HEADER)
struct CarriersController {
    let configuration: FunctionsConfiguration
    let handling: Handling

    func addRoutes(to router: Router<WingtelRequestContext>) {
        let limit = configuration.maxBodyBytes
        let metrics = handling.metrics
        let now = configuration.now
        let tolerance = configuration.signatureTolerance

        let credentials = configuration.verizonCallbackCredentials
        router.group("functions/v1/carriers/verizon")
            .add(
                middleware: VerifyMiddleware(provider: .verizon, maxBodyBytes: limit, metrics: metrics) { _, body in
                    let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
                    guard let object else { throw FunctionsError.badRequest("a ThingSpace callback is a JSON object") }
                    try ThingSpaceCredentials.verify(
                        username: object["username"] as? String, password: object["password"] as? String, registered: credentials)
                    return nil
                }
            )
            .group(context: VerifiedContext.self)
            .post { request, context in try await handle(.verizon, context: context) }

        let attSecrets = configuration.attPushSecrets
        router.group("functions/v1/carriers/att")
            .add(
                middleware: VerifyMiddleware(provider: .att, maxBodyBytes: limit, metrics: metrics) { _, body in
                    guard let form = FormURLEncoded.parse(Array(body.readableBytesView)) else {
                        throw FunctionsError.badRequest("a Control Center push is application/x-www-form-urlencoded")
                    }
                    func value(_ name: String) -> String? { form.last { $0.0 == name }?.1 }
                    try ControlCenterSignature.verify(
                        timestamp: value("timestamp"), signature2: value("signature2"), secrets: attSecrets, now: now(),
                        tolerance: tolerance)
                    return form
                }
            )
            .group(context: VerifiedContext.self)
            .post { request, context in try await handle(.att, context: context) }

        let tmobileSecrets = configuration.tmobileWebhookSecrets
        let tmobileHeader = configuration.tmobileSignatureHeader
        router.group("functions/v1/carriers/tmobile")
            .add(
                middleware: VerifyMiddleware(provider: .tmobile, maxBodyBytes: limit, metrics: metrics) { request, body in
                    try TimestampedHMAC.verify(
                        payload: Array(body.readableBytesView), header: request.header(tmobileHeader), secrets: tmobileSecrets, now: now(),
                        tolerance: tolerance)
                    return nil
                }
            )
            .group(context: VerifiedContext.self)
            .post { request, context in try await handle(.tmobile, context: context) }
    }

    func handle(_ carrier: Provider, context: VerifiedContext) async throws -> Response {
        let event =
            if let form = context.webhook.form {
                try handling.json(form, dropping: ["signature", "signature2"])
            } else {
                try handling.text(context.webhook)
            }
        let answer = try await handling.call(carrier, context: context) {
            try await handling.store.carrier(carrier, event: event, requestID: context.requestID, logger: context.logger)
        }
        return handling.jsonAnswer(carrier, answer, context: context)
    }
}
