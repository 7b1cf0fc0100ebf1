import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// What every provider handler shares: body decoding, the database call with its error mapping,
/// outcome metrics, and the answers.
struct Handling: Sendable {
    let store: EventStore
    let metrics: FunctionsMetrics

    /// The verified body as text; a body that is not UTF-8 is malformed.
    func text(_ webhook: VerifiedWebhook) throws -> String {
        guard let text = String(validating: webhook.body.readableBytesView, as: UTF8.self) else {
            throw FunctionsError.badRequest("the body is not UTF-8 text")
        }
        return text
    }

    /// Form parameters as the JSON object the SQL handlers read (a repeated name keeps its last value).
    func json(_ form: [(String, String)], dropping: Set<String> = []) throws -> String {
        var object: [String: String] = [:]
        for (name, value) in form where !dropping.contains(name) { object[name] = value }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// Calls the database, mapping failures to the provider's retry semantics, and counts the outcome.
    func call(_ provider: Provider, context: VerifiedContext, _ work: () async throws -> String) async throws -> String {
        let answer: String
        do {
            answer = try await work()
        } catch {
            let mapped = FunctionsError.from(database: error)
            // A malformed request is the sender's problem (notice); anything else is ours or the database's (error).
            context.logger.log(
                level: mapped.status.code < 500 ? .notice : .error, "\(provider.rawValue) event not applied",
                metadata: ["error": "\(String(reflecting: error))", "status": "\(mapped.status.code)"])
            metrics.outcome(provider, mapped.status == .serviceUnavailable ? "retry" : "rejected")
            throw mapped
        }
        return answer
    }

    /// Answers a handler's `{outcome, event_id, detail}` as JSON, counting the outcome.
    func jsonAnswer(_ provider: Provider, _ answer: String, context: VerifiedContext) -> Response {
        let outcome =
            ((try? JSONSerialization.jsonObject(with: Data(answer.utf8))) as? [String: Any])?["outcome"] as? String ?? "unknown"
        metrics.outcome(provider, outcome)
        context.logger.info("\(provider.rawValue) event", metadata: ["outcome": "\(outcome)"])
        return Self.response(answer, contentType: "application/json; charset=utf-8", requestID: context.requestID)
    }

    static func response(_ text: String, contentType: String, requestID: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        if let name = HTTPField.Name("X-Request-Id") { headers[name] = requestID }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
