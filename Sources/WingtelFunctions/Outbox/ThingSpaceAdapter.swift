import Foundation

/// Verizon ThingSpace Connectivity Management. Two tokens: an OAuth client-credentials token
/// (about an hour) and an M2M session token (expires after 20 idle minutes). Five failed logins
/// lock the account, so a failed login is never retried in a loop: the adapter waits out a
/// growing back-off (one minute, doubling, at most 30) and every command meanwhile is retried
/// later without touching the login endpoint. Concurrent commands share one login.
/// Provisioning answers `{requestId}` at once; the result arrives on the CarrierService callback.
public struct ThingSpaceSettings: Sendable {
    public var baseURL: String
    public var clientID: String
    public var clientSecret: String
    public var username: String
    public var password: String
    /// The billing account name ThingSpace provisions under (`accountName`).
    public var accountName: String
    public var loginBackoff: Duration = .seconds(60)

    public init(baseURL: String, clientID: String, clientSecret: String, username: String, password: String, accountName: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.username = username
        self.password = password
        self.accountName = accountName
    }
}

public final class ThingSpaceAdapter: CarrierAdapter {
    public let name = "thingspace"
    let settings: ThingSpaceSettings
    let transport: any HTTPTransport
    let tokens: ThingSpaceTokens

    public init(settings: ThingSpaceSettings, transport: any HTTPTransport) {
        self.settings = settings
        self.transport = transport
        self.tokens = ThingSpaceTokens(settings: settings, transport: transport)
    }

    public func send(_ command: CarrierCommand) async -> CarrierOutcome {
        guard let request = action(for: command) else {
            return .refused(error: "ThingSpace has no action for \(command.kind) with this line's identifiers")
        }
        for attempt in 0..<2 {
            let credentials: ThingSpaceTokens.Credentials
            do {
                credentials = try await tokens.current()
            } catch let blocked as ThingSpaceTokens.LoginBlocked {
                return .retry(error: blocked.reason, after: blocked.retryAfter)
            } catch {
                return .unreachable(error, carrier: "ThingSpace")
            }
            var signed = request
            signed.headers += [
                ("Authorization", "Bearer \(credentials.oauth)"), ("VZ-M2M-Token", credentials.session),
                ("Idempotency-Key", command.idempotencyKey),
            ]
            let reply: OutboundReply
            do { reply = try await transport.send(signed) } catch { return .unreachable(error, carrier: "ThingSpace") }
            switch reply.status {
            case 200...299:
                guard let requestID = reply.json?["requestId"] as? String, !requestID.isEmpty else {
                    return .retry(error: "ThingSpace answered \(reply.status) without a requestId: \(reply.text.prefix(200))", after: nil)
                }
                return .accepted(requestID: requestID)
            case 401 where attempt == 0:
                // The session expired (idle) or the token did: log in again once.
                await tokens.invalidate()
            default:
                return .failure(reply, carrier: "ThingSpace")
            }
        }
        return .retry(error: "ThingSpace kept answering 401 after a fresh login", after: nil)
    }

    func action(for command: CarrierCommand) -> OutboundRequest? {
        let base = settings.baseURL + "/api/m2m/v1/devices/actions/"
        guard let iccid = command.field("iccid") else { return nil }
        var ids: [[String: String]] = [["id": iccid, "kind": "iccid"]]
        if let imei = command.field("imei") { ids.append(["id": imei, "kind": "imei"]) }
        let devices: [[String: Any]] = [["deviceIds": ids]]
        var body: [String: Any] = ["accountName": settings.accountName, "devices": devices]
        switch command.kind {
        case "activate", "port_in":
            if let plan = command.field("rate_plan") { body["servicePlan"] = plan }
            if command.kind == "port_in", let mdn = command.field("mdn") { body["mdn"] = String(mdn.filter(\.isNumber).suffix(10)) }
            return .json("POST", base + "activate", body)
        case "suspend": return .json("POST", base + "suspend", body)
        case "restore": return .json("POST", base + "restore", body)
        case "deactivate", "port_out":
            body["etfWaiver"] = true
            body["reasonCode"] = "FF"
            return .json("POST", base + "deactivate", body)
        case "change_plan":
            guard let plan = command.field("rate_plan") else { return nil }
            body["servicePlan"] = plan
            return .json("PUT", base + "plan", body)
        case "swap_sim":
            guard let new = command.field("new_iccid") else { return nil }
            return .json(
                "PUT", base + "deviceid",
                [
                    "accountName": settings.accountName, "deviceIds": [["id": iccid, "kind": "iccid"]], "change4GOption": "ChangeICCID",
                    "deviceIdsTo": [["id": new, "kind": "iccid"]],
                ])
        case "change_device":
            guard let new = command.field("new_imei") else { return nil }
            return .json(
                "PUT", base + "deviceid",
                [
                    "accountName": settings.accountName, "deviceIds": [["id": iccid, "kind": "iccid"]], "change4GOption": "ChangeIMEI",
                    "deviceIdsTo": [["id": new, "kind": "imei"]],
                ])
        default:
            return nil
        }
    }
}

