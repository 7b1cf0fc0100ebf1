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
        let form = [
            ("requestType", "find"), ("userName", settings.userName), ("password", settings.password), ("accountId", settings.accountID),
            ("transactionId", transactionID),
        ]
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
        guard let pairs = FormURLEncoded.parse(reply.body) else { throw .unavailable("the Zift gateway's answer is not form-encoded") }
        let fields = Dictionary(pairs, uniquingKeysWith: { _, last in last })
        guard fields["transactionId"] == transactionID else {
            throw .unknownTransaction(fields["responseMessage"] ?? "no transaction \(transactionID)")
        }
        return fields
    }
}
