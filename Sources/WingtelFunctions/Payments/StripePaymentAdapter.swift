import Foundation
import WingtelVerification

/// Stripe's API for charging a saved card off-session.
public struct StripeAPISettings: Sendable {
    public var baseURL: String
    /// The secret key (sk_live_… / sk_test_…, or a restricted key with PaymentIntents write).
    public var secretKey: String

    public init(baseURL: String = "https://api.stripe.com", secretKey: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.secretKey = secretKey
    }
}

/// Charges a saved PaymentMethod: `POST /v1/payment_intents` with `confirm=true` and
/// `off_session=true`, the charge's key as `Idempotency-Key` (Stripe answers a resend with the
/// first result, so a timeout never charges twice), and `metadata[wingtel_*]` so the
/// `payment_intent.*` webhooks find the charge and the account.
///
/// Answers: 200 with the PaymentIntent — `succeeded`, `processing` (the webhook settles it), or
/// `requires_action` / `requires_payment_method` (the bank wants the customer: declined as
/// `authentication_required`); 402 `card_error` — declined with its `decline_code` or `code`;
/// other 4xx but 409 and 429 — declined with Stripe's error code (a removed card: `resource_missing`);
/// 401/403 (the key), 409 (the key's first request still running), 429 and 5xx, and no answer — retry.
/// A charge Stripe was still processing, and that no webhook settled, is looked up later
/// (`GET /v1/payment_intents/{id}`) and read the same way.
public struct StripePaymentAdapter: PaymentAdapter {
    public let provider = "stripe"
    let settings: StripeAPISettings
    let transport: any HTTPTransport

    public init(settings: StripeAPISettings, transport: any HTTPTransport) {
        self.settings = settings
        self.transport = transport
    }

    /// The form Stripe receives (exposed for tests of the wire format).
    public static func form(_ charge: PaymentCharge) -> [(String, String)] {
        var form = [
            ("amount", String(charge.amountCents)), ("currency", charge.currency.lowercased()), ("payment_method", charge.token),
            ("confirm", "true"), ("off_session", "true"), ("description", charge.description),
            ("metadata[wingtel_organization_id]", charge.organizationID), ("metadata[wingtel_account_id]", charge.accountID),
            ("metadata[wingtel_charge_id]", charge.id),
        ]
        if let customer = charge.customerID { form.append(("customer", customer)) }
        if let invoice = charge.invoiceID { form.append(("metadata[wingtel_invoice_id]", invoice)) }
        return form
    }

    public func charge(_ charge: PaymentCharge) async -> ChargeOutcome {
        if let intent = charge.providerPaymentID {
            // Stripe still had it processing and no webhook has settled it: ask for its state.
            let request = OutboundRequest(
                method: "GET", url: "\(settings.baseURL)/v1/payment_intents/\(intent)",
                headers: [("Authorization", "Bearer \(settings.secretKey)")])
            do {
                return Self.outcome(try await transport.send(request))
            } catch {
                return .retry(reason: "Stripe did not answer: \(error.localizedDescription)", after: nil)
            }
        }
        let request = OutboundRequest(
            method: "POST", url: "\(settings.baseURL)/v1/payment_intents",
            headers: [
                ("Authorization", "Bearer \(settings.secretKey)"), ("Idempotency-Key", charge.idempotencyKey),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body: Array(FormURLEncoded.encode(Self.form(charge)).utf8))
        let reply: OutboundReply
        do {
            reply = try await transport.send(request)
        } catch {
            // Stripe may or may not have charged: the resend with the same key tells.
            return .retry(reason: "Stripe did not answer: \(error.localizedDescription)", after: nil)
        }
        return Self.outcome(reply)
    }

    static func outcome(_ reply: OutboundReply) -> ChargeOutcome {
        let json = reply.json
        switch reply.status {
        case 200...299:
            guard let intent = json, let id = intent["id"] as? String, let status = intent["status"] as? String else {
                return .retry(reason: "Stripe answered \(reply.status) without a PaymentIntent", after: .seconds(5))
            }
            switch status {
            case "succeeded": return .succeeded(paymentID: id)
            case "processing": return .pending(paymentID: id)
            case "requires_action", "requires_payment_method", "requires_confirmation":
                let error = intent["last_payment_error"] as? [String: Any]
                return .declined(
                    paymentID: id, code: (error?["decline_code"] ?? error?["code"]) as? String ?? "authentication_required",
                    message: error?["message"] as? String ?? "The bank asks the customer to authenticate this payment.")
            default:
                return .declined(paymentID: id, code: "payment_intent_\(status)", message: nil)
            }
        case 401, 403, 409, 429, 500...599:
            let error = json?["error"] as? [String: Any]
            let message = error?["message"] as? String ?? String(reply.text.prefix(200))
            return .retry(reason: "Stripe answered \(reply.status): \(message)", after: reply.retryAfter)
        default:
            guard let error = json?["error"] as? [String: Any] else {
                return .retry(reason: "Stripe answered \(reply.status) without an error object", after: nil)
            }
            let intent = error["payment_intent"] as? [String: Any]
            let code = (error["decline_code"] ?? error["code"] ?? error["type"]) as? String ?? "http_\(reply.status)"
            return .declined(paymentID: intent?["id"] as? String, code: code, message: error["message"] as? String)
        }
    }
}
