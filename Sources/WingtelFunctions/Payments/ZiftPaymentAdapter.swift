import Foundation

/// Charges a Zift stored-card token with a `sale`. Zift publishes no idempotency header, so the
/// charge's key travels as `transactionCode`, and a resend (the answer to an earlier send was
/// lost) first asks the gateway (`find` by transactionCode) whether that sale exists; only when
/// it does not is the sale sent again.
///
/// Answers: responseCode A… approved, X02 pending (the notification settles it), E… a request
/// the gateway refused (credentials, format: not the card's fault) — retried, then dead; any other
/// code declined. No answer, a 5xx or a body that is not form-encoded — retry. A sale left
/// pending that no notification settled is looked up later (`find` by transactionId).
public struct ZiftPaymentAdapter: PaymentAdapter {
    public let provider = "zift"
    let gateway: ZiftGateway

    public init(gateway: ZiftGateway) {
        self.gateway = gateway
    }

    public func charge(_ charge: PaymentCharge) async -> ChargeOutcome {
        do {
            if let transaction = charge.providerPaymentID {
                // Pending at Zift (X02) and no notification settled it: ask for its state.
                return Self.outcome(try await gateway.find(transactionID: transaction))
            }
            if charge.sends > 1, let earlier = try await gateway.find(transactionCode: charge.idempotencyKey) {
                return Self.outcome(earlier)
            }
            let answer = try await gateway.sale(
                token: charge.token, amountCents: charge.amountCents, transactionCode: charge.idempotencyKey, accountID: charge.accountID,
                chargeID: charge.id, memo: charge.description)
            return Self.outcome(answer)
        } catch {
            switch error {
            case .unavailable(let reason), .unknownTransaction(let reason): return .retry(reason: reason, after: nil)
            }
        }
    }

    static func outcome(_ fields: [String: String]) -> ChargeOutcome {
        let code = fields["responseCode"] ?? ""
        let transaction = fields["transactionId"].flatMap { $0.isEmpty ? nil : $0 }
        if code.hasPrefix("A"), let transaction { return .succeeded(paymentID: transaction) }
        if code == "X02", let transaction { return .pending(paymentID: transaction) }
        if code.hasPrefix("E") || code.isEmpty || (code.hasPrefix("A") && transaction == nil) {
            return .retry(reason: "Zift refused the request: \(code) \(fields["responseMessage"] ?? "")", after: .seconds(60))
        }
        return .declined(paymentID: transaction, code: code, message: fields["responseMessage"])
    }
}
