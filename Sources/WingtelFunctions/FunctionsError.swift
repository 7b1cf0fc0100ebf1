import Foundation
import Hummingbird
import PostgresNIO
import WingtelVerification

/// What a function answers when it does not apply the request. Each maps to the status a
/// provider understands: 401 and 400 are final (the provider should not retry a forged or
/// malformed request), 503 asks it to retry later.
public enum FunctionsError: Error, HTTPResponseError, CustomStringConvertible {
    case unauthorized(VerificationFailure)
    case badRequest(String)
    case unprocessable(String)
    case unavailable(String)
    case configuration(String)
    case `internal`

    public var status: HTTPResponse.Status {
        switch self {
        case .unauthorized: .unauthorized
        case .badRequest: .badRequest
        case .unprocessable: .unprocessableContent
        case .unavailable: .serviceUnavailable
        case .configuration, .internal: .internalServerError
        }
    }

    public var description: String {
        switch self {
        case .unauthorized(let failure): "signature check failed: \(failure)"
        case .badRequest(let message): "bad request: \(message)"
        case .unprocessable(let message): message
        case .unavailable(let message): "\(message); retry later"
        case .configuration(let message): "configuration: \(message)"
        case .internal: "internal error; the request was not applied"
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if case .unavailable = self { headers[.retryAfter] = "5" }
        let body = (try? JSONSerialization.data(withJSONObject: ["error": description, "request_id": context.id])) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The answer for an error raised while talking to the database. SQLSTATE class 22 (bad data)
    /// and check violations are the request's fault; a business rule (P0001) is 422; conflicts,
    /// lost connections and an unreachable server are worth a retry.
    public static func from(database error: any Error) -> FunctionsError {
        if let error = error as? FunctionsError { return error }
        if let psql = error as? PSQLError {
            guard let state = psql.serverInfo?[.sqlState] else {
                return .unavailable("the database is unreachable")
            }
            let message = psql.serverInfo?[.message] ?? "rejected by the database"
            switch state {
            case _ where state.hasPrefix("22"), "23502", "23514": return .badRequest(message)
            case "P0001", "P0002": return .unprocessable(message)
            case _ where state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57"),
                "40001", "40P01", "23505", "55P03":
                return .unavailable("the database could not apply the event now (\(state))")
            default: return .internal
            }
        }
        return .unavailable("the database is unreachable")
    }
}
