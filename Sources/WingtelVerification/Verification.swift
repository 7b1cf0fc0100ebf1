import Crypto
import Foundation

/// Why a webhook request was not accepted as coming from its provider.
public enum VerificationFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request carries no signature (or credentials) where the provider always sends one.
    case missing(String)
    /// The signature header does not have the provider's shape.
    case malformed(String)
    /// The signed timestamp is older (or further in the future) than the tolerance allows.
    case stale(ageSeconds: Int64, toleranceSeconds: Int64)
    /// A well-formed signature that no configured secret produces.
    case mismatch
    /// A Twilio JSON webhook whose body does not hash to the `bodySHA256` the URL carries.
    case bodyHashMismatch

    public var description: String {
        switch self {
        case .missing(let what): "missing \(what)"
        case .malformed(let why): "malformed signature: \(why)"
        case .stale(let age, let tolerance): "timestamp \(age) s away from now (tolerance \(tolerance) s): a replay or a wrong clock"
        case .mismatch: "no configured secret produces this signature"
        case .bodyHashMismatch: "the body does not match its bodySHA256"
        }
    }
}

/// Secrets from configuration: one value, or several separated by commas while a key rotates.
public struct SecretList: Sendable, Equatable {
    public let values: [String]

    public init(_ values: [String]) {
        self.values = values.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Parses `STRIPE_WEBHOOK_SECRET=whsec_new,whsec_old`; nil or blank gives an empty list.
    public init(parsing text: String?) {
        self.init((text ?? "").split(separator: ",").map(String.init))
    }

    public var isEmpty: Bool { values.isEmpty }
}

/// Byte comparison whose duration does not depend on where the inputs differ.
public func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for (x, y) in zip(a, b) { difference |= x ^ y }
    return difference == 0
}

public func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    constantTimeEquals(Array(a.utf8), Array(b.utf8))
}

enum Hex {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// HMAC helpers over raw bytes.
public enum HMACDigest {
    public static func sha256(key: String, message: some DataProtocol) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(key.utf8))))
    }

    public static func sha1(key: String, message: some DataProtocol) -> [UInt8] {
        Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: Array(key.utf8))))
    }

    public static func sha256Hex(key: String, message: some DataProtocol) -> String {
        Hex.encode(sha256(key: key, message: message))
    }
}
