import Foundation

/// Splits a SQL script into statements the way the Supabase CLI does
/// (`supabase db push` records the result in `supabase_migrations.schema_migrations.statements`).
///
/// A `;` ends a statement unless it stands inside a string (`'…'`, `"…"`, `E'…'`),
/// a dollar-quoted body (`$$…$$`, `$tag$…$tag$`), a line or block comment (block
/// comments nest), parentheses, or a `BEGIN ATOMIC … END` function body. Each
/// statement keeps its comments and inner whitespace; the trailing `;` and the
/// surrounding whitespace are trimmed, and empty pieces are dropped. A file whose
/// tail after the last `;` holds only a comment yields that comment as a last
/// statement, exactly as the CLI records it.
///
/// One deliberate difference: inside an `E'…'` string a backslash escapes the next
/// character (PostgreSQL's rule). The CLI's splitter mis-splits such strings; for
/// every script it splits correctly, the two agree.
public enum SQLSplitter {
    public static func split(_ sql: String) -> [String] {
        let bytes = Array(sql.utf8)
        var statements: [String] = []
        var start = 0
        var index = 0
        var parenDepth = 0
        var atomicDepth = 0
        var caseDepth = 0
        let count = bytes.count

        func emit(upTo end: Int) {
            let piece = String(decoding: bytes[start..<end], as: UTF8.self)
            let trimmed = trimStatement(piece)
            if !trimmed.isEmpty { statements.append(trimmed) }
            start = end
        }

        while index < count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "-") where index + 1 < count && bytes[index + 1] == UInt8(ascii: "-"):
                // Line comment: runs to the end of the line.
                index += 2
                while index < count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            case UInt8(ascii: "/") where index + 1 < count && bytes[index + 1] == UInt8(ascii: "*"):
                // Block comment, nesting as PostgreSQL's do.
                var depth = 1
                index += 2
                while index < count && depth > 0 {
                    if bytes[index] == UInt8(ascii: "/") && index + 1 < count && bytes[index + 1] == UInt8(ascii: "*") {
                        depth += 1
                        index += 2
                    } else if bytes[index] == UInt8(ascii: "*") && index + 1 < count && bytes[index + 1] == UInt8(ascii: "/") {
                        depth -= 1
                        index += 2
                    } else {
                        index += 1
                    }
                }
                continue
            case UInt8(ascii: "'"):
                let escapes =
                    index > 0 && (bytes[index - 1] == UInt8(ascii: "E") || bytes[index - 1] == UInt8(ascii: "e"))
                    && (index < 2 || !isIdentifierByte(bytes[index - 2]))
                index = skipQuoted(bytes, from: index, delimiter: UInt8(ascii: "'"), backslashEscapes: escapes)
                continue
            case UInt8(ascii: "\""):
                index = skipQuoted(bytes, from: index, delimiter: UInt8(ascii: "\""), backslashEscapes: false)
                continue
            case UInt8(ascii: "$"):
                if let end = skipDollarQuoted(bytes, from: index) {
                    index = end
                    continue
                }
            case UInt8(ascii: "("):
                parenDepth += 1
            case UInt8(ascii: ")"):
                if parenDepth > 0 { parenDepth -= 1 }
            case UInt8(ascii: ";") where parenDepth == 0 && atomicDepth == 0:
                emit(upTo: index + 1)
            default:
                if isIdentifierByte(byte) && (index == 0 || !isIdentifierByte(bytes[index - 1])) {
                    var end = index
                    while end < count && isIdentifierByte(bytes[end]) { end += 1 }
                    let word = String(decoding: bytes[index..<end], as: UTF8.self).lowercased()
                    if word == "atomic" && index > 0 && isSpace(bytes[index - 1]) && parenDepth == 0 {
                        atomicDepth += 1
                    } else if word == "case" && atomicDepth > 0 {
                        caseDepth += 1
                    } else if word == "end" && atomicDepth > 0 && parenDepth == 0 {
                        // `CASE … END` inside an atomic body does not close it.
                        if caseDepth > 0 { caseDepth -= 1 } else { atomicDepth -= 1 }
                    } else if word == "end" && caseDepth > 0 {
                        caseDepth -= 1
                    }
                    index = end
                    continue
                }
            }
            index += 1
        }
        if start < count { emit(upTo: count) }
        return statements
    }

    /// True when a statement holds nothing but comments and whitespace.
    public static func isCommentOnly(_ statement: String) -> Bool {
        stripLeadingComments(statement).isEmpty
    }

    /// The statement with leading comments and whitespace removed.
    public static func stripLeadingComments(_ statement: String) -> String {
        var rest = Substring(statement)
        while true {
            rest = rest.drop(while: { $0.isWhitespace })
            if rest.hasPrefix("--") {
                if let newline = rest.firstIndex(of: "\n") {
                    rest = rest[rest.index(after: newline)...]
                } else {
                    return ""
                }
            } else if rest.hasPrefix("/*") {
                var depth = 0
                var cursor = rest.startIndex
                while cursor < rest.endIndex {
                    let next = rest.index(after: cursor)
                    if rest[cursor] == "/" && next < rest.endIndex && rest[next] == "*" {
                        depth += 1
                        cursor = rest.index(after: next)
                    } else if rest[cursor] == "*" && next < rest.endIndex && rest[next] == "/" {
                        depth -= 1
                        cursor = rest.index(after: next)
                        if depth == 0 { break }
                    } else {
                        cursor = next
                    }
                }
                if depth != 0 { return "" }
                rest = rest[cursor...]
            } else {
                return String(rest)
            }
        }
    }

    static func trimStatement(_ piece: String) -> String {
        var text = Substring(piece)
        while text.last == ";" { text = text.dropLast() }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func skipQuoted(_ bytes: [UInt8], from start: Int, delimiter: UInt8, backslashEscapes: Bool) -> Int {
        var index = start + 1
        while index < bytes.count {
            let byte = bytes[index]
            if backslashEscapes && byte == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            if byte == delimiter {
                if index + 1 < bytes.count && bytes[index + 1] == delimiter {
                    index += 2
                    continue
                }
                return index + 1
            }
            index += 1
        }
        return bytes.count
    }

    /// Returns the index after the closing tag when `$tag$` opens a dollar quote at `start`.
    private static func skipDollarQuoted(_ bytes: [UInt8], from start: Int) -> Int? {
        // `$1` and identifiers such as `a$b` are not quotes.
        if start > 0 && isIdentifierByte(bytes[start - 1]) { return nil }
        var end = start + 1
        while end < bytes.count && bytes[end] != UInt8(ascii: "$") {
            let byte = bytes[end]
            let allowed = isLetterOrUnderscore(byte) || (end > start + 1 && isDigit(byte))
            if !allowed { return nil }
            end += 1
        }
        guard end < bytes.count else { return nil }
        let tag = Array(bytes[start...end])
        var cursor = end + 1
        while cursor + tag.count <= bytes.count {
            if bytes[cursor] == UInt8(ascii: "$") && Array(bytes[cursor..<cursor + tag.count]) == tag {
                return cursor + tag.count
            }
            cursor += 1
        }
        return bytes.count
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    private static func isLetterOrUnderscore(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte >= 0x80
    }
    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        isLetterOrUnderscore(byte) || isDigit(byte) || byte == UInt8(ascii: "$")
    }
    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C
    }
}
