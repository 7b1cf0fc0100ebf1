import Foundation

/// A JSON value (`json`/`jsonb` columns and arguments).
public enum JSONValue: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }
}

/// A calendar date without time or zone (`date` columns), written `YYYY-MM-DD`.
public struct WingtelDate: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    public init?(_ text: String) {
        let parts = text.prefix(10).split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        self.init(year: parts[0], month: parts[1], day: parts[2])
    }

    public var description: String { String(format: "%04d-%02d-%02d", year, month, day) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let date = WingtelDate(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a date: \(text)"))
        }
        self = date
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (lhs: WingtelDate, rhs: WingtelDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }
}

/// A pgvector `vector`. PostgreSQL and PostgREST write it as the text `[1,2,3]`; a JSON array is accepted too.
public struct WingtelVector: Codable, Sendable, Hashable, ExpressibleByArrayLiteral {
    public var values: [Float]

    public init(_ values: [Float]) { self.values = values }
    public init(arrayLiteral elements: Float...) { self.values = elements }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let values = try? container.decode([Float].self) {
            self.values = values
            return
        }
        let text = try container.decode(String.self)
        let body = text.trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
        self.values =
            body.isEmpty
            ? []
            : try body.split(separator: ",").map {
                guard let value = Float($0.trimmingCharacters(in: .whitespaces)) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a vector: \(text)"))
                }
                return value
            }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode("[" + values.map { String($0) }.joined(separator: ",") + "]")
    }
}

/// The result of a function that returns nothing.
public struct WingtelVoid: Codable, Sendable, Hashable {
    public init() {}
    public init(from decoder: any Decoder) throws {}
    public func encode(to encoder: any Encoder) throws {}
}

/// JSON coding as PostgreSQL's `to_jsonb` and PostgREST write it: ISO-8601 timestamps with or
/// without fractional seconds and with `+00:00` offsets.
public enum WingtelJSON {
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a timestamp: \(text)"))
            }
            return date
        }
        return decoder
    }

    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(formatTimestamp(date))
        }
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// Parses `2026-01-05T15:00:00+00:00`, `2026-01-05 15:00:00.123456+00`, `…Z` and zone-less forms (read as UTC).
    public static func parseTimestamp(_ raw: String) -> Date? {
        var text = raw.replacingOccurrences(of: " ", with: "T")
        if text.hasSuffix("Z") { text = String(text.dropLast()) + "+00:00" }
        // Offsets written +HH become +HH:00.
        if let match = text.firstMatch(of: /([+-]\d{2})$/) { text = text.replacingCharacters(in: match.range, with: match.1 + ":00") }
        if text.firstMatch(of: /[+-]\d{2}:\d{2}$/) == nil { text += "+00:00" }
        var fraction = 0.0
        if let match = text.firstMatch(of: /\.(\d+)/) {
            fraction = Double("0." + match.1) ?? 0
            text.removeSubrange(match.range)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        guard let whole = formatter.date(from: text) else { return nil }
        return whole.addingTimeInterval(fraction)
    }

    /// `2026-01-05T15:00:00.123456Z` (microseconds, as PostgreSQL keeps them).
    public static func formatTimestamp(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let micros = Int(((date.timeIntervalSince1970 - seconds) * 1_000_000).rounded())
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let base = formatter.string(from: Date(timeIntervalSince1970: seconds)).dropLast()  // drop Z
        return "\(base).\(String(format: "%06d", min(micros, 999_999)))Z"
    }
}
