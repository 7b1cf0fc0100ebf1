import Foundation
import NIOSSL
import PostgresNIO

/// Where and how to connect: parsed from a `postgres://` URL (the form `psql`,
/// Supabase and `DATABASE_URL` use) or built for the local cluster.
public struct ConnectionSettings: Sendable, Equatable {
    public enum TLSMode: String, Sendable, Equatable {
        /// No TLS (`sslmode=disable`); the default for loopback hosts.
        case disable
        /// TLS when the server offers it, without verifying the certificate (`sslmode=prefer`/`allow`).
        case prefer
        /// TLS required, certificate not verified (`sslmode=require`, libpq's meaning).
        case require
        /// TLS required and the certificate verified against the system roots (`verify-ca`/`verify-full`).
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(host: String, port: Int, username: String, password: String?, database: String, tls: TLSMode = .disable) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Parses `postgres://user:password@host:port/database?sslmode=…`.
    public init(url text: String) throws(WingtelDatabaseError) {
        guard let components = URLComponents(string: text),
            let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql"
        else {
            throw .invalidURL(text, reason: "expected postgres://user:password@host:port/database")
        }
        guard let host = components.host, !host.isEmpty else {
            throw .invalidURL(text, reason: "the URL names no host")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        self.password = components.password.flatMap { $0.removingPercentEncoding }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? "postgres" : (path.removingPercentEncoding ?? path)
        let isLoopback = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
        var mode: TLSMode = isLoopback ? .disable : .prefer
        for item in components.queryItems ?? [] where item.name == "sslmode" {
            switch item.value?.lowercased() {
            case "disable": mode = .disable
            case "allow", "prefer": mode = .prefer
            case "require": mode = .require
            case "verify-ca", "verify-full": mode = .verifyFull
            default:
                throw .invalidURL(text, reason: "unknown sslmode '\(item.value ?? "")' (use disable, prefer, require or verify-full)")
            }
        }
        self.tls = mode
    }

    /// The same settings pointing at another database of the same server.
    public func with(database: String) -> ConnectionSettings {
        var copy = self
        copy.database = database
        return copy
    }

    /// A `postgres://` URL usable by `psql` and by `DATABASE_URL`.
    public var url: String {
        var components = URLComponents()
        components.scheme = "postgresql"
        components.user = username
        components.password = password
        components.host = host
        components.port = port
        components.path = "/" + database
        if tls != .disable || !isLoopbackHost {
            components.queryItems = [URLQueryItem(name: "sslmode", value: tls.rawValue)]
        }
        return components.string ?? "postgresql://\(username)@\(host):\(port)/\(database)"
    }

    /// The URL with its password replaced, for logs and messages.
    public var redactedURL: String {
        var copy = self
        if copy.password != nil { copy.password = "****" }
        return copy.url
    }

    var isLoopbackHost: Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    /// PostgresNIO's configuration for these settings.
    public func postgresConfiguration() throws -> PostgresConnection.Configuration {
        let tlsSetting: PostgresConnection.Configuration.TLS
        switch tls {
        case .disable:
            tlsSetting = .disable
        case .prefer, .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            let context = try NIOSSLContext(configuration: configuration)
            tlsSetting = tls == .prefer ? .prefer(context) : .require(context)
        case .verifyFull:
            tlsSetting = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tlsSetting)
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }
}

extension ConnectionSettings {
    /// A pooled client's configuration (the functions server). `role` is set for every pooled
    /// session with the startup option `-c role=…`, so each connection acts as, say, service_role
    /// without a SET ROLE round trip per request.
    public func postgresClientConfiguration(role: String? = nil, maximumConnections: Int = 20) -> PostgresClient.Configuration {
        let tlsSetting: PostgresClient.Configuration.TLS
        switch tls {
        case .disable:
            tlsSetting = .disable
        case .prefer, .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tlsSetting = tls == .prefer ? .prefer(configuration) : .require(configuration)
        case .verifyFull:
            tlsSetting = .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tlsSetting)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = maximumConnections
        if let role {
            configuration.options.additionalStartupParameters = [("options", "-c role=\(role)")]
        }
        return configuration
    }
}
