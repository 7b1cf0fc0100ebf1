import Foundation

/// AT&T Control Center (Cisco Jasper) REST: `PUT /rws/api/v1/devices/{iccid}` with HTTP Basic
/// (user name + API key). Synchronous: a 200 is the change done. Setting a state is idempotent.
public struct ControlCenterSettings: Sendable {
    public var baseURL: String
    public var username: String
    public var apiKey: String

    public init(baseURL: String, username: String, apiKey: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.username = username
        self.apiKey = apiKey
    }
}

public struct ControlCenterAdapter: CarrierAdapter {
    public let name = "att_control_center"
    let settings: ControlCenterSettings
    let transport: any HTTPTransport

    public init(settings: ControlCenterSettings, transport: any HTTPTransport) {
        self.settings = settings
        self.transport = transport
    }

    public func send(_ command: CarrierCommand) async -> CarrierOutcome {
        guard let iccid = command.field("iccid") else { return .refused(error: "the line has no SIM (ICCID) to change") }
        var body: [String: Any]
        switch command.kind {
        case "activate", "port_in", "restore":
            body = ["status": "ACTIVATED"]
            if command.kind != "restore", let plan = command.field("rate_plan") { body["ratePlan"] = plan }
        case "suspend", "deactivate", "port_out":
            body = ["status": "DEACTIVATED"]
        case "change_plan":
            guard let plan = command.field("rate_plan") else { return .refused(error: "no rate plan to change to") }
            body = ["ratePlan": plan]
        case "change_device":
            // The network learns a new IMEI when the SIM registers in it: nothing to send.
            return .completed(result: #"{"note":"Control Center learns the IMEI from the network"}"#)
        default:
            return .refused(error: "Control Center has no API for \(command.kind); do it in the Control Center portal")
        }
        let basic = Data("\(settings.username):\(settings.apiKey)".utf8).base64EncodedString()
        let request = OutboundRequest.json(
            "PUT", settings.baseURL + "/rws/api/v1/devices/\(iccid)", body,
            headers: [("Authorization", "Basic \(basic)"), ("Accept", "application/json")])
        let reply: OutboundReply
        do { reply = try await transport.send(request) } catch { return .unreachable(error, carrier: "Control Center") }
        guard (200...299).contains(reply.status) else { return .failure(reply, carrier: "Control Center") }
        return .completed(result: reply.json == nil ? "{}" : reply.text)
    }
}