/// The two ThingSpace tokens, renewed on expiry, shared by all commands.
actor ThingSpaceTokens {
    struct Credentials: Sendable {
        let oauth: String
        let session: String
    }

    struct LoginBlocked: Error {
        let reason: String
        let retryAfter: Duration
    }

    let settings: ThingSpaceSettings
    let transport: any HTTPTransport
    private var oauth: (token: String, expires: ContinuousClock.Instant)?
    private var session: (token: String, lastUsed: ContinuousClock.Instant)?
    private var blockedUntil: ContinuousClock.Instant?
    private var lastFailure = ""
    private var failedLogins = 0
    private var login: Task<Credentials, any Error>?
    /// Logins made (for metrics and tests).
    private(set) var loginCount = 0

    init(settings: ThingSpaceSettings, transport: any HTTPTransport) {
        self.settings = settings
        self.transport = transport
    }

    func current() async throws -> Credentials {
        let now = ContinuousClock.now
        if let oauth, let session, oauth.expires > now + .seconds(60), session.lastUsed + .seconds(18 * 60) > now {
            self.session = (session.token, now)
            return Credentials(oauth: oauth.token, session: session.token)
        }
        if let blockedUntil, blockedUntil > now {
            throw LoginBlocked(reason: "ThingSpace login is backing off after a failure (\(lastFailure))", retryAfter: blockedUntil - now)
        }
        if let login { return try await login.value }
        let task = Task { try await self.performLogin() }
        login = task
        defer { login = nil }
        return try await task.value
    }

    func invalidate() {
        oauth = nil
        session = nil
    }

    private func performLogin() async throws -> Credentials {
        loginCount += 1
        do {
            let basic = Data("\(settings.clientID):\(settings.clientSecret)".utf8).base64EncodedString()
            let tokenReply = try await transport.send(
                OutboundRequest(
                    method: "POST", url: settings.baseURL + "/api/ts/v1/oauth2/token",
                    headers: [("Authorization", "Basic \(basic)"), ("Content-Type", "application/x-www-form-urlencoded")],
                    body: Array("grant_type=client_credentials".utf8)))
            guard tokenReply.status == 200, let token = tokenReply.json?["access_token"] as? String else {
                throw failed("OAuth token request answered \(tokenReply.status)")
            }
            let lifetime = (tokenReply.json?["expires_in"] as? Int) ?? 3600
            let loginReply = try await transport.send(
                .json(
                    "POST", settings.baseURL + "/api/m2m/v1/session/login", ["username": settings.username, "password": settings.password],
                    headers: [("Authorization", "Bearer \(token)")]))
            guard loginReply.status == 200, let sessionToken = loginReply.json?["sessionToken"] as? String else {
                throw failed("session login answered \(loginReply.status)")
            }
            let now = ContinuousClock.now
            oauth = (token, now + .seconds(lifetime))
            session = (sessionToken, now)
            failedLogins = 0
            blockedUntil = nil
            return Credentials(oauth: token, session: sessionToken)
        } catch let blocked as LoginBlocked {
            throw blocked
        } catch {
            throw failed("login unreachable: \(error.localizedDescription)")
        }
    }

    /// Records a failed login and starts (or lengthens) the back-off.
    private func failed(_ reason: String) -> LoginBlocked {
        failedLogins += 1
        let factor = 1 << min(failedLogins - 1, 5)
        let wait = min(settings.loginBackoff * factor, .seconds(30 * 60))
        blockedUntil = ContinuousClock.now + wait
        lastFailure = reason
        return LoginBlocked(reason: "ThingSpace \(reason); next login in \(wait)", retryAfter: wait)
    }
}
