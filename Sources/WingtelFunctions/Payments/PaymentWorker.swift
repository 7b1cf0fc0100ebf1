import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Sends queued payment charges (`public.payment_charges`: autopay and staff charges of saved
/// methods) to Stripe or Zift and writes each outcome back with `finish_payment_charge`, which
/// records the payment (or the declined attempt) in the same transaction. Woken by
/// `NOTIFY wingtel_payment_charges`, polling as a fallback. Any number of workers may run side by
/// side (SKIP LOCKED); a charge whose worker died is claimed again when its lease runs out and is
/// sent with the same idempotency key, so the customer is charged once.
public struct PaymentWorker: Service {
    public static let channel = "wingtel_payment_charges"

    let client: PostgresClient
    let adapters: [String: any PaymentAdapter]
    let name: String
    let batchSize: Int
    let lease: Duration
    let pollInterval: Duration
    let metrics: FunctionsMetrics?
    let logger: Logger

    public init(
        client: PostgresClient, adapters: [any PaymentAdapter], name: String = "payments-\(UUID().uuidString.prefix(8))",
        batchSize: Int = 16,
        lease: Duration = .seconds(120), pollInterval: Duration = .seconds(5), metrics: FunctionsMetrics? = nil, logger: Logger
    ) {
        self.client = client
        self.adapters = Dictionary(adapters.map { ($0.provider, $0) }, uniquingKeysWith: { first, _ in first })
        self.name = name
        self.batchSize = batchSize
        self.lease = lease
        self.pollInterval = pollInterval
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "worker"] = "\(name)"
        self.logger = logger
    }

    public func run() async throws {
        logger.info("payment worker started", metadata: ["providers": "\(adapters.keys.sorted().joined(separator: ","))"])
        await drainQueue(client: client, channel: Self.channel, pollInterval: pollInterval, logger: logger) { await drainOnce() }
        logger.info("payment worker stopped")
    }

    /// Claims one batch of charges of the configured providers and sends it; returns how many it handled.
    @discardableResult
    public func drainOnce() async -> Int {
        let charges: [PaymentCharge]
        do {
            charges = try await claim()
        } catch {
            logger.warning("claiming payment charges failed", metadata: ["error": "\(String(reflecting: error))"])
            return 0
        }
        await withTaskGroup(of: Void.self) { group in
            for charge in charges { group.addTask { await process(charge) } }
        }
        return charges.count
    }

    func claim() async throws -> [PaymentCharge] {
        let providers = adapters.keys.sorted()
        guard !providers.isEmpty else { return [] }
        let seconds = "\(Int(lease.components.seconds)) seconds"
        let rows = try await client.query(
            """
            select c.organization_id::text, c.id::text, c.account_id::text, c.invoice_id::text, c.provider, c.token, c.provider_customer_id,
                   c.amount_cents, c.currency::text, c.idempotency_key, c.sends, c.description, c.provider_payment_id
            from public.claim_payment_charges(\(name), \(batchSize)::integer, \(seconds)::interval, \(providers)::text[]) c
            """, logger: logger)
        var charges: [PaymentCharge] = []
        for try await (org, id, account, invoice, provider, token, customer, amount, currency, key, sends, description, paymentID)
            in rows.decode((String, String, String, String?, String, String, String?, Int, String, String, Int, String, String?).self)
        {
            charges.append(
                PaymentCharge(
                    organizationID: org, id: id, accountID: account, invoiceID: invoice, provider: provider, token: token,
                    customerID: customer, amountCents: amount, currency: currency, idempotencyKey: key, sends: sends,
                    description: description, providerPaymentID: paymentID))
        }
        return charges
    }

    func process(_ charge: PaymentCharge) async {
        guard let adapter = adapters[charge.provider] else { return }
        var logger = logger
        logger[metadataKey: "charge"] = "\(charge.id)"
        let outcome = await adapter.charge(charge)
        // A worker stopped hard mid-call writes nothing: the lease runs out and the charge is sent
        // again with the same key (the provider answers with the first result).
        if Task.isCancelled { return }
        var paymentID: String?
        var code: String?
        var message: String?
        var retryAfter: String?
        switch outcome {
        case .succeeded(let id), .pending(let id): paymentID = id
        case .declined(let id, let declineCode, let text): (paymentID, code, message) = (id, declineCode, text)
        case .retry(let reason, let after):
            message = reason
            retryAfter = after?.postgresInterval
        }
        do {
            let rows = try await client.query(
                """
                select status, sends, max_sends from public.finish_payment_charge(\(charge.organizationID)::uuid, \(charge.id)::uuid, \(outcome.label),
                       \(paymentID), \(code), \(message), \(retryAfter)::interval)
                """, logger: logger)
            for try await (status, sends, maxSends) in rows.decode((String, Int, Int).self) {
                switch status {
                case "dead": logger.error("charge dead after \(sends) sends", metadata: ["error": "\(message ?? "")"])
                case "pending":
                    logger.notice("charge will be sent again", metadata: ["send": "\(sends)/\(maxSends)", "reason": "\(message ?? "")"])
                default: logger.info("charge \(status)", metadata: ["provider": "\(charge.provider)", "payment": "\(paymentID ?? "")"])
                }
            }
            metrics?.payment(charge.provider, outcome)
        } catch {
            // The lease runs out and the charge is sent again (same idempotency key).
            logger.error("writing the charge's outcome back failed", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}
