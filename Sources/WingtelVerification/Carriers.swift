import Crypto
import Foundation

/// AT&T Control Center push API: the form carries `timestamp` and
/// `signature2 = base64(HMAC-SHA256(shared secret, timestamp))`. The timestamp (ISO 8601) also
/// bounds replays: a push signed longer ago than the tolerance is refused.
public enum ControlCenterSignature {
    public static let defaultTolerance: Int64 = 300

    public static func signature(timestamp: String, secret: String) -> String {
        Data(HMACDigest.sha256(key: secret, message: Array(timestamp.utf8))).base64EncodedString()
    }

    public static func verify(
        timestamp: String?, signature2: String?, secrets: SecretList, now: Int64,
        tolerance: Int64 = defaultTolerance
    ) throws(VerificationFailure) {
        guard let signature2, !signature2.isEmpty else { throw .missing("signature2 parameter") }
        guard let timestamp, !timestamp.isEmpty else { throw .missing("timestamp parameter") }
        guard secrets.values.contains(where: { constantTimeEquals(signature(timestamp: timestamp, secret: $0), signature2) }) else {
            throw .mismatch
        }
        guard let signedAt = parseTimestamp(timestamp) else {
            throw .malformed("timestamp \(timestamp) is not ISO 8601")
        }
        let age = now - signedAt
        guard abs(age) <= tolerance else { throw .stale(ageSeconds: age, toleranceSeconds: tolerance) }
    }

    /// `2026-11-29T10:00:00Z`, with or without fractional seconds or an offset.
    public static func parseTimestamp(_ text: String) -> Int64? {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = plain.date(from: text) ?? fractional.date(from: text) else { return nil }
        return Int64(date.timeIntervalSince1970.rounded(.down))
    }
}

/// ThingSpace callbacks authenticate by echoing, in every body, the username and password
/// registered with the callback. Several pairs may be configured while they rotate.
public enum ThingSpaceCredentials {
    public struct Pair: Sendable, Equatable {
        public let username: String
        public let password: String
        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }
    }

    /// Pairs from `VERIZON_CALLBACK_USERNAME` / `VERIZON_CALLBACK_PASSWORD`, matched by position.
    public static func pairs(usernames: SecretList, passwords: SecretList) -> [Pair] {
        zip(usernames.values, passwords.values).map { Pair(username: $0, password: $1) }
    }

    public static func verify(username: String?, password: String?, registered: [Pair]) throws(VerificationFailure) {
        guard let username, let password, !username.isEmpty, !password.isEmpty else {
            throw .missing("username and password in the callback body")
        }
        var matched = false
        for pair in registered {
            // Both compared every time: no early exit that tells which half was wrong.
            let user = constantTimeEquals(pair.username, username)
            let pass = constantTimeEquals(pair.password, password)
            if user && pass { matched = true }
        }
        guard matched else { throw .mismatch }
    }
}

/// The configurable scheme for providers whose webhook signature is not published (the T-Mobile
/// aggregator, Zift): a header `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`,
/// the same construction as Stripe's, under a header name that is a setting.
public enum TimestampedHMAC {
    public static let defaultHeader = "X-Webhook-Signature"

    public static func header(payload: some DataProtocol, secret: String, timestamp: Int64) -> String {
        StripeSignature.header(payload: payload, secrets: [secret], timestamp: timestamp)
    }

    public static func verify(
        payload: some DataProtocol, header: String?, secrets: SecretList, now: Int64,
        tolerance: Int64 = StripeSignature.defaultTolerance
    ) throws(VerificationFailure) {
        try StripeSignature.verify(payload: payload, header: header, secrets: secrets, now: now, tolerance: tolerance)
    }
}
