import Foundation
import WingtelVerification

/// The Zift gateway: form-encoded POSTs with `requestType` and the merchant credentials, answered
/// form-encoded (`responseCode` A… approved, X02 pending, anything else declined). The webhook
/// uses `find` to confirm a notification before anything is applied.
public struct ZiftSettings: Sendable {
    public var baseURL: String
    public var userName: String
    public var password: String
    public var accountID: String

    public init(baseURL: String, userName: String, password: String, accountID: String) {
        self.baseURL = baseURL
        self.userName = userName
        self.password = password
        self.accountID = accountID
    }
}

public struct ZiftGateway: Sendable {
    public enum Failure: Error, Equatable {
        /// The gateway could not be asked (network, 5xx): try again later.
        case unavailable(String)
        /// The gateway answered that it has no such transaction.
        case unknownTransaction(String)
    }

    let settings: ZiftSettings
    let transport: any HTTPTransport

    public init(settings: ZiftSettings, transport: any HTTPTransport) {
        self.settings = settings
        self.transport = transport
    }

    /// The transaction as the gateway knows it.
    public func find(transactionID: String) async throws(Failure) -> [String: String] {
        let fields = try await post([("requestType", "find"), ("transactionId", transactionID)])
        guard fields["transactionId"] == transactionID else {
            throw .unknownTransaction(fields["responseMessage"] ?? "no transaction \(transactionID)")
        }
        return fields
    }

    /// The transaction Wingtel sent with this `transactionCode` (its idempotency key), if the
    /// gateway has one: what a resend after a lost answer asks first, so a sale is never made twice.
    public func find(transactionCode: String) async throws(Failure) -> [String: String]? {
        let fields = try await post([("requestType", "find"), ("transactionCode", transactionCode)])
        guard let id = fields["transactionId"], !id.isEmpty else { return nil }
        return fields
    }

    /// A `sale` of a stored-card token: `amount` in cents, `transactionCode` = Wingtel's key,
    /// `userDefinedField1` = the account, `userDefinedField2` = the charge (what the notification
    /// handler matches on).
    public func sale(
        token: String, amountCents: Int, transactionCode: String, accountID: String, chargeID: String, memo: String
    ) async throws(Failure) -> [String: String] {
        try await post([
            ("requestType", "sale"), ("accountType", "R"), ("token", token), ("amount", String(amountCents)),
            ("transactionCode", transactionCode), ("transactionIndustryType", "RE"), ("userDefinedField1", accountID),
            ("userDefinedField2", chargeID), ("memo", memo),
        ])
    }

    /// One form-encoded request with the merchant's credentials; the answer's fields.
    func post(_ fields: [(String, String)]) async throws(Failure) -> [String: String] {
        let form =
            [("requestType", fields.first { $0.0 == "requestType" }?.1 ?? "")]
            + [("userName", settings.userName), ("password", settings.password), ("accountId", settings.accountID)]
            + fields.filter { $0.0 != "requestType" }
        let reply: OutboundReply
        do {
            reply = try await transport.send(
                OutboundRequest(
                    method: "POST", url: settings.baseURL, headers: [("Content-Type", "application/x-www-form-urlencoded")],
                    body: Array(FormURLEncoded.encode(form).utf8)))
        } catch {
            throw .unavailable("the Zift gateway is unreachable: \(error.localizedDescription)")
        }
        guard (200...299).contains(reply.status) else { throw .unavailable("the Zift gateway answered \(reply.status)") }
        guard let pairs = FormURLEncoded.parse(reply.body), pairs.contains(where: { $0.0 == "responseCode" }) else {
            throw .unavailable("the Zift gateway's answer is not form-encoded with a responseCode")
        }
        return Dictionary(pairs, uniquingKeysWith: { _, last in last })
    }
}
