/// COPY's text format: tab-separated fields, `\N` for null, backslash escapes.
public enum CopyText {
    public static func field(_ value: String?) -> String {
        guard let value else { return "\\N" }
        guard value.utf8.contains(where: { $0 == 92 || $0 == 9 || $0 == 10 || $0 == 13 }) else { return value }
        var escaped = ""
        escaped.reserveCapacity(value.utf8.count + 8)
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\t": escaped += "\\t"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// One row: fields escaped, joined by tabs, ended by a newline.
    public static func row(_ fields: [String?]) -> String {
        fields.map(field).joined(separator: "\t") + "\n"
    }
}
