import Foundation
import WingtelVerification

/// T-Mobile through a wholesale aggregator: OAuth password grant (a 24 h token, renewed on
/// expiry or a 401), `POST /api/mobility-activation/activate`, and
/// `PATCH /api/mobility-subscriber/ctn` for state (`Suspend`, `Unsuspend`, `Cancel`), plan,
/// SIM and device changes. An answer with a `requestId` and status `PENDING` is completed later
/// by the aggregator's callback; any other 2xx is done.
public struct AggregatorSettings: Sendable {
    public var baseURL: String
    public var username: String
    public var password: String
    public var clientID: String
    public var clientSecret: String

    public init(baseURL: String, username: String, password: String, clientID: String, clientSecret: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.username = username
        self.password = password
        self.clientID = clientID
        self.clientSecret = clientSecret
    }
}

public final class AggregatorAdapter: CarrierAdapter {
    public let name = "tmobile_aggregator"
    let settings: AggregatorSettings
    let transport: any HTTPTransport
    let token: AggregatorToken

    public init(settings: AggregatorSettings, transport: any HTTPTransport) {
        self.settings = settings
        self.transport = transport
        self.token = AggregatorToken(settings: settings, transport: transport)
    }

    public func send(_ command: CarrierCommand) async -> CarrierOutcome {
        guard var request = action(for: command) else {
            return .refused(error: "the aggregator has no action for \(command.kind) with this line's identifiers")
        }
        request.headers.append(("Idempotency-Key", command.idempotencyKey))
        for attempt in 0..<2 {
            let bearer: String
            do { bearer = try await token.current() } catch {
                return .retry(error: "aggregator login failed: \(error)", after: .seconds(60))
            }
            var signed = request
            signed.headers.append(("Authorization", "Bearer \(bearer)"))
            let reply: OutboundReply
            do { reply = try await transport.send(signed) } catch { return .unreachable(error, carrier: "the aggregator") }
            if reply.status == 401 && attempt == 0 {
                await token.invalidate()
                continue
            }
            guard (200...299).contains(reply.status) else { return .failure(reply, carrier: "the aggregator") }
            let json = reply.json ?? [:]
            if let requestID = json["requestId"] as? String, (json["status"] as? String)?.uppercased() == "PENDING" {
                return .accepted(requestID: requestID)
            }
            return .completed(result: json.isEmpty ? "{}" : reply.text)
        }
        return .retry(error: "the aggregator kept answering 401 after a fresh token", after: nil)
    }

    func action(for command: CarrierCommand) -> OutboundRequest? {
        let ctn = command.field("mdn").map { String($0.filter(\.isNumber).suffix(10)) }
        let patch = settings.baseURL + "/api/mobility-subscriber/ctn"
        switch command.kind {
        case "activate", "port_in":
            guard let iccid = command.field("iccid") else { return nil }
            var body: [String: Any] = ["device": ["iccid": iccid, "imei": command.field("imei") ?? ""]]
            if let plan = command.field("rate_plan") { body["plan"] = plan }
            if command.kind == "port_in", let ctn { body["subscriber"] = ["ctn": ctn, "portIn": true] }
            return .json("POST", settings.baseURL + "/api/mobility-activation/activate", body)
        case "suspend", "restore", "deactivate", "port_out":
            guard let ctn else { return nil }
            let state = ["suspend": "Suspend", "restore": "Unsuspend", "deactivate": "Cancel", "port_out": "Cancel"][command.kind]!
            var body: [String: Any] = ["ctn": ctn, "subscriberState": state]
            body["reasonCode"] = command.kind == "suspend" ? (command.field("reason") == "non_payment" ? "NP" : "CR") : "CR"
            return .json("PATCH", patch, body)
        case "change_plan":
            guard let ctn, let plan = command.field("rate_plan") else { return nil }
            return .json("PATCH", patch, ["ctn": ctn, "plan": plan])
        case "swap_sim":
            guard let ctn, let iccid = command.field("new_iccid") else { return nil }
            return .json("PATCH", patch, ["ctn": ctn, "iccid": iccid])
        case "change_device":
            guard let ctn, let imei = command.field("new_imei") else { return nil }
            return .json("PATCH", patch, ["ctn": ctn, "imei": imei])
        default:
            return nil
        }
    }
}

actor AggregatorToken {
    let settings: AggregatorSettings
    let transport: any HTTPTransport
    private var token: (value: String, expires: ContinuousClock.Instant)?

    init(settings: AggregatorSettings, transport: any HTTPTransport) {
        self.settings = settings
        self.transport = transport
    }

    func invalidate() { token = nil }

    func current() async throws -> String {
        if let token, token.expires > ContinuousClock.now + .seconds(300) { return token.value }
        let form = [
            ("grant_type", "password"), ("username", settings.username), ("password", settings.password), ("client_id", settings.clientID),
            ("client_secret", settings.clientSecret),
        ]
        let body = FormURLEncoded.encode(form)
        let reply = try await transport.send(
            OutboundRequest(
                method: "POST", url: settings.baseURL + "/oauth/token", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: Array(body.utf8)))
        guard reply.status == 200, let value = reply.json?["access_token"] as? String else {
            throw FunctionsError.unavailable("the aggregator's token endpoint answered \(reply.status)")
        }
        token = (value, ContinuousClock.now + .seconds((reply.json?["expires_in"] as? Int) ?? 86_400))
        return value
    }
}
