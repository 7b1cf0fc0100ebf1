/// Swift names for SQL names: PascalCase types, camelCase members, keywords escaped.
public enum Naming {
    static let keywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init", "inout", "internal",
        "let", "open", "operator", "private", "precedencegroup", "protocol", "public", "rethrows", "static", "struct",
        "subscript", "typealias", "var", "break", "case", "catch", "continue", "default", "defer", "do", "else",
        "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw", "switch", "where", "while", "as", "await",
        "false", "is", "nil", "self", "super", "throws", "true", "try", "Any", "Self", "Type", "Protocol",
    ]
    /// Names a nested type may not take (they mean something on every type).
    static let reservedTypeNames: Set<String> = [
        "Type", "Protocol", "Self", "Any", "Row", "Insert", "Update", "Result", "Functions", "CodingKeys",
    ]

    static func words(_ sql: String) -> [String] {
        var words: [String] = []
        var current = ""
        for character in sql {
            if character.isLetter || character.isNumber {
                current.append(character)
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    static func pascal(_ sql: String) -> String {
        let joined = words(sql).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        if joined.isEmpty { return "Unnamed" }
        return joined.first!.isNumber ? "T" + joined : joined
    }

    /// A type name (tables, enums, functions), never one of the reserved nested names.
    public static func typeName(_ sql: String) -> String {
        let name = pascal(sql)
        return reservedTypeNames.contains(name) ? name + "_" : name
    }

    public static func namespace(_ schema: String) -> String { pascal(schema) }

    /// A property, argument or enum case name; keywords in backticks.
    public static func memberName(_ sql: String) -> String {
        let parts = words(sql)
        guard let first = parts.first else { return "_unnamed" }
        var name = first.lowercased() + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        if name.first!.isNumber { name = "_" + name }
        return keywords.contains(name) ? "`\(name)`" : name
    }

    /// The name without backticks, as Swift uses it for raw values.
    static func bare(_ member: String) -> String { member.replacingOccurrences(of: "`", with: "") }

    /// A Swift string literal.
    public static func literal(_ text: String) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return "\"\(escaped)\""
    }
}
