import Testing
import WingtelImport

@Suite("Reading export files")
struct CSVReaderTests {
    func records(_ text: String) throws -> [CSVReader.Record] {
        try records(Array(text.utf8))
    }

    func records(_ bytes: [UInt8]) throws -> [CSVReader.Record] {
        var out: [CSVReader.Record] = []
        try CSVReader(bytes).forEachRecord { out.append($0) }
        return out
    }

    @Test("quoted fields keep commas, doubled quotes and line breaks; each record knows the line it starts on")
    func quoting() throws {
        let read = try records("a,b,c\n1,\"x, y\",\"say \"\"hi\"\"\"\n2,\"two\nlines\",z\n\n3,,\n")
        #expect(read.map(\.line) == [1, 2, 3, 6])
        #expect(read[1].fields == ["1", "x, y", "say \"hi\""])
        #expect(read[2].fields == ["2", "two\nlines", "z"])
        #expect(read[3].fields == ["3", "", ""])
        #expect(read.allSatisfy { $0.problem == nil })
    }

    @Test("a byte-order mark and CRLF line ends are read like plain UTF-8 with LF; a last line without a newline counts")
    func bomAndCRLF() throws {
        let read = try records([0xEF, 0xBB, 0xBF] + Array("id,name\r\n1,\"Zoë\r\nBrown\"\r\n2,Al".utf8))
        #expect(read.map(\.fields) == [["id", "name"], ["1", "Zoë\r\nBrown"], ["2", "Al"]])
        #expect(read.map(\.line) == [1, 2, 4])
    }

    @Test("invalid UTF-8 marks its record, which is still handed over with its line")
    func invalidUTF8() throws {
        let read = try records(Array("a,b\n1,ok\n".utf8) + [50, 44, 0xC3, 0x28, 10] + Array("3,fine\n".utf8))
        #expect(read.count == 4)
        #expect(read[2].line == 3)
        #expect(read[2].problem?.contains("invalid UTF-8") == true)
        #expect(read[3].problem == nil)
    }

    @Test("a quote that is never closed stops the reading with the line it opened on")
    func unterminated() throws {
        #expect(throws: CSVReader.ReadError.unterminatedQuote(line: 3)) {
            _ = try records("a,b\n1,2\n3,\"open\n4,5\n")
        }
    }

    @Test("text after a closing quote is a problem of that record")
    func strayQuote() throws {
        let read = try records("a,b\n1,\"x\"y\n")
        #expect(read[1].fields == ["1", "xy"])
        #expect(read[1].problem?.contains("must be doubled") == true)
    }
}

@Suite("Recognising export layouts")
struct ExportLayoutTests {
    @Test("BeQuick's subscription export and the staging shape are recognised by their header")
    func shapes() throws {
        let subscription = try ExportLayout(header: [
            "network", "subscription_id", "first_name", "last_name", "mdn", "device_id", "icc_id", "user_profile_id", "subscription_status",
            "effective_date", "expiration_date", "expiration_type", "email", "plan_name", "plan_price", "reference", "plan_id",
        ])
        #expect(subscription.shape == .subscriptionExport)
        #expect(subscription.extras.map(\.name) == ["expiration_type", "reference"])
        let (values, extra) = subscription.values(of: [
            "Verizon", "S1", "Ann", "Lee", "3125550100", "", "8901", "P1", "active", "2026-01-01", "", "", "a@b.co", "5 GB", "25",
            "note \"x\"",
            "PL",
        ])
        let named = Dictionary(uniqueKeysWithValues: zip(ExportLayout.columns, values))
        #expect(named["subscriber_ref"] == "S1")
        #expect(named["account_ref"] == "P1")
        #expect(named["carrier"] == "Verizon")  // network stands in for an empty carrier column
        #expect(named["imei"] == .some(nil))
        #expect(extra == #"{"reference":"note \"x\""}"#)

        let staging = try ExportLayout(header: ["External_ID", "email", "MSISDN", "iccid", "status", "zip_code"])
        #expect(staging.shape == .staging)
    }

    @Test("another layout needs a mapping; a mapping naming a missing header or an unknown column is refused")
    func mapping() throws {
        #expect(throws: ExportLayout.LayoutError.self) { try ExportLayout(header: ["Phone", "Sim", "Customer"]) }
        let mapping = try ExportLayout.parseMapping("# ours = theirs\nsubscriber_ref = Customer\nmdn = Phone\n\niccid=Sim\n")
        #expect(mapping == ["subscriber_ref": "Customer", "mdn": "Phone", "iccid": "Sim"])
        #expect(try ExportLayout(header: ["Phone", "Sim", "Customer"], mapping: mapping).shape == .mapped)
        #expect(throws: ExportLayout.LayoutError.missingHeader(column: "mdn", header: "Phone")) {
            try ExportLayout(header: ["Cell", "Sim", "Customer"], mapping: mapping)
        }
        #expect(throws: ExportLayout.LayoutError.unknownColumn("phone_no")) { try ExportLayout.parseMapping("phone_no = Phone") }
        #expect(throws: ExportLayout.LayoutError.mappingSyntax(line: 1, text: "subscriber_ref Customer")) {
            try ExportLayout.parseMapping("subscriber_ref Customer")
        }
        #expect(throws: ExportLayout.LayoutError.duplicateHeader("mdn")) {
            try ExportLayout(header: ["subscription_id", "icc_id", "subscription_status", "mdn", "MDN"])
        }
    }
}
