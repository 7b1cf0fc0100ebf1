import Foundation
import NIOCore
import WingtelDatabase

/// Reads a usage (CDR) file in Wingtel's canonical CSV layout — a header naming the columns
/// `mdn, recorded_at, kind, quantity, record_id` in any order (other columns are ignored) —
/// and turns each line into a row for COPY. Syntax is checked here; a line that fails keeps
/// its line number and the reason, and ingest_usage quarantines it. Handles a UTF-8 BOM, CRLF
/// line ends and double-quoted fields (not quoted line breaks: usage files have none).
public struct UsageFileReader: Sendable {
    public static let requiredColumns = ["mdn", "recorded_at", "kind", "quantity", "record_id"]

    public enum ReadError: Error, CustomStringConvertible, Sendable {
        case empty(String)
        case missingColumns(String, [String])
        public var description: String {
            switch self {
            case .empty(let file):
                return "\(file) is empty; expected a header line naming \(UsageFileReader.requiredColumns.joined(separator: ", "))"
            case .missingColumns(let file, let columns):
                return
                    "\(file) has no column \(columns.joined(separator: ", ")); the header must name \(UsageFileReader.requiredColumns.joined(separator: ", "))"
            }
        }
    }

    /// One line as it goes to the staging table.
    public struct Row: Equatable, Sendable {
        public var lineNumber: Int
        public var mdn: String?
        public var recordedAt: String?
        public var kind: String?
        public var quantity: Int64?
        public var recordID: String?
        public var problem: String?
    }

    let positions: [Int]  // index of each required column in a line
    let maxPosition: Int

    public init(header: String, file: String) throws(ReadError) {
        var text = header
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let names = Self.fields(of: text).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let missing = Self.requiredColumns.filter { !names.contains($0) }
        guard missing.isEmpty else { throw .missingColumns(file, missing) }
        positions = Self.requiredColumns.map { names.firstIndex(of: $0)! }
        maxPosition = positions.max()!
    }

