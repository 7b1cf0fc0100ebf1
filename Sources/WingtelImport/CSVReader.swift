/// A strict reader of RFC 4180 CSV as exports write it: UTF-8 with or without a byte-order
/// mark, LF or CRLF line ends, quoted fields that hold commas, doubled quotes and line breaks.
///
/// A record that cannot be taken (invalid UTF-8, a stray quote) is handed over with its
/// problem so the caller can keep it with its line number; only a quote that is never closed
/// stops the reading, because everything after it would be read wrongly.
public struct CSVReader: Sendable {
    public struct Record: Sendable, Equatable {
        /// The physical line (1-based) the record starts on.
        public var line: Int
        public var fields: [String]
        /// Why the record could not be read as it stands (its fields are then best effort).
        public var problem: String?
    }

    public enum ReadError: Error, Equatable, CustomStringConvertible, Sendable {
        case unterminatedQuote(line: Int)
        public var description: String {
            switch self {
            case .unterminatedQuote(let line):
                return
                    "line \(line): a quoted field is never closed (a missing \"), so the rest of the file cannot be read; fix the quote and import again"
            }
        }
    }

    private let bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Calls `body` with each non-blank record, in order.
    public func forEachRecord(_ body: (Record) throws -> Void) throws {
        let quote: UInt8 = 34
        let comma: UInt8 = 44
        let newline: UInt8 = 10
        let carriageReturn: UInt8 = 13
        var index = 0
        let end = bytes.count
        if end >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { index = 3 }
        var line = 1
        var fields: [String] = []
        var field: [UInt8] = []
        field.reserveCapacity(64)
        var recordLine = 1
        var problem: String?
        var recordHasContent = false

        func finishField() {
            if let text = String(validating: field, as: UTF8.self) {
                fields.append(text)
            } else {
                fields.append(String(decoding: field, as: UTF8.self))
                if problem == nil { problem = "invalid UTF-8 in field \(fields.count); save the export as UTF-8" }
            }
            field.removeAll(keepingCapacity: true)
        }
        func finishRecord() throws {
            finishField()
            if recordHasContent || fields.count > 1 || !(fields.first ?? "").isEmpty {
                try body(Record(line: recordLine, fields: fields, problem: problem))
            }
            fields.removeAll(keepingCapacity: true)
            problem = nil
            recordHasContent = false
        }

        while index < end {
            let byte = bytes[index]
            if byte == quote && field.isEmpty {
                // A quoted field: up to the closing quote; "" is a quote inside.
                let opened = line
                recordHasContent = true
                index += 1
                var closed = false
                while index < end {
                    let inner = bytes[index]
                    if inner == quote {
                        if index + 1 < end && bytes[index + 1] == quote {
                            field.append(quote)
                            index += 2
                            continue
                        }
                        index += 1
                        closed = true
                        break
                    }
                    if inner == newline { line += 1 }
                    field.append(inner)
                    index += 1
                }
                if !closed { throw ReadError.unterminatedQuote(line: opened) }
                // After the closing quote: a comma, the end of the line or of the file.
                while index < end && bytes[index] != comma && bytes[index] != newline && bytes[index] != carriageReturn {
                    if problem == nil {
                        problem = "text after a closing quote in field \(fields.count + 1) (a quote inside a field must be doubled)"
                    }
                    field.append(bytes[index])
                    index += 1
                }
                continue
            }
            switch byte {
            case comma:
                recordHasContent = true
                finishField()
                index += 1
            case carriageReturn where index + 1 < end && bytes[index + 1] == newline:
                index += 1  // the \n ends the record
            case newline:
                try finishRecord()
                line += 1
                recordLine = line
                index += 1
            default:
                field.append(byte)
                index += 1
            }
        }
        if !field.isEmpty || !fields.isEmpty || recordHasContent { try finishRecord() }
    }
}
