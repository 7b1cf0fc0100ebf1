import Foundation

/// A claimed carrier command, as an adapter sees it.
public struct CarrierCommand: Sendable {
    public let organizationID: String
    public let id: String
    /// activate, suspend, restore, deactivate, change_plan, swap_sim, change_device, port_in, port_out
    public let kind: String
    public let adapter: String
    /// `{mdn, iccid, imei, rate_plan, …}` (private.carrier_payload) as JSON text.
    public let payload: String
    /// The same for every attempt of this command: the carrier must not act twice on it.
    public let idempotencyKey: String
    public let attempts: Int
    public let maxAttempts: Int

    public init(
        organizationID: String, id: String, kind: String, adapter: String, payload: String, idempotencyKey: String, attempts: Int,
        maxAttempts: Int
    ) {
        self.organizationID = organizationID
        self.id = id
        self.kind = kind
        self.adapter = adapter
        self.payload = payload
        self.idempotencyKey = idempotencyKey
        self.attempts = attempts
        self.maxAttempts = maxAttempts
    }

    public var fields: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any] ?? [:] }
    public func field(_ name: String) -> String? { fields[name] as? String }
}

/// What happened when an adapter sent a command.
public enum CarrierOutcome: Sendable, Equatable {
    /// The carrier accepted it and will answer by callback with this request id (ThingSpace).
    case accepted(requestID: String)
    /// The carrier did it; `result` (JSON) is kept on the command.
    case completed(result: String)
    /// The carrier refused it for good (a 4xx with a reason): the line is rolled back.
    case refused(error: String)
    /// A transient failure (network, 5xx, 429, a login back-off): try again later.
    case retry(error: String, after: Duration?)
}

/// One per carrier API. Adapters never throw: every failure is an outcome.
public protocol CarrierAdapter: Sendable {
    /// The `carrier_adapter` enum value this adapter serves.
    var name: String { get }
    func send(_ command: CarrierCommand) async -> CarrierOutcome
}

extension CarrierOutcome {
    /// The usual reading of an HTTP answer: 2xx is the caller's to read; 408, 425, 429 and 5xx are
    /// transient (honouring Retry-After); other 4xx are refusals.
    static func failure(_ reply: OutboundReply, carrier: String) -> CarrierOutcome {
        let detail = String(reply.text.prefix(300))
        switch reply.status {
        case 408, 425, 429, 500...599:
            return .retry(error: "\(carrier) answered \(reply.status): \(detail)", after: reply.retryAfter)
        default:
            return .refused(error: "\(carrier) refused it (\(reply.status)): \(detail)")
        }
    }

    static func unreachable(_ error: any Error, carrier: String) -> CarrierOutcome {
        .retry(error: "\(carrier) unreachable: \(error.localizedDescription)", after: nil)
    }
}
