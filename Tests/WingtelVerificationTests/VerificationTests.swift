import Foundation
import Testing
import WingtelVerification

/// Published vectors (see Fixtures/README.md): Stripe's from stripe-dotnet and stripe-node,
/// Twilio's from twilio-python / twilio-java. Values computed by Wingtel itself are only used
/// for properties (rotation, tampering), never as the reference.
@Suite("Stripe-Signature")
struct StripeSignatureTests {
    static let payload: [UInt8] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/event_test_signature.json")
        return Array((try? Data(contentsOf: url)) ?? Data())
    }()
    static let header =
        "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef"
    static let secrets = SecretList(["webhook_secret"])

    @Test("the stripe-dotnet vector verifies within the tolerance")
    func publishedVectorVerifies() throws {
        #expect(Self.payload.count == 484)
        let timestamp = try StripeSignature.verify(
            payload: Self.payload, header: Self.header, secrets: Self.secrets, now: 1_533_204_620 + 100)
        #expect(timestamp == 1_533_204_620)
    }

    @Test("the same request 400 s later is stale; 400 s early too")
    func staleIsRejected() {
        #expect(throws: VerificationFailure.stale(ageSeconds: 400, toleranceSeconds: 300)) {
            try StripeSignature.verify(payload: Self.payload, header: Self.header, secrets: Self.secrets, now: 1_533_204_620 + 400)
        }
        #expect(throws: VerificationFailure.stale(ageSeconds: -400, toleranceSeconds: 300)) {
            try StripeSignature.verify(payload: Self.payload, header: Self.header, secrets: Self.secrets, now: 1_533_204_620 - 400)
        }
    }

    @Test("one changed byte of the body, or another secret, is a mismatch")
    func tamperingIsRejected() {
        var tampered = Self.payload
        tampered[10] ^= 1
        #expect(throws: VerificationFailure.mismatch) {
            try StripeSignature.verify(payload: tampered, header: Self.header, secrets: Self.secrets, now: 1_533_204_620)
        }
        #expect(throws: VerificationFailure.mismatch) {
            try StripeSignature.verify(payload: Self.payload, header: Self.header, secrets: SecretList(["whsec_other"]), now: 1_533_204_620)
        }
    }

    @Test("headers the SDKs reject as malformed", arguments: ["t=,v1=x,v0=y", "t,v1=,v0=", "t,v1=,v0", "t,v1=,", "t,,", ",,", "t"])
    func malformedHeaders(header: String) {
        #expect(throws: VerificationFailure.self) {
            try StripeSignature.verify(payload: Self.payload, header: header, secrets: Self.secrets, now: 1_533_204_620)
        }
        #expect(throws: VerificationFailure.self) { try StripeSignature.parse(header) }
    }

    @Test("a header with only v0 has no signature of the expected scheme: no downgrade")
    func v0OnlyIsRejected() {
        let header = "t=1533204620,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef"
        #expect(throws: VerificationFailure.malformed("no v1 signature in Stripe-Signature")) {
            try StripeSignature.verify(payload: Self.payload, header: header, secrets: Self.secrets, now: 1_533_204_620)
        }
        #expect(throws: VerificationFailure.missing("Stripe-Signature header")) {
            try StripeSignature.verify(payload: Self.payload, header: nil, secrets: Self.secrets, now: 1_533_204_620)
        }
    }

    @Test("while a secret rotates: several v1 in the header, several secrets configured")
    func rotation() throws {
        let header =
            "t=1533204620,v1=" + String(repeating: "0", count: 64)
            + ",v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7"
        try StripeSignature.verify(payload: Self.payload, header: header, secrets: Self.secrets, now: 1_533_204_620)
        let secrets = SecretList(parsing: " whsec_new , webhook_secret,")
        #expect(secrets.values == ["whsec_new", "webhook_secret"])
        try StripeSignature.verify(payload: Self.payload, header: Self.header, secrets: secrets, now: 1_533_204_620)
        #expect(throws: VerificationFailure.mismatch) {
            try StripeSignature.verify(payload: Self.payload, header: Self.header, secrets: SecretList(parsing: ""), now: 1_533_204_620)
        }
    }

    @Test("raw HMAC-SHA256 vectors of stripe-node")
    func rawHMAC() {
        #expect(
            HMACDigest.sha256Hex(key: "test_secret", message: Array("".utf8))
                == "f7f9bd47fb987337b5796fdc1fdb9ba221d0d5396814bfcaf9521f43fd8927fd")
        #expect(
            HMACDigest.sha256Hex(key: "test_secret", message: Array(#"{"obj1":"hello","obj2":"world"}"#.utf8))
                == "bebb1a643997f419b315ddba19e6f5411e1ce7f810ba6d3617ce72823092f363")
    }
}

