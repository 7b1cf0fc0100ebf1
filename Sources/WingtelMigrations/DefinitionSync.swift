import Foundation
import WingtelDatabase

/// Compiles the repeatable definitions in `sql/` (functions, views, policies, grants,
/// comments — re-runnable text) into versioned migrations, so that the plain Supabase
/// CLI deploys them. `sql/sync.lock` records the checksum of each file last emitted.
///
/// Folders that are not definitions stay out: `sql/local` (the local Supabase shim),
/// `sql/queries` (named queries for codegen) and `sql/reports` (analysts' SQL).
public struct DefinitionSync: Sendable {
    public static let excludedFolders: Set<String> = ["local", "queries", "reports"]

    public var sqlDirectory: URL
    public var lockFile: URL
    public var migrations: MigrationDirectory

    public init(layout: ProjectLayout) {
        self.sqlDirectory = layout.sqlDirectory
        self.lockFile = layout.syncLockFile
        self.migrations = MigrationDirectory(url: layout.migrationsDirectory)
    }

    public init(sqlDirectory: URL, lockFile: URL, migrations: MigrationDirectory) {
        self.sqlDirectory = sqlDirectory
        self.lockFile = lockFile
        self.migrations = migrations
    }

    public struct Change: Sendable, Equatable {
        public enum Kind: String, Sendable { case added, changed, removed }
        public var path: String
        public var kind: Kind
        public var checksum: String?
    }

    /// Definition files (relative paths such as `10_tenancy/functions.sql`) with their checksums.
    public func definitionFiles() throws -> [(path: String, checksum: String, data: Data)] {
        let fm = FileManager.default
        guard fm.fileExists(atPath: sqlDirectory.path) else { return [] }
        guard let enumerator = fm.enumerator(at: sqlDirectory, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
        var files: [(String, String, Data)] = []
        let base = sqlDirectory.standardizedFileURL.path + "/"
        for case let url as URL in enumerator where url.pathExtension == "sql" {
            let relative = String(url.standardizedFileURL.path.dropFirst(base.count))
            guard let top = relative.split(separator: "/").first, relative.contains("/") else { continue }
            if Self.excludedFolders.contains(String(top)) { continue }
            let data = try Data(contentsOf: url)
            files.append((relative, sha256Hex(data), data))
        }
        return files.sorted { $0.0 < $1.0 }
    }

    public func readLock() throws -> [String: String] {
        guard let text = try? String(contentsOf: lockFile, encoding: .utf8) else { return [:] }
        var entries: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2 else {
                throw MigrationError.unreadable(lockFile.path, reason: "malformed line '\(line)'; expected '<sha256> <path>'")
            }
            entries[parts[1].trimmingCharacters(in: .whitespaces)] = String(parts[0])
        }
        return entries
    }

    /// What changed in `sql/` since the last emitted migration.
    public func changes() throws -> [Change] {
        let lock = try readLock()
        let files = try definitionFiles()
        var changes: [Change] = []
        for file in files {
            if let recorded = lock[file.path] {
                if recorded != file.checksum { changes.append(Change(path: file.path, kind: .changed, checksum: file.checksum)) }
            } else {
                changes.append(Change(path: file.path, kind: .added, checksum: file.checksum))
            }
        }
        let present = Set(files.map(\.path))
        for path in lock.keys.sorted() where !present.contains(path) {
            changes.append(Change(path: path, kind: .removed, checksum: nil))
        }
        return changes
    }

    public struct Outcome: Sendable {
        public var migration: URL?
        public var changes: [Change]
    }

    /// Writes one migration carrying every added or changed definition file (in path order)
    /// and updates the lock. Removed files are reported: dropping their objects takes a
    /// hand-written migration.
    public func sync(now: Date = Date()) throws -> Outcome {
        let changes = try changes()
        let emitted = changes.filter { $0.kind != .removed }
        let files = Dictionary(try definitionFiles().map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var migration: URL?
        if !emitted.isEmpty {
            var body = "-- Compiled by `wingtel db sync` from the definitions in sql/. Edit those files, not this one.\n"
            for change in emitted {
                guard let file = files[change.path] else { continue }
                var text = String(decoding: file.data, as: UTF8.self)
                while text.last?.isWhitespace == true { text.removeLast() }
                if let last = SQLSplitter.split(text).last, !SQLSplitter.isCommentOnly(last), !text.hasSuffix(";") {
                    text += ";"
                }
                body += "\n-- >>> sql/\(change.path) (sha256 \(change.checksum ?? ""))\n\(text)\n"
            }
            let domains = Set(emitted.compactMap { $0.path.split(separator: "/").first.map(String.init) }).sorted()
            let name =
                "sync_"
                + domains.map { $0.replacingOccurrences(of: "[^A-Za-z0-9_]", with: "_", options: .regularExpression) }
                .joined(separator: "_")
            migration = try migrations.newMigration(named: String(name.prefix(80)), now: now, header: body)
        }
        if !changes.isEmpty {
            var lines = ["# sha256 of each sql/ definition file last compiled into a migration (wingtel db sync)."]
            for (path, file) in files.sorted(by: { $0.key < $1.key }) { lines.append("\(file.checksum) \(path)") }
            try (lines.joined(separator: "\n") + "\n").write(to: lockFile, atomically: true, encoding: .utf8)
        }
        return Outcome(migration: migration, changes: changes)
    }
}
