import Crypto
import Foundation

/// Stripe's `Stripe-Signature` scheme: `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, each `v1` the
/// lowercase hex HMAC-SHA256 of `"<t>.<raw body>"` keyed with an endpoint secret (`whsec_…`).
/// Any `v1` matching any configured secret accepts; `v0` and unknown schemes are ignored, so a
/// header without `v1` is never accepted through a weaker scheme.
public enum StripeSignature {
    public static let defaultTolerance: Int64 = 300

    public struct Header: Equatable, Sendable {
        public let timestamp: Int64
        public let signatures: [String]
    }

    /// Reads the header; throws `.malformed` when it has no integer `t` or no non-empty `v1`.
    public static func parse(_ header: String) throws(VerificationFailure) -> Header {
        var timestamp: Int64?
        var signatures: [String] = []
        for item in header.split(separator: ",", omittingEmptySubsequences: false) {
            guard let equals = item.firstIndex(of: "=") else { continue }
            let key = item[..<equals].trimmingCharacters(in: .whitespaces)
            let value = item[item.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "t": timestamp = Int64(value)
            case "v1" where !value.isEmpty: signatures.append(value.lowercased())
            default: continue
            }
        }
        guard let timestamp else { throw .malformed("no timestamp (t=<unix seconds>) in Stripe-Signature") }
        guard !signatures.isEmpty else { throw .malformed("no v1 signature in Stripe-Signature") }
        return Header(timestamp: timestamp, signatures: signatures)
    }

    /// The `v1` value for a payload, secret and timestamp.
    public static func signature(payload: some DataProtocol, secret: String, timestamp: Int64) -> String {
        var message = Array("\(timestamp).".utf8)
        message.append(contentsOf: payload)
        return HMACDigest.sha256Hex(key: secret, message: message)
    }

    /// A complete header, as Stripe would send it (for fake servers and tests).
    public static func header(payload: some DataProtocol, secrets: [String], timestamp: Int64) -> String {
        (["t=\(timestamp)"] + secrets.map { "v1=" + signature(payload: payload, secret: $0, timestamp: timestamp) })
            .joined(separator: ",")
    }

    /// Checks the header against the raw body; returns the signed timestamp.
    @discardableResult
    public static func verify(
        payload: some DataProtocol, header: String?, secrets: SecretList, now: Int64,
        tolerance: Int64 = defaultTolerance
    ) throws(VerificationFailure) -> Int64 {
        guard let header, !header.isEmpty else { throw .missing("Stripe-Signature header") }
        let parsed = try parse(header)
        let expected = secrets.values.map { signature(payload: payload, secret: $0, timestamp: parsed.timestamp) }
        var matched = false
        for candidate in expected {
            for given in parsed.signatures where constantTimeEquals(candidate, given) { matched = true }
        }
        guard matched else { throw .mismatch }
        let age = now - parsed.timestamp
        guard abs(age) <= tolerance else { throw .stale(ageSeconds: age, toleranceSeconds: tolerance) }
        return parsed.timestamp
    }
}
