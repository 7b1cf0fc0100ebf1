import Foundation

/// Which column of the file feeds which staging column, recognised from the header (the two
/// known BeQuick export shapes, PROTOCOLS.md "BeQuick exports") or given by a mapping file.
public struct ExportLayout: Sendable, Equatable {
    public enum Shape: String, Sendable {
        case subscriptionExport = "subscription_export"
        case staging
        case mapped
    }

    /// The staging columns (public.import_rows), in COPY order.
    public static let columns = [
        "subscriber_ref", "account_ref", "account_name", "first_name", "last_name", "email", "contact_phone", "mdn", "iccid", "imsi",
        "imei", "status", "plan_name", "plan_ref", "plan_price", "billing_day", "start_date", "end_date", "last_payment_date",
        "address_line1", "address_line2", "city", "state", "postal_code", "country", "carrier", "source_created_at",
    ]

    /// BeQuick's subscription export: staging column → header names, first non-empty wins.
    static let subscriptionExport: [String: [String]] = [
        "subscriber_ref": ["subscription_id"], "account_ref": ["user_profile_id"], "first_name": ["first_name"],
        "last_name": ["last_name"], "email": ["email"], "mdn": ["mdn"], "iccid": ["icc_id"], "imei": ["device_id"],
        "status": ["subscription_status"], "plan_name": ["plan_name"], "plan_ref": ["plan_id"], "plan_price": ["plan_price"],
        "start_date": ["effective_date"], "end_date": ["expiration_date"], "carrier": ["carrier", "network"],
    ]

    /// The product brief's staging shape.
    static let staging: [String: [String]] = [
        "subscriber_ref": ["external_id"], "email": ["email"], "contact_phone": ["phone_number"], "first_name": ["first_name"],
        "last_name": ["last_name"], "status": ["status"], "plan_name": ["plan_name"], "plan_price": ["plan_price"],
        "billing_day": ["billing_cycle"], "start_date": ["subscription_start_date"], "last_payment_date": ["last_payment_date"],
        "address_line1": ["address_line1"], "address_line2": ["address_line2"], "city": ["city"], "state": ["state"],
        "postal_code": ["zip_code"], "country": ["country"], "iccid": ["iccid"], "mdn": ["msisdn"], "imsi": ["imsi"],
        "imei": ["device_imei"], "carrier": ["carrier"], "source_created_at": ["created_at"],
    ]

    public enum LayoutError: Error, CustomStringConvertible, Equatable, Sendable {
        case unknownHeader([String])
        case mappingSyntax(line: Int, text: String)
        case unknownColumn(String)
        case missingHeader(column: String, header: String)
        case noSubscriberID
        case duplicateHeader(String)

        public var description: String {
            switch self {
            case .unknownHeader(let header):
                return
                    "the header (\(header.prefix(6).joined(separator: ", "))\(header.count > 6 ? ", …" : "")) matches neither known BeQuick export (subscription export: subscription_id, icc_id, subscription_status, …; staging: external_id, msisdn, iccid, status, …); write a mapping file and pass --mapping (docs/migrating-from-bequick.md)"
            case .mappingSyntax(let line, let text):
                return "mapping file line \(line): \"\(text)\" is not `wingtel_column = File header`"
            case .unknownColumn(let column):
                return "mapping file: \"\(column)\" is not a Wingtel import column (known: \(ExportLayout.columns.joined(separator: ", ")))"
            case .missingHeader(let column, let header):
                return "mapping file: \(column) = \(header), but the file has no column \"\(header)\""
            case .noSubscriberID:
                return "no column gives the subscription id (subscriber_ref); map it in the mapping file: subscriber_ref = <header>"
            case .duplicateHeader(let name):
                return "the header names the column \"\(name)\" twice; rename one and import again"
            }
        }
    }

    public var shape: Shape
    /// Staging column → indexes of the file's columns (first non-empty value wins).
    public var sources: [String: [Int]]
    /// The file's columns no staging column takes: kept in import_rows.extra by header name.
    public var extras: [(index: Int, name: String)]
    public var header: [String]
    /// For shape mapped: the mapping as given.
    public var mapping: [String: String]?

    public static func == (lhs: ExportLayout, rhs: ExportLayout) -> Bool {
        lhs.shape == rhs.shape && lhs.sources == rhs.sources && lhs.header == rhs.header && lhs.mapping == rhs.mapping
            && lhs.extras.map(\.index) == rhs.extras.map(\.index)
    }

    static func normalize(_ name: String) -> String {
        name.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: " ", with: "_")
    }

    /// Recognises the layout from the header, or applies `mapping` (staging column → header) when given.
    public init(header: [String], mapping: [String: String]? = nil) throws {
        self.header = header
        let names = header.map(Self.normalize)
        var seen = Set<String>()
        for name in names where !name.isEmpty {
            if !seen.insert(name).inserted { throw LayoutError.duplicateHeader(name) }
        }
        func index(of name: String) -> Int? { names.firstIndex(of: Self.normalize(name)) }
        var table: [String: [String]]
        if let mapping {
            shape = .mapped
            table = [:]
            for (column, source) in mapping {
                guard Self.columns.contains(column) else { throw LayoutError.unknownColumn(column) }
                guard index(of: source) != nil else { throw LayoutError.missingHeader(column: column, header: source) }
                table[column] = [source]
            }
        } else if ["subscription_id", "icc_id", "subscription_status", "mdn"].allSatisfy({ names.contains($0) }) {
            shape = .subscriptionExport
            table = Self.subscriptionExport
        } else if ["external_id", "msisdn", "iccid", "status"].allSatisfy({ names.contains($0) }) {
            shape = .staging
            table = Self.staging
        } else {
            throw LayoutError.unknownHeader(header)
        }
        self.mapping = mapping
        var sources: [String: [Int]] = [:]
        for (column, headers) in table {
            let indexes = headers.compactMap(index(of:))
            if !indexes.isEmpty { sources[column] = indexes }
        }
        guard sources["subscriber_ref"] != nil else { throw LayoutError.noSubscriberID }
        self.sources = sources
        let used = Set(sources.values.flatMap { $0 })
        extras = header.indices.filter { !used.contains($0) && !names[$0].isEmpty }.map { ($0, header[$0]) }
    }

    /// Reads a mapping file: `wingtel_column = File header` per line, `#` comments.
    public static func parseMapping(_ text: String) throws -> [String: String] {
        var mapping: [String: String] = [:]
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else { throw LayoutError.mappingSyntax(line: offset + 1, text: line) }
            let column = line[..<equals].trimmingCharacters(in: .whitespaces)
            let source = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !column.isEmpty, !source.isEmpty else { throw LayoutError.mappingSyntax(line: offset + 1, text: line) }
            guard columns.contains(column) else { throw LayoutError.unknownColumn(column) }
            mapping[column] = source
        }
        return mapping
    }

    /// The staging values of one record, in `columns` order, and its other columns as a JSON object.
    public func values(of fields: [String]) -> (values: [String?], extra: String) {
        var values: [String?] = []
        values.reserveCapacity(Self.columns.count)
        for column in Self.columns {
            var value: String?
            for index in sources[column] ?? [] where index < fields.count {
                if !fields[index].isEmpty {
                    value = fields[index]
                    break
                }
            }
            values.append(value)
        }
        var extra = "{"
        var first = true
        for (index, name) in extras where index < fields.count && !fields[index].isEmpty {
            if !first { extra += "," }
            first = false
            extra += Self.jsonString(name) + ":" + Self.jsonString(fields[index])
        }
        extra += "}"
        return (values, extra)
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
