import Crypto
import Foundation
import WingtelVerification

enum Clock {
    static var now: Int64 { Int64(Date().timeIntervalSince1970) }
}

/// A Stripe event as Stripe sends it: the raw JSON and its `Stripe-Signature`.
struct StripeDelivery {
    let body: [UInt8]
    let header: String

    init(_ json: String, secret: String = LiveServer.secrets.stripe, timestamp: Int64 = Clock.now) {
        body = Array(json.utf8)
        header = StripeSignature.header(payload: body, secrets: [secret], timestamp: timestamp)
    }

    static func paymentSucceeded(event: String, intent: String, cents: Int, account: String) -> StripeDelivery {
        StripeDelivery(
            """
            {"id":"\(event)","object":"event","type":"payment_intent.succeeded","created":\(Clock.now),"livemode":false,
             "data":{"object":{"id":"\(intent)","object":"payment_intent","amount":\(cents),"amount_received":\(cents),
             "currency":"usd","status":"succeeded","metadata":{"wingtel_account_id":"\(account)"}}}}
            """)
    }
}

enum SHA256Hex {
    static func of(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