@Suite("X-Twilio-Signature")
struct TwilioSignatureTests {
    static let url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    static let params = [
        ("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"), ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    static let token = SecretList(["12345"])

    @Test("the published signatures, with and without explicit ports")
    func publishedVectors() {
        #expect(TwilioSignature.signature(url: Self.url, parameters: Self.params, authToken: "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
        #expect(
            TwilioSignature.signature(url: "https://mycompany.com:443/myapp.php?foo=1&bar=2", parameters: Self.params, authToken: "12345")
                == "kvajT1Ptam85bY51eRf/AJRuM3w=")
        #expect(
            TwilioSignature.signature(url: "http://mycompany.com:80/myapp.php?foo=1&bar=2", parameters: Self.params, authToken: "12345")
                == "0ZXoZLH/DfblKGATFgpif+LLRf4=")
        #expect(
            TwilioSignature.signature(url: "http://mycompany.com:1234/myapp.php?foo=1&bar=2", parameters: Self.params, authToken: "12345")
                == "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")
    }

    @Test("a URL with :443 verifies against the signature without it, and the reverse")
    func portVariants() throws {
        try TwilioSignature.verify(
            url: "https://mycompany.com:443/myapp.php?foo=1&bar=2", parameters: Self.params,
            header: "RSOYDt4T1cUTdK1PDd93/VVr8B8=", authTokens: Self.token)
        try TwilioSignature.verify(url: Self.url, parameters: Self.params, header: "kvajT1Ptam85bY51eRf/AJRuM3w=", authTokens: Self.token)
        try TwilioSignature.verify(
            url: "http://mycompany.com/myapp.php?foo=1&bar=2", parameters: Self.params,
            header: "0ZXoZLH/DfblKGATFgpif+LLRf4=", authTokens: Self.token)
        // A non-default port is part of what was signed.
        #expect(throws: VerificationFailure.mismatch) {
            try TwilioSignature.verify(
                url: "http://mycompany.com/myapp.php?foo=1&bar=2", parameters: Self.params,
                header: "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", authTokens: Self.token)
        }
    }

    @Test("a repeated name signs its values in sorted order, whatever order they came in")
    func repeatedKeys() throws {
        let params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
        try TwilioSignature.verify(url: Self.url, parameters: params, header: "IK+Dwps556ElfBT0I3Rgjkr1wJU=", authTokens: Self.token)
    }

    @Test("JSON body: bodySHA256 checked, then the URL alone is signed")
    func jsonBody() throws {
        let body = Array(#"{"property": "value", "boolean": true}"#.utf8)
        let hex = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        let url = Self.url + "&bodySHA256=" + hex
        try TwilioSignature.verifyJSON(url: url, body: body, header: "a9nBmqA0ju/hNViExpshrM61xv4=", authTokens: Self.token)
        #expect(throws: VerificationFailure.bodyHashMismatch) {
            try TwilioSignature.verifyJSON(url: url, body: body + [0x20], header: "a9nBmqA0ju/hNViExpshrM61xv4=", authTokens: Self.token)
        }
        #expect(throws: VerificationFailure.missing("bodySHA256 in the URL")) {
            try TwilioSignature.verifyJSON(url: Self.url, body: body, header: "a9nBmqA0ju/hNViExpshrM61xv4=", authTokens: Self.token)
        }
    }

    @Test("changed parameter, added parameter, wrong token, missing header")
    func rejections() {
        var changed = Self.params
        changed[2] = ("Digits", "1235")
        #expect(throws: VerificationFailure.mismatch) {
            try TwilioSignature.verify(url: Self.url, parameters: changed, header: "RSOYDt4T1cUTdK1PDd93/VVr8B8=", authTokens: Self.token)
        }
        #expect(throws: VerificationFailure.mismatch) {
            try TwilioSignature.verify(
                url: Self.url, parameters: Self.params + [("Body", "hi")], header: "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
                authTokens: Self.token)
        }
        #expect(throws: VerificationFailure.mismatch) {
            try TwilioSignature.verify(
                url: Self.url, parameters: Self.params, header: "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
                authTokens: SecretList(["54321"]))
        }
        #expect(throws: VerificationFailure.missing("X-Twilio-Signature header")) {
            try TwilioSignature.verify(url: Self.url, parameters: Self.params, header: nil, authTokens: Self.token)
        }
    }

    @Test("form bodies: +, percent escapes, empty values, invalid escapes and UTF-8")
    func formParsing() throws {
        let pairs = try #require(FormURLEncoded.parse(Array("Body=Hello+w%C3%B6rld%21&From=%2B14158675309&Empty=&Flag".utf8)))
        #expect(pairs.map(\.0) == ["Body", "From", "Empty", "Flag"])
        #expect(pairs.map(\.1) == ["Hello wörld!", "+14158675309", "", ""])
        #expect(FormURLEncoded.parse(Array("Body=%ZZ".utf8)) == nil)
        #expect(FormURLEncoded.parse(Array("Body=%C3".utf8)) == nil)
        #expect(FormURLEncoded.parse(Array("Body=50%".utf8)) == nil)
        let round = try #require(FormURLEncoded.parse(Array(FormURLEncoded.encode([("A b", "ü&=+")]).utf8)))
        #expect(round.map(\.0) == ["A b"] && round.map(\.1) == ["ü&=+"])
    }
}

