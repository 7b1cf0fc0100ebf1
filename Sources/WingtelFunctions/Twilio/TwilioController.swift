import Hummingbird
import WingtelVerification

/// `POST /functions/v1/twilio-sms` (inbound messages, answered with TwiML) and
/// `POST /functions/v1/twilio-status` (delivery status callbacks). `X-Twilio-Signature` is
/// checked against the URL Twilio called — `WINGTEL_PUBLIC_URL` + path and query — and every
/// form parameter; JSON bodies through `bodySHA256`.
struct TwilioController {
    let configuration: FunctionsConfiguration
    let handling: Handling

    func addRoutes(to router: Router<WingtelRequestContext>) {
        for (path, handler) in [("functions/v1/twilio-sms", message), ("functions/v1/twilio-status", status)] {
            router.group(RouterPath(path))
                .add(middleware: verifier())
                .group(context: VerifiedContext.self)
                .post(use: handler)
        }
    }

    func verifier() -> VerifyMiddleware {
        let tokens = configuration.twilioAuthTokens
        let publicURL = configuration.publicURL
        return VerifyMiddleware(provider: .twilio, maxBodyBytes: configuration.maxBodyBytes, metrics: handling.metrics) { request, body in
            let base = publicURL ?? "http://" + (request.head.authority ?? "localhost")
            let url = base + request.uri.description
            let bytes = Array(body.readableBytesView)
            if request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true {
                try TwilioSignature.verifyJSON(url: url, body: bytes, header: request.header("X-Twilio-Signature"), authTokens: tokens)
                return nil
            }
            guard let form = FormURLEncoded.parse(bytes) else {
                throw FunctionsError.badRequest("the body is not application/x-www-form-urlencoded")
            }
            try TwilioSignature.verify(url: url, parameters: form, header: request.header("X-Twilio-Signature"), authTokens: tokens)
            return form
        }
    }

    @Sendable func message(_ request: Request, context: VerifiedContext) async throws -> Response {
        let parameters = try parameters(context)
        let twiml = try await handling.call(.twilio, context: context) {
            try await handling.store.twilioMessage(parameters: parameters, requestID: context.requestID, logger: context.logger)
        }
        handling.metrics.outcome(.twilio, twiml.hasSuffix("<Response/>") ? "no_reply" : "replied")
        return Handling.response(twiml, contentType: "text/xml; charset=utf-8", requestID: context.requestID)
    }

    @Sendable func status(_ request: Request, context: VerifiedContext) async throws -> Response {
        let parameters = try parameters(context)
        let answer = try await handling.call(.twilio, context: context) {
            try await handling.store.twilioStatus(parameters: parameters, requestID: context.requestID, logger: context.logger)
        }
        return handling.jsonAnswer(.twilio, answer, context: context)
    }

    func parameters(_ context: VerifiedContext) throws -> String {
        if let form = context.webhook.form { return try handling.json(form) }
        return try handling.text(context.webhook)
    }
}