    /// Splits one CSV line; double quotes group a field and `""` is a quote inside one.
    static func fields(of line: String) -> [String] {
        guard line.contains("\"") else { return line.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        var fields: [String] = []
        var current = ""
        var quoted = false
        var iterator = line.makeIterator()
        var pending: Character? = nil
        while let character = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if character == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" {
                            current.append("\"")
                        } else {
                            quoted = false
                            pending = next
                        }
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "," {
                fields.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        fields.append(current)
        return fields
    }

    /// Parses one data line (without its line end).
    public func row(_ line: String, number: Int) -> Row {
        var row = Row(lineNumber: number)
        let fields = Self.fields(of: line)
        guard fields.count > positions.max()! else {
            row.problem = "line \(number): expected at least \(positions.max()! + 1) columns, found \(fields.count)"
            return row
        }
        let values = positions.map { fields[$0].trimmingCharacters(in: .whitespaces) }
        row.mdn = values[0].isEmpty ? nil : values[0]
        row.recordID = values[4].isEmpty ? nil : values[4]
        if row.mdn == nil { row.problem = "line \(number): no MDN" }
        if Self.isTimestamp(values[1]) {
            row.recordedAt = values[1]
        } else if row.problem == nil {
            row.problem = "line \(number): unreadable start time \"\(values[1])\" (use ISO 8601, such as 2026-03-01T10:00:00Z)"
        }
        let kind = values[2].lowercased()
        if kind == "data" || kind == "voice" || kind == "sms" {
            row.kind = kind
        } else if row.problem == nil {
            row.problem = "line \(number): unknown usage kind \"\(values[2])\" (data, voice or sms)"
        }
        if let quantity = Int64(values[3]) {
            row.quantity = quantity
        } else if row.problem == nil {
            row.problem = "line \(number): quantity \"\(values[3])\" is not a whole number"
        }
        if row.recordID == nil && row.problem == nil { row.problem = "line \(number): no record id" }
        return row
    }

    /// `YYYY-MM-DD[T ]HH:MM[:SS[.f…]][Z|±HH[:MM]]`, with month, day, hour and minute in range.
    static func isTimestamp(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { isTimestamp(UnsafeRawBufferPointer($0)) }
    }

    static func isTimestamp(_ bytes: UnsafeRawBufferPointer) -> Bool {
        func digits(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for index in range {
                guard bytes[index] >= 48 && bytes[index] <= 57 else { return nil }
                value = value * 10 + Int(bytes[index] - 48)
            }
            return value
        }
        guard bytes.count >= 16, digits(0..<4) != nil, bytes[4] == 45, let month = digits(5..<7), bytes[7] == 45,
            let day = digits(8..<10), bytes[10] == 84 || bytes[10] == 32, let hour = digits(11..<13), bytes[13] == 58,
            let minute = digits(14..<16), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60
        else { return false }
        var index = 16
        if index < bytes.count && bytes[index] == 58 {
            guard let second = digits((index + 1)..<(index + 3)), second < 61 else { return false }
            index += 3
            if index < bytes.count && bytes[index] == 46 {
                index += 1
                let start = index
                while index < bytes.count && bytes[index] >= 48 && bytes[index] <= 57 { index += 1 }
                if index == start { return false }
            }
        }
        if index == bytes.count { return true }
        if bytes[index] == 90 { return index + 1 == bytes.count }  // Z
        guard bytes[index] == 43 || bytes[index] == 45, digits((index + 1)..<(index + 3)) != nil else { return false }
        index += 3
        if index == bytes.count { return true }
        if bytes[index] == 58 { index += 1 }
        return digits(index..<(index + 2)) != nil && index + 2 == bytes.count
    }

    /// The row in COPY's text format.
    public static func copyLine(_ row: Row) -> String {
        CopyText.row([String(row.lineNumber), row.mdn, row.recordedAt, row.kind, row.quantity.map(String.init), row.recordID, row.problem])
    }

    /// Appends the COPY line of one data line, given as its bytes without the line end.
    ///
    /// The common line — ASCII, no quotes, backslashes or tabs, every field readable — is checked and
    /// written byte by byte, with no string made. Any other line goes through `row(_:number:)`, which
    /// gives the same result for it and the reason when it is bad.
    ///
    /// The MDN of every readable line is added to `numbers`: the file's distinct numbers, which
    /// ingest_usage resolves to lines (one set insert here costs less than a million-row
    /// `distinct` there).
    public func appendCopyLine(_ line: UnsafeRawBufferPointer, number: Int, to buffer: inout ByteBuffer, numbers: inout NumberSet) {
        if let fields = fastFields(line) {
            let mdn = fields[0]
            let recordedAt = fields[1]
            let kind = Self.kind(fields[2])
            let quantity = Self.int64(fields[3])
            let recordID = fields[4]
            if !mdn.isEmpty, !recordID.isEmpty, let kind, let quantity, Self.isTimestamp(recordedAt) {
                numbers.insertASCII(mdn)
                Self.writeDecimal(Int64(number), to: &buffer)
                buffer.writeInteger(UInt8(9))
                buffer.writeBytes(mdn)
                buffer.writeInteger(UInt8(9))
                buffer.writeBytes(recordedAt)
                buffer.writeInteger(UInt8(9))
                buffer.writeStaticString(kind)
                buffer.writeInteger(UInt8(9))
                Self.writeDecimal(quantity, to: &buffer)
                buffer.writeInteger(UInt8(9))
                buffer.writeBytes(recordID)
                buffer.writeStaticString("\t\\N\n")
                return
            }
        }
        let careful = row(String(decoding: line, as: UTF8.self), number: number)
        if careful.problem == nil, let mdn = careful.mdn { numbers.insert(mdn) }

        buffer.writeString(Self.copyLine(careful))
    }

    /// The required fields of a plain line (space-trimmed, in `requiredColumns` order), or nil when
    /// the line needs the careful path: a byte that is not ASCII, a quote, a backslash, a tab, too few columns.
    private func fastFields(_ line: UnsafeRawBufferPointer) -> InlineArray<5, UnsafeRawBufferPointer>? {
        let needed = maxPosition + 1
        guard needed <= 8 else { return nil }  // wider layouts take the careful path
        var starts = InlineArray<8, Int>(repeating: 0)
        var ends = InlineArray<8, Int>(repeating: 0)
        var field = 0
        var start = 0
        var index = 0
        let count = line.count
        while index < count {
            let byte = line[index]
            if byte >= 0x80 || byte == 34 || byte == 92 || byte == 9 { return nil }
            if byte == 44 {
                starts[field] = start
                ends[field] = index
                field += 1
                start = index + 1
                if field == needed { break }
            }
            index += 1
        }
        if field < needed {
            starts[field] = start
            ends[field] = count
            field += 1
        }
        guard field >= needed else { return nil }
        var fields = InlineArray<5, UnsafeRawBufferPointer>(repeating: UnsafeRawBufferPointer(start: nil, count: 0))
        for column in 0..<5 {
            var lower = starts[positions[column]]
            var upper = ends[positions[column]]
            while lower < upper && line[lower] == 32 { lower += 1 }
            while upper > lower && line[upper - 1] == 32 { upper -= 1 }
            fields[column] = UnsafeRawBufferPointer(rebasing: line[lower..<upper])
        }
        return fields
    }

    /// `data`, `voice` or `sms` in any case.
    static func kind(_ bytes: UnsafeRawBufferPointer) -> StaticString? {
        func matches(_ word: StaticString) -> Bool {
            guard bytes.count == word.utf8CodeUnitCount else { return false }
            let expected = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
            for index in 0..<bytes.count where bytes[index] | 0x20 != expected[index] { return false }
            return true
        }
        if matches("data") { return "data" }
        if matches("voice") { return "voice" }
        if matches("sms") { return "sms" }
        return nil
    }

    /// A whole number as `Int64(String)` reads it: an optional sign and digits, within range.
    static func int64(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var index = 0
        var negative = false
        if let first = bytes.first, first == 43 || first == 45 {
            negative = first == 45
            index = 1
        }
        guard index < bytes.count else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- 48
            guard digit < 10 else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) =
                negative ? times.subtractingReportingOverflow(Int64(digit)) : times.addingReportingOverflow(Int64(digit))
            if overflow1 || overflow2 { return nil }
            value = next
            index += 1
        }
        return value
    }

    static func writeDecimal(_ value: Int64, to buffer: inout ByteBuffer) {
        if value < 0 { buffer.writeInteger(UInt8(45)) }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        var magnitude = value.magnitude
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[23 - count] = UInt8(48 + magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(24 - count)...]))
        }
    }
}

/// The distinct numbers of a file, compared byte for byte as PostgreSQL compares text. (A Swift
/// `String` compares by canonical equivalence, under which two different byte sequences can be
/// equal; ASCII is the exception, and almost every number is ASCII.)
public struct NumberSet: Sendable {
    var ascii = Set<String>()
    var other = Set<[UInt8]>()

    public init() {}

    /// A number known to be ASCII (the byte-level path's).
    mutating func insertASCII(_ bytes: UnsafeRawBufferPointer) {
        ascii.insert(String(decoding: bytes, as: UTF8.self))  // ≤ 15 bytes: stored inline, no allocation
    }

    public mutating func insert(_ number: String) {
        if number.utf8.allSatisfy({ $0 < 0x80 }) {
            ascii.insert(number)
        } else {
            other.insert(Array(number.utf8))
        }
    }

    public var count: Int { ascii.count + other.count }

    /// Each number once.
    public var all: [String] { Array(ascii) + other.map { String(decoding: $0, as: UTF8.self) } }
}
