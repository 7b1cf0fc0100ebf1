import Foundation
import Logging
import PostgresNIO

/// Who a piece of database work runs as, the way PostgREST (and so supabase-swift) runs it:
/// a transaction-local `role` and `request.jwt.claims`, so row-level security and
/// `auth.uid()` see exactly what they would see behind the Supabase API.
public enum DatabaseIdentity: Sendable, Equatable {
    /// A signed-in user: role `authenticated`, claims `sub`, `role`, `aud`, `email` and any extra ones.
    case user(id: UUID, email: String? = nil, extraClaims: [String: String] = [:])
    /// An unauthenticated API caller: role `anon`.
    case anonymous
    /// A trusted service (functions server, worker, CLI): role `service_role`, which bypasses RLS.
    /// `name` is recorded as the actor of audit entries.
    case service(name: String)

    public var roleName: String {
        switch self {
        case .user: return "authenticated"
        case .anonymous: return "anon"
        case .service: return "service_role"
        }
    }

    /// The JWT claims PostgREST would set, as JSON.
    public var claimsJSON: String {
        var claims: [String: String] = ["role": roleName]
        switch self {
        case .user(let id, let email, let extra):
            claims.merge(extra) { current, _ in current }
            claims["sub"] = id.uuidString.lowercased()
            claims["aud"] = "authenticated"
            if let email { claims["email"] = email }
        case .anonymous, .service:
            break
        }
        let data = (try? JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    var actorName: String? {
        if case .service(let name) = self { return name }
        return nil
    }
}

extension PostgresConnection {
    /// Runs `body` in one transaction as `identity`; commits when it returns, rolls back when it throws.
    /// `requestID` reaches the audit trail with every change made inside.
    public func withIdentity<Result: Sendable>(
        _ identity: DatabaseIdentity,
        requestID: String? = nil,
        logger: Logger,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await self.query("begin", logger: logger)
        do {
            try await self.run(
                """
                select set_config('role', \(identity.roleName), true),
                       set_config('request.jwt.claims', \(identity.claimsJSON), true),
                       set_config('wingtel.actor', \(identity.actorName ?? ""), true),
                       set_config('wingtel.request_id', \(requestID ?? ""), true)
                """,
                logger: logger)
            let result = try await body(self)
            try await self.query("commit", logger: logger)
            return result
        } catch {
            _ = try? await self.query("rollback", logger: logger)
            throw error
        }
    }
}

extension Database {
    /// Opens a connection and runs `body` in one transaction as `identity`.
    public static func withIdentity<Result: Sendable>(
        _ identity: DatabaseIdentity,
        on settings: ConnectionSettings,
        requestID: String? = nil,
        logger: Logger = Logger(label: "wingtel.db"),
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withConnection(settings, logger: logger) { connection in
            try await connection.withIdentity(identity, requestID: requestID, logger: logger, body)
        }
    }
}
