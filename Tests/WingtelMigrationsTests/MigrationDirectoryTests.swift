import Foundation
import Testing
import WingtelDatabase
import WingtelTestSupport

@testable import WingtelMigrations

@Suite("Reading supabase/migrations")
struct MigrationDirectoryTests {
    @Test("a missing folder is a clear error that says what to do")
    func missingFolder() throws {
        let directory = MigrationDirectory(url: URL(fileURLWithPath: "/nonexistent/supabase/migrations"))
        #expect {
            try directory.load()
        } throws: { error in
            guard case MigrationError.folderMissing = error else { return false }
            return "\(error)".contains("wingtel db new")
        }
    }

    @Test("a file that is not UTF-8 is refused, naming the file")
    func corruptFile() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try Data([0x63, 0x72, 0xFF, 0xFE, 0x3B]).write(to: folder.url.appendingPathComponent("20260101000000_bad.sql"))
        #expect {
            try MigrationDirectory(url: folder.url).load()
        } throws: { error in
            "\(error)".contains("20260101000000_bad.sql") && "\(error)".contains("UTF-8")
        }
    }

    @Test("two files with one version are refused; misnamed files are skipped with the CLI's notice")
    func duplicatesAndSkips() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try folder.write("20260101000000_a.sql", "select 1;")
        try folder.write("notes.sql", "select 2;")
        try folder.write("README.md", "ignored")
        var skipped: [String] = []
        let files = try MigrationDirectory(url: folder.url).load { skipped.append($0) }
        #expect(files.map(\.version) == ["20260101000000"])
        #expect(skipped.count == 1 && skipped[0].contains("notes.sql"))
        try folder.write("20260101000000_b.sql", "select 3;")
        #expect(throws: MigrationError.self) { try MigrationDirectory(url: folder.url).load() }
    }

    @Test("versions sort by number, as the CLI sorts them")
    func numericOrder() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try folder.write("9_early.sql", "select 1;")
        try folder.write("10_later.sql", "select 2;")
        #expect(try MigrationDirectory(url: folder.url).load().map(\.version) == ["9", "10"])
    }

    @Test("db new writes <UTC timestamp>_name.sql and never reuses a version")
    func newMigration() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let directory = MigrationDirectory(url: folder.url.appendingPathComponent("migrations"))
        let moment = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18 11:06:40 UTC
        let first = try directory.newMigration(named: "add_plans", now: moment)
        let second = try directory.newMigration(named: "add_plans_again", now: moment)
        #expect(first.lastPathComponent == "20261118110640_add_plans.sql")
        #expect(second.lastPathComponent == "20261118110641_add_plans_again.sql")
        #expect(throws: MigrationError.self) { try directory.newMigration(named: "bad name; drop") }
    }

    @Test(
        "statements that cannot run in a transaction are recognised",
        arguments: [
            ("create index concurrently i on t (a)", true),
            ("-- note\nCREATE UNIQUE INDEX CONCURRENTLY i ON t (a)", true),
            ("drop index concurrently if exists i", true),
            ("reindex index concurrently i", true),
            ("vacuum analyze t", true),
            ("alter system set work_mem = '64MB'", true),
            ("create index i on t (a)", false),
            ("create table concurrently_named (a int)", false),
            ("comment on index i is 'built concurrently'", false),
        ])
    func nonTransactional(statement: String, expected: Bool) {
        #expect(MigrationFile.cannotRunInTransaction(statement) == expected)
    }

    @Test("an error position is marked with a caret under the statement, as the CLI marks it")
    func caret() {
        let marked = MigrationError.markError("create table a (id int);\ncreate tabel b", position: 33)
        #expect(marked == "create table a (id int);\ncreate tabel b\n       ^")
    }
}
