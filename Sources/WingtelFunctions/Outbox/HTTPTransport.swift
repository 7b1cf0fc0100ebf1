import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One outbound HTTP request to a provider.
public struct OutboundRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// A JSON body.
    public static func json(_ method: String, _ url: String, _ object: [String: Any], headers: [(String, String)] = []) -> OutboundRequest {
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return OutboundRequest(method: method, url: url, headers: headers + [("Content-Type", "application/json")], body: Array(body))
    }
}

/// A provider's answer. Header names are lowercased.
public struct OutboundReply: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// `Retry-After` in seconds (the delta form; an HTTP date is read too).
    public var retryAfter: Duration? {
        guard let value = headers["retry-after"]?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Int(value) { return .seconds(max(seconds, 0)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .seconds(max(Int(date.timeIntervalSinceNow.rounded(.up)), 0))
    }
}

/// How adapters reach providers: one small protocol, so the transport can change (URLSession
/// today; AsyncHTTPClient if the outbox benchmark shows URLSession holding the worker back).
public protocol HTTPTransport: Sendable {
    func send(_ request: OutboundRequest) async throws -> OutboundReply
}

/// Foundation's URLSession (libcurl on Linux). Network failures and timeouts throw.
public final class URLSessionTransport: HTTPTransport {
    let session: URLSession

    public init(timeout: Duration = .seconds(30)) {
        let configuration = URLSessionConfiguration.ephemeral
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        configuration.timeoutIntervalForRequest = seconds
        configuration.timeoutIntervalForResource = seconds
        configuration.httpMaximumConnectionsPerHost = 16
        session = URLSession(configuration: configuration)
    }

    public func send(_ request: OutboundRequest) async throws -> OutboundReply {
        guard let url = URL(string: request.url) else { throw URLError(.badURL) }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        for (name, value) in request.headers { urlRequest.addValue(value, forHTTPHeaderField: name) }
        if !request.body.isEmpty { urlRequest.httpBody = Data(request.body) }
        let (data, response) = try await session.data(for: urlRequest)
        guard let http = response as? HTTPURLResponse else { throw URLError(.badServerResponse) }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields { headers[String(describing: name).lowercased()] = String(describing: value) }
        return OutboundReply(status: http.statusCode, headers: headers, body: Array(data))
    }
}
