import Foundation
import NIOCore
import Testing

@testable import WingtelUsage

@Suite("Reading usage files")
struct UsageFileTests {
    @Test("the header may name the columns in any order, with extra ones, behind a BOM")
    func header() throws {
        let reader = try UsageFileReader(header: "\u{FEFF}record_id,extra,MDN,recorded_at,kind,quantity", file: "f.csv")
        let row = reader.row("r1,x,3125550101,2026-03-01T10:00:00Z,Data,42", number: 2)
        #expect(
            row
                == .init(
                    lineNumber: 2, mdn: "3125550101", recordedAt: "2026-03-01T10:00:00Z", kind: "data", quantity: 42, recordID: "r1",
                    problem: nil))
    }

    @Test("a header without the required columns is refused, naming them")
    func missingColumns() {
        #expect {
            try UsageFileReader(header: "mdn,when,kind,amount,record_id", file: "bad.csv")
        } throws: { "\($0)".contains("bad.csv has no column recorded_at, quantity") }
    }

    @Test("quoted fields, doubled quotes and empty fields")
    func quoting() throws {
        #expect(UsageFileReader.fields(of: #""(312) 555-0101","a ""b"", c",,x"#) == ["(312) 555-0101", "a \"b\", c", "", "x"])
    }

    @Test(
        "each kind of bad line is kept with its number and a reason",
        arguments: [
            ("3125550101,2026-03-01T10:00:00Z,data,5", "line 9: expected at least 5 columns, found 4"),
            (",2026-03-01T10:00:00Z,data,5,r", "line 9: no MDN"),
            (
                "3125550101,2026-13-01T10:00:00Z,data,5,r",
                "line 9: unreadable start time \"2026-13-01T10:00:00Z\" (use ISO 8601, such as 2026-03-01T10:00:00Z)"
            ),
            ("3125550101,2026-03-01T10:00:00Z,fax,5,r", "line 9: unknown usage kind \"fax\" (data, voice or sms)"),
            ("3125550101,2026-03-01T10:00:00Z,data,5.5,r", "line 9: quantity \"5.5\" is not a whole number"),
            ("3125550101,2026-03-01T10:00:00Z,data,5,", "line 9: no record id"),
        ])
    func badLines(line: String, reason: String) throws {
        let reader = try UsageFileReader(header: "mdn,recorded_at,kind,quantity,record_id", file: "f.csv")
        #expect(reader.row(line, number: 9).problem == reason)
    }

    @Test(
        "timestamps PostgreSQL reads are accepted; others are not",
        arguments: [
            ("2026-03-01T10:00:00Z", true), ("2026-03-01 10:00:00+00", true), ("2026-03-01T10:00:00.123456-05:00", true),
            ("2026-03-01T10:00", true), ("2026-03-01T10:00:00+0530", true),
            ("2026-03-01", false), ("2026-03-01T25:00:00Z", false), ("01/03/2026 10:00", false), ("2026-03-01T10:00:00ZZ", false),
        ])
    func timestamps(text: String, valid: Bool) {
        #expect(UsageFileReader.isTimestamp(text) == valid)
    }

    @Test("COPY text format escapes backslashes, tabs and line breaks and writes nulls as \\N")
    func copyLine() {
        let row = UsageFileReader.Row(
            lineNumber: 3, mdn: "a\\b", recordedAt: nil, kind: "sms", quantity: nil, recordID: "x\ty", problem: "p\nq")
        #expect(UsageFileReader.copyLine(row) == "3\ta\\\\b\t\\N\tsms\t\\N\tx\\ty\tp\\nq\n")
    }

    @Test(
        "the byte-level path writes exactly what the careful path writes, for plain and unusual lines alike",
        arguments: [
            "3125550101,2026-03-01T10:00:00Z,data,1048576,r-1",
            " 3125550101 , 2026-03-01 10:00:00+00 ,VOICE, +60 ,r-2",
            "3125550101,2026-03-01T10:00:00.5-05:00,Sms,007,r-3,extra,columns",
            "3125550101,2026-03-01T10:00:00Z,data,-5,r-4",
            "3125550101,2026-03-01T10:00:00Z,data,9223372036854775807,r-5",
            "3125550101,2026-03-01T10:00:00Z,data,9223372036854775808,r-6",
            "3125550101,2026-03-01T10:00:00Z,data,-9223372036854775808,r-7",
            "3125550101,2026-03-01T10:00:00Z,data,,r-8", "3125550101,2026-03-01T10:00:00Z,data,+,r-9",
            "\"(312) 555-0101\",2026-03-01T10:00:00Z,data,1,r-10", "3125550101,2026-03-01T10:00:00Z,data,1,r\\11",
            "3125550101,2026-03-01T10:00:00Z,data,1,r\t12", "3125550101,2026-03-01T10:00:00Z,dätä,1,r-13",
            "3125550101,2026-02-30T10:00:00Z,data,1,r-14", "3125550101,2026-03-01T10:00:00Z,fax,1,r-15",
            ",2026-03-01T10:00:00Z,data,1,r-16", "3125550101,2026-03-01T10:00:00Z,data,1,", "3125550101,2026-03-01T10:00:00Z,data,1",
            "", "   ,   ,   ,   ,   ",
        ])
    func bytePath(line: String) throws {
        for header in ["mdn,recorded_at,kind,quantity,record_id", "record_id,mdn,recorded_at,kind,quantity"] {
            let reader = try UsageFileReader(header: header, file: "f.csv")
            var text = line
            if header.hasPrefix("record_id") {  // the same fields in the other layout
                var fields = UsageFileReader.fields(of: line)
                if fields.count >= 5 { fields.insert(fields.remove(at: 4), at: 0) }
                text = fields.joined(separator: ",")
                if line.contains("\"") { continue }
            }
            var buffer = ByteBuffer()
            var numbers = NumberSet()
            var bytes = text
            bytes.withUTF8 { reader.appendCopyLine(UnsafeRawBufferPointer($0), number: 12, to: &buffer, numbers: &numbers) }
            let careful = reader.row(text, number: 12)
            #expect(buffer.readString(length: buffer.readableBytes) == UsageFileReader.copyLine(careful))
            #expect(numbers.all == (careful.problem == nil ? [careful.mdn!] : []), "the numbers ingest_usage resolves")
        }
    }

    @Test("numbers are distinct byte for byte, as PostgreSQL compares them, not by canonical equivalence")
    func numberSet() {
        var numbers = NumberSet()
        for number in ["3125550101", "3125550101", "caf\u{E9}", "cafe\u{301}", "caf\u{E9}"] { numbers.insert(number) }
        #expect(numbers.count == 3)
        #expect(Set(numbers.all.map { Array($0.utf8) }) == [Array("3125550101".utf8), Array("caf\u{E9}".utf8), Array("cafe\u{301}".utf8)])
    }

    @Test("whole numbers are read as Int64(String) reads them")
    func wholeNumbers() {
        for text in ["0", "-0", "+12", "0012", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "", "-", "1e3", "1 2"]
        {
            var copy = text
            let parsed = copy.withUTF8 { UsageFileReader.int64(UnsafeRawBufferPointer($0)) }
            #expect(parsed == Int64(text), "\(text)")
        }
    }
}
