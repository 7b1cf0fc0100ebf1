import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WingtelVerification

/// The providers whose requests the functions verify.
public enum Provider: String, Sendable, CaseIterable {
    case stripe, zift, twilio, verizon, att, tmobile
}

/// A request whose origin was proven by its provider's scheme, with the raw body that was checked.
public struct VerifiedWebhook: Sendable {
    public let provider: Provider
    public let body: ByteBuffer
    /// The form parameters when the body was `application/x-www-form-urlencoded`.
    public let form: [(String, String)]?
}

/// The context of every request. `webhook` is set only by a verification middleware.
public struct WingtelRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var webhook: VerifiedWebhook?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }
}

/// The context of a provider's handlers. It can only be made from a context whose request passed
/// verification, so a handler that forgot to verify does not compile into a verified route.
public struct VerifiedContext: ChildRequestContext {
    public typealias Source = Never
    public var coreContext: CoreRequestContextStorage
    public let webhook: VerifiedWebhook

    public init(context: WingtelRequestContext) throws {
        guard let webhook = context.webhook else { throw FunctionsError.unauthorized(.missing("verification")) }
        self.coreContext = context.coreContext
        self.webhook = webhook
    }

    /// The id of this request in logs, in the answer and in the audit trail.
    public var requestID: String { id }
}

/// Reads the body (up to the configured size), checks it with the provider's scheme, and passes
/// it on in the context. Nothing reaches the database before this succeeds.
struct VerifyMiddleware: RouterMiddleware {
    typealias Context = WingtelRequestContext
    /// Returns the form parameters when the scheme parsed them.
    typealias Check = @Sendable (_ request: Request, _ body: ByteBuffer) throws -> [(String, String)]?

    let provider: Provider
    let maxBodyBytes: Int
    let metrics: FunctionsMetrics
    let check: Check

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: maxBodyBytes)
        let form: [(String, String)]?
        do {
            form = try check(request, body)
        } catch let failure as VerificationFailure {
            context.logger.notice("rejected \(provider.rawValue) request", metadata: ["reason": "\(failure)"])
            metrics.rejected(provider, reason: failure)
            throw FunctionsError.unauthorized(failure)
        }
        var context = context
        context.webhook = VerifiedWebhook(provider: provider, body: body, form: form)
        return try await next(request, context)
    }
}

extension Request {
    func header(_ name: String) -> String? {
        HTTPField.Name(name).flatMap { headers[$0] }
    }
}
