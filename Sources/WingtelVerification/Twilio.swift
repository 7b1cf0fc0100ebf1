import Crypto
import Foundation

/// Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the Auth Token, of the full URL
/// Twilio called followed by every POST parameter as name + value, sorted by name (the values of
/// a repeated name sorted too), without separators. A JSON-body webhook instead carries
/// `bodySHA256=<hex>` in its URL and the URL alone is signed.
public enum TwilioSignature {
    public static func signature(url: String, parameters: [(String, String)], authToken: String) -> String {
        var message = Array(url.utf8)
        for (name, value) in sorted(parameters) {
            message.append(contentsOf: name.utf8)
            message.append(contentsOf: value.utf8)
        }
        return Data(HMACDigest.sha1(key: authToken, message: message)).base64EncodedString()
    }

    /// Verifies a form-encoded webhook (inbound SMS, status callbacks).
    public static func verify(
        url: String, parameters: [(String, String)], header: String?, authTokens: SecretList
    ) throws(VerificationFailure) {
        guard let header, !header.isEmpty else { throw .missing("X-Twilio-Signature header") }
        for candidate in urlVariants(url) {
            for token in authTokens.values
            where constantTimeEquals(signature(url: candidate, parameters: parameters, authToken: token), header) {
                return
            }
        }
        throw .mismatch
    }

    /// Verifies a JSON-body webhook: the URL's `bodySHA256` must be the body's SHA-256, and the
    /// URL (with no parameters) must carry the signature.
    public static func verifyJSON(
        url: String, body: some DataProtocol, header: String?, authTokens: SecretList
    ) throws(VerificationFailure) {
        guard let header, !header.isEmpty else { throw .missing("X-Twilio-Signature header") }
        guard let claimed = queryValue("bodySHA256", in: url) else { throw .missing("bodySHA256 in the URL") }
        guard constantTimeEquals(Hex.encode(SHA256.hash(data: body)), claimed.lowercased()) else {
            throw .bodyHashMismatch
        }
        try verify(url: url, parameters: [], header: header, authTokens: authTokens)
    }

    /// Parameters in signing order: by name, then by value, comparing UTF-8 bytes.
    static func sorted(_ parameters: [(String, String)]) -> [(String, String)] {
        parameters.sorted { a, b in
            if a.0 != b.0 { return a.0.utf8.lexicographicallyPrecedes(b.0.utf8) }
            return a.1.utf8.lexicographicallyPrecedes(b.1.utf8)
        }
    }

    /// The URL as given, plus the same URL with its default port made explicit or removed
    /// (`https://host/…` ⇄ `https://host:443/…`, `http://host/…` ⇄ `http://host:80/…`).
    public static func urlVariants(_ url: String) -> [String] {
        guard let schemeEnd = url.range(of: "://") else { return [url] }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let defaultPort = scheme == "https" ? "443" : scheme == "http" ? "80" : nil
        guard let defaultPort else { return [url] }
        let authorityStart = schemeEnd.upperBound
        let authorityEnd = url[authorityStart...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? url.endIndex
        let authority = url[authorityStart..<authorityEnd]
        let hostPart: Substring
        let port: Substring?
        if let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") {
            hostPart = authority[..<colon]
            port = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
            port = nil
        }
        let prefix = url[..<authorityStart]
        let rest = url[authorityEnd...]
        switch port {
        case nil: return [url, String(prefix + hostPart + ":" + defaultPort + rest)]
        case defaultPort?: return [url, String(prefix + hostPart + rest)]
        default: return [url]
        }
    }

    static func queryValue(_ name: String, in url: String) -> String? {
        guard let query = url.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first.map(String.init) == name, parts.count == 2 { return String(parts[1]) }
        }
        return nil
    }
}

/// `application/x-www-form-urlencoded` bodies, as Twilio and Control Center post them.
public enum FormURLEncoded {
    /// The pairs in order; nil when a percent escape or the UTF-8 inside is invalid.
    public static func parse(_ body: some Collection<UInt8>) -> [(String, String)]? {
        var pairs: [(String, String)] = []
        for field in body.split(separator: UInt8(ascii: "&")) {
            let parts = field.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]) else { return nil }
            let value = parts.count > 1 ? decode(parts[1]) : ""
            guard let value else { return nil }
            pairs.append((name, value))
        }
        return pairs
    }

    static func decode(_ bytes: some Collection<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): out.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                out.append(high << 4 | low)
            default: out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Encodes pairs (for fake providers and outbound requests).
    public static func encode(_ pairs: [(String, String)]) -> String {
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._*")
        func escape(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: allowed)?.replacingOccurrences(of: "%20", with: "+") ?? text
        }
        return pairs.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }
}
