import Foundation

/// A claimed payment charge (`public.claim_payment_charges`), as an adapter sees it.
public struct PaymentCharge: Sendable {
    public let organizationID: String
    public let id: String
    public let accountID: String
    public let invoiceID: String?
    /// stripe or zift.
    public let provider: String
    /// The saved method: a Stripe PaymentMethod (pm_…) or a Zift stored-card token.
    public let token: String
    /// The Stripe Customer the PaymentMethod is attached to.
    public let customerID: String?
    public let amountCents: Int
    /// ISO 4217, as the organization bills (USD).
    public let currency: String
    /// The same on every send of this charge: the provider answers a resend with the first result.
    public let idempotencyKey: String
    /// How often it has been sent, this time included (1 on the first send).
    public let sends: Int
    /// What the customer's statement and the provider's dashboard show.
    public let description: String
    /// Set when the provider already has this payment and Wingtel awaits its confirmation (Stripe
    /// `processing`, Zift X02) and no webhook has settled it: the adapter asks the provider for
    /// the payment's state instead of charging.
    public let providerPaymentID: String?

    public init(
        organizationID: String, id: String, accountID: String, invoiceID: String?, provider: String, token: String, customerID: String?,
        amountCents: Int, currency: String, idempotencyKey: String, sends: Int, description: String, providerPaymentID: String? = nil
    ) {
        self.organizationID = organizationID
        self.id = id
        self.accountID = accountID
        self.invoiceID = invoiceID
        self.provider = provider
        self.token = token
        self.customerID = customerID
        self.amountCents = amountCents
        self.currency = currency
        self.idempotencyKey = idempotencyKey
        self.sends = sends
        self.description = description
        self.providerPaymentID = providerPaymentID
    }
}

/// What happened when an adapter sent a charge (`public.finish_payment_charge` outcomes).
public enum ChargeOutcome: Sendable, Equatable {
    /// The money was taken: the provider's payment id (PaymentIntent pi_…, Zift transactionId).
    case succeeded(paymentID: String)
    /// The card or the bank said no; the retry schedule of the billing policy decides what next.
    case declined(paymentID: String?, code: String, message: String?)
    /// The provider is still working on it (Stripe `processing`, Zift X02); its webhook settles it.
    case pending(paymentID: String)
    /// Not charged, or not known to be: send again later with the same idempotency key.
    case retry(reason: String, after: Duration?)

    var label: String {
        switch self {
        case .succeeded: "succeeded"
        case .declined: "declined"
        case .pending: "pending"
        case .retry: "retry"
        }
    }
}

/// One per payment provider. Adapters never throw: every failure is an outcome.
public protocol PaymentAdapter: Sendable {
    /// The `payment_methods.provider` value this adapter serves.
    var provider: String { get }
    func charge(_ charge: PaymentCharge) async -> ChargeOutcome
}
