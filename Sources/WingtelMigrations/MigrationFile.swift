import Crypto
import Foundation
import WingtelDatabase

/// One file of `supabase/migrations`: `<version>_<name>.sql`, split into statements
/// exactly as the Supabase CLI records them.
public struct MigrationFile: Sendable, Equatable {
    public var version: String
    public var name: String
    public var fileName: String
    public var statements: [String]
    /// Lower-case hex SHA-256 of the file's bytes.
    public var checksum: String

    /// Whether a statement must run outside a transaction (`CREATE INDEX CONCURRENTLY` and kin);
    /// such a file runs statement by statement, with its history row written last.
    public var requiresNoTransaction: Bool {
        statements.contains(where: Self.cannotRunInTransaction)
    }

    public init(version: String, name: String, fileName: String, contents: Data) throws(MigrationError) {
        guard let text = String(data: contents, encoding: .utf8) else {
            throw .unreadable(fileName, reason: "it is not valid UTF-8")
        }
        self.version = version
        self.name = name
        self.fileName = fileName
        self.statements = SQLSplitter.split(text)
        self.checksum = sha256Hex(contents)
    }

    /// Statements PostgreSQL refuses inside a transaction block.
    public static func cannotRunInTransaction(_ statement: String) -> Bool {
        let words = SQLSplitter.stripLeadingComments(statement).lowercased()
            .split(whereSeparator: { $0.isWhitespace || $0 == "(" }).prefix(5).map(String.init)
        guard let first = words.first else { return false }
        switch first {
        case "vacuum":
            return true
        case "create", "drop":
            if words.count > 1 && words[1] == "database" { return true }
            if words.count > 1 && words[1] == "tablespace" { return true }
            let rest = words.dropFirst()
            let index = rest.firstIndex(of: "index")
            return index != nil && rest.contains("concurrently")
        case "reindex":
            return words.contains("concurrently") || (words.count > 1 && (words[1] == "database" || words[1] == "system"))
        case "alter":
            return words.count > 1 && words[1] == "system"
        default:
            return false
        }
    }
}

func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

/// Reads `supabase/migrations` the way the Supabase CLI does.
public struct MigrationDirectory: Sendable {
    public var url: URL

    public init(url: URL) { self.url = url }

    /// The migration files in version order. Files whose name does not match
    /// `<digits>_<name>.sql` are reported through `skipped`, as the CLI skips them.
    public func load(skipped: (String) -> Void = { _ in }) throws(MigrationError) -> [MigrationFile] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw .folderMissing(url.path)
        }
        guard isDirectory.boolValue else { throw .unreadable(url.path, reason: "it is a file, not a folder") }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: url.path)
        } catch {
            throw .unreadable(url.path, reason: "\(error.localizedDescription)")
        }
        var files: [MigrationFile] = []
        var seen: [String: String] = [:]
        for name in names.sorted() {
            guard name.hasSuffix(".sql") else { continue }
            guard let match = name.wholeMatch(of: /([0-9]+)_(.*)\.sql/) else {
                skipped("Skipping migration \(name)… (file name must match pattern \"<timestamp>_name.sql\")")
                continue
            }
            let version = String(match.1)
            if let other = seen[version] {
                throw .duplicateVersion(version, files: [other, name])
            }
            seen[version] = name
            let data: Data
            do {
                data = try Data(contentsOf: url.appendingPathComponent(name))
            } catch {
                throw .unreadable(name, reason: error.localizedDescription)
            }
            files.append(try MigrationFile(version: version, name: String(match.2), fileName: name, contents: data))
        }
        return files.sorted { Self.versionLess($0.version, $1.version) }
    }

    /// Versions compare as numbers (the CLI orders by the integer value of the prefix).
    static func versionLess(_ a: String, _ b: String) -> Bool {
        let left = a.drop(while: { $0 == "0" })
        let right = b.drop(while: { $0 == "0" })
        if left.count != right.count { return left.count < right.count }
        return left < right
    }

    /// Writes an empty migration named `<UTC yyyyMMddHHmmss>_<name>.sql` and returns its URL.
    public func newMigration(named name: String, now: Date = Date(), header: String? = nil) throws(MigrationError) -> URL {
        guard name.wholeMatch(of: /[A-Za-z0-9_\-]+/) != nil else {
            throw .invalidName(name)
        }
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw .unreadable(url.path, reason: error.localizedDescription)
        }
        let existing = Set(((try? load()) ?? []).map(\.version))
        var moment = now
        var version = Self.timestamp(moment)
        while existing.contains(version) {
            moment = moment.addingTimeInterval(1)
            version = Self.timestamp(moment)
        }
        let file = url.appendingPathComponent("\(version)_\(name).sql")
        do {
            try (header ?? "").write(to: file, atomically: true, encoding: .utf8)
        } catch {
            throw .unreadable(file.path, reason: error.localizedDescription)
        }
        return file
    }

    public static func timestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMddHHmmss"
        return formatter.string(from: date)
    }
}
