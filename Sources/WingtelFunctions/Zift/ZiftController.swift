import Foundation
import Hummingbird
import WingtelVerification

/// `POST /functions/v1/zift-webhook`: the HMAC under ZIFT_SIGNATURE_HEADER (`t=…,v1=…` over the raw
/// body), then the transaction confirmed with the gateway's `find`, then
/// `public.handle_zift_event(notification, confirmation)`. A notification the gateway cannot
/// confirm is not applied: 503 when the gateway cannot be asked (Zift retries), 422 when it does
/// not know the transaction.
struct ZiftController {
    let configuration: FunctionsConfiguration
    let handling: Handling
    let gateway: ZiftGateway?

    func addRoutes(to router: Router<WingtelRequestContext>) {
        let secrets = configuration.ziftWebhookSecrets
        let header = configuration.ziftSignatureHeader
        let tolerance = configuration.signatureTolerance
        let now = configuration.now
        router.group("functions/v1/zift-webhook")
            .add(
                middleware: VerifyMiddleware(provider: .zift, maxBodyBytes: configuration.maxBodyBytes, metrics: handling.metrics) {
                    request, body in
                    let bytes = Array(body.readableBytesView)
                    try TimestampedHMAC.verify(
                        payload: bytes, header: request.header(header), secrets: secrets, now: now(), tolerance: tolerance)
                    if request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true {
                        guard let form = FormURLEncoded.parse(bytes) else {
                            throw FunctionsError.badRequest("the body is not form-encoded")
                        }
                        return form
                    }
                    return nil
                }
            )
            .group(context: VerifiedContext.self)
            .post(use: handle)
    }

    @Sendable func handle(_ request: Request, context: VerifiedContext) async throws -> Response {
        let notification = try context.webhook.form.map { try handling.json($0) } ?? handling.text(context.webhook)
        let object = (try? JSONSerialization.jsonObject(with: Data(notification.utf8))) as? [String: Any]
        guard let transactionID = (object?["transactionId"] as? String) ?? (object?["transactionId"] as? Int).map(String.init),
            !transactionID.isEmpty
        else {
            throw FunctionsError.badRequest("a Zift notification names its transactionId")
        }
        guard let gateway else {
            throw FunctionsError.unavailable(
                "the Zift gateway is not configured (ZIFT_USERNAME, ZIFT_PASSWORD, ZIFT_ACCOUNT_ID): notifications cannot be confirmed")
        }
        let confirmation: [String: String]
        do {
            confirmation = try await gateway.find(transactionID: transactionID)
        } catch .unavailable(let reason) {
            context.logger.warning("Zift notification not confirmed", metadata: ["reason": "\(reason)"])
            throw FunctionsError.unavailable(reason)
        } catch .unknownTransaction(let reason) {
            handling.metrics.outcome(.zift, "unconfirmed")
            throw FunctionsError.unprocessable("the Zift gateway does not confirm transaction \(transactionID): \(reason)")
        }
        let confirmationJSON = try handling.json(confirmation.map { ($0.key, $0.value) })
        let answer = try await handling.call(.zift, context: context) {
            try await handling.store.zift(
                notification: notification, confirmation: confirmationJSON, requestID: context.requestID, logger: context.logger)
        }
        return handling.jsonAnswer(.zift, answer, context: context)
    }
}