@Suite("Carrier authentication")
struct CarrierAuthenticationTests {
    @Test("Control Center signature2 is base64 HMAC-SHA256 of the timestamp")
    func controlCenter() throws {
        // Independent reference: `printf %s 2026-11-29T10:00:00Z | openssl dgst -sha256 -hmac s3cret -binary | base64`.
        let timestamp = "2026-11-29T10:00:00Z"
        #expect(ControlCenterSignature.signature(timestamp: timestamp, secret: "s3cret") == "DlypEI8lQ/jAGTowk3ysn+esyDLk4FIJsATGEeSp6+A=")
        let now = try #require(ControlCenterSignature.parseTimestamp(timestamp))
        try ControlCenterSignature.verify(
            timestamp: timestamp, signature2: "DlypEI8lQ/jAGTowk3ysn+esyDLk4FIJsATGEeSp6+A=",
            secrets: SecretList(["old", "s3cret"]), now: now + 10)
        #expect(throws: VerificationFailure.stale(ageSeconds: 301, toleranceSeconds: 300)) {
            try ControlCenterSignature.verify(
                timestamp: timestamp, signature2: "DlypEI8lQ/jAGTowk3ysn+esyDLk4FIJsATGEeSp6+A=",
                secrets: SecretList(["s3cret"]), now: now + 301)
        }
        #expect(throws: VerificationFailure.mismatch) {
            try ControlCenterSignature.verify(
                timestamp: "2026-11-29T10:00:01Z", signature2: "DlypEI8lQ/jAGTowk3ysn+esyDLk4FIJsATGEeSp6+A=",
                secrets: SecretList(["s3cret"]), now: now)
        }
        #expect(ControlCenterSignature.parseTimestamp("2026-11-29T10:00:00.250Z") == now)
    }

    @Test("ThingSpace: the registered username and password, both, from any configured pair")
    func thingSpace() throws {
        let pairs = ThingSpaceCredentials.pairs(
            usernames: SecretList(parsing: "wingtel,wingtel2"), passwords: SecretList(parsing: "pw1,pw2"))
        try ThingSpaceCredentials.verify(username: "wingtel2", password: "pw2", registered: pairs)
        #expect(throws: VerificationFailure.mismatch) {
            try ThingSpaceCredentials.verify(username: "wingtel", password: "pw2", registered: pairs)
        }
        #expect(throws: VerificationFailure.missing("username and password in the callback body")) {
            try ThingSpaceCredentials.verify(username: "wingtel", password: nil, registered: pairs)
        }
    }

    @Test("timestamped HMAC (aggregator, Zift): the Stripe construction under another header")
    func timestampedHMAC() throws {
        let body = Array(#"{"eventId":"e1"}"#.utf8)
        let header = TimestampedHMAC.header(payload: body, secret: "agg", timestamp: 1_800_000_000)
        #expect(header == "t=1800000000,v1=" + HMACDigest.sha256Hex(key: "agg", message: Array("1800000000.".utf8) + body))
        try TimestampedHMAC.verify(payload: body, header: header, secrets: SecretList(["agg"]), now: 1_800_000_030)
        #expect(throws: VerificationFailure.mismatch) {
            try TimestampedHMAC.verify(payload: body + [0x20], header: header, secrets: SecretList(["agg"]), now: 1_800_000_030)
        }
    }

    @Test("constant-time comparison is still a comparison")
    func comparison() {
        #expect(constantTimeEquals("abc", "abc"))
        #expect(!constantTimeEquals("abc", "abd"))
        #expect(!constantTimeEquals("abc", "abcd"))
    }
}
