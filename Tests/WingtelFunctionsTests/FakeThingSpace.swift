import Foundation
import HTTPTypes
import Hummingbird
import Logging
import WingtelTestSupport

/// A ThingSpace on loopback speaking the documented contract — OAuth token, session login,
/// provisioning actions answering `{requestId}` — that can be told to fail: 5xx with
/// Retry-After, refuse logins, expire sessions, hang. It honours `Idempotency-Key`: the same key
/// gets the same requestId and acts once.
final class FakeThingSpace: Sendable {
    actor State {
        var logins = 0
        var tokenRequests = 0
        var validSessions: Set<String> = []
        var failNextActions = 0
        var failureStatus = 503
        var refuseLogins = false
        var hangNextActions = 0
        var garbleNextActions = 0
        /// Idempotency key → requestId; each key is one effect at the carrier.
        var effects: [String: String] = [:]
        var actionCalls = 0
        var actions: [(path: String, body: String)] = []

        func expireSessions() { validSessions.removeAll() }
        func failActions(_ count: Int, status: Int = 503) {
            failNextActions = count
            failureStatus = status
        }
        func setRefuseLogins(_ value: Bool) { refuseLogins = value }
        func hangActions(_ count: Int) { hangNextActions = count }
        func garbleActions(_ count: Int) { garbleNextActions = count }

        func token() -> (Int, String) {
            tokenRequests += 1
            return (200, #"{"access_token":"oauth-\#(tokenRequests)","token_type":"Bearer","expires_in":3600}"#)
        }

        func login() -> (Int, String) {
            logins += 1
            if refuseLogins { return (401, #"{"errorCode":"UnifiedWebService.UNAUTHORIZED","errorMessage":"invalid credentials"}"#) }
            let token = "session-\(logins)"
            validSessions.insert(token)
            return (200, #"{"sessionToken":"\#(token)","expiresIn":1200}"#)
        }

        enum ActionAnswer {
            case reply(Int, String, retryAfter: String?)
            case hang
        }

        func action(path: String, session: String?, key: String?, body: String) -> ActionAnswer {
            actionCalls += 1
            guard let session, validSessions.contains(session) else {
                return .reply(401, #"{"errorMessage":"session expired"}"#, retryAfter: nil)
            }
            if hangNextActions > 0 {
                hangNextActions -= 1
                return .hang
            }
            if garbleNextActions > 0 {
                garbleNextActions -= 1
                return .reply(200, "<html>Service Unavailable</html>", retryAfter: nil)
            }
            if failNextActions > 0 {
                failNextActions -= 1
                return .reply(failureStatus, #"{"errorMessage":"try again"}"#, retryAfter: "0")
            }
            actions.append((path, body))
            let key = key ?? UUID().uuidString
            let requestID = effects[key] ?? "vz-\(effects.count + 1)-\(UUID().uuidString.prefix(8))"
            effects[key] = requestID
            return .reply(200, #"{"requestId":"\#(requestID)"}"#, retryAfter: nil)
        }
    }

    let state: State
    let server: LoopbackServer
    var baseURL: String { server.baseURL }

    private init(server: LoopbackServer, state: State) {
        self.server = server
        self.state = state
    }

    static func start() async throws -> FakeThingSpace {
        let state = State()
        let router = Router()
        router.post("api/ts/v1/oauth2/token") { _, _ -> Response in
            let (status, body) = await state.token()
            return json(status, body)
        }
        router.post("api/m2m/v1/session/login") { _, _ -> Response in
            let (status, body) = await state.login()
            return json(status, body)
        }
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            var request = request
            let body = String(buffer: try await request.collectBody(upTo: 1 << 20))
            let session = request.headers[HTTPField.Name("VZ-M2M-Token")!]
            let key = request.headers[HTTPField.Name("Idempotency-Key")!]
            switch await state.action(path: request.uri.path, session: session, key: key, body: body) {
            case .reply(let status, let text, let retryAfter):
                var response = json(status, text)
                if let retryAfter { response.headers[.retryAfter] = retryAfter }
                return response
            case .hang:
                try await Task.sleep(for: .seconds(3600))
                return json(504, "{}")
            }
        }
        router.post("api/m2m/v1/devices/actions/{action}", use: handler)
        router.put("api/m2m/v1/devices/actions/{action}", use: handler)

        return FakeThingSpace(server: try await LoopbackServer.start(router: router, label: "fake.thingspace"), state: state)
    }

    /// Stops without waiting: some requests hang on purpose.
    func stop() async {
        server.abandon()
    }

    static func json(_ status: Int, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
