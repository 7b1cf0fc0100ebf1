import Foundation
import WingtelDatabase

/// Why a migration command refused or failed. Messages follow the Supabase CLI's advice where it has one.
public enum MigrationError: Error, CustomStringConvertible, Sendable {
    case folderMissing(String)
    case unreadable(String, reason: String)
    case duplicateVersion(String, files: [String])
    case invalidName(String)
    case drifted([String])
    case remoteOnly([String])
    case outOfOrder(files: [String], newestApplied: String)
    case statementFailed(file: String, index: Int, statement: String, failure: SQLFailure)
    case pgvectorUnavailable(String)
    case syncPending([String])

    public var description: String {
        switch self {
        case .folderMissing(let path):
            return
                "no migrations folder at \(path); run wingtel from the project root (or pass the folder), or create the first migration with `wingtel db new NAME`"
        case .unreadable(let file, let reason):
            return "cannot read \(file): \(reason)"
        case .duplicateVersion(let version, let files):
            return
                "migration version \(version) is used by more than one file (\(files.joined(separator: ", "))); rename one with a new timestamp"
        case .invalidName(let name):
            return "invalid migration name '\(name)': use letters, digits, '_' and '-' only"
        case .drifted(let files):
            return
                "applied migration\(files.count == 1 ? "" : "s") changed since being applied: \(files.joined(separator: ", ")).\nMigrations are append-only: restore the file (git checkout) and fix forward with a new migration (`wingtel db new NAME`)."
        case .remoteOnly(let versions):
            return
                "Remote migration versions not found in local migrations directory: \(versions.joined(separator: ", ")).\nMake sure your local git repo is up-to-date. If the error persists, repair the migration history table: supabase migration repair --status reverted \(versions.joined(separator: " "))"
        case .outOfOrder(let files, let newest):
            return
                "Found local migration files to be inserted before the last migration on remote database (\(newest)): \(files.joined(separator: ", ")).\nRerun the command with --include-all to apply these migrations, or give them a newer timestamp."
        case .statementFailed(let file, let index, let statement, let failure):
            return
                "\(file) failed at statement \(index + 1); nothing of this migration was applied.\n\(failure)\n\(Self.markError(statement, position: failure.position))"
        case .pgvectorUnavailable(let url):
            return
                "the database at \(url) does not offer the pgvector extension (`vector`); enable it (Supabase: Database → Extensions) or use the local cluster (`wingtel db start`)"
        case .syncPending(let files):
            return
                "sql/ has definitions no migration carries: \(files.joined(separator: ", ")); run `wingtel db sync` and commit the new migration"
        }
    }

    /// The statement with a caret under the error position, as the Supabase CLI prints it;
    /// long statements are cut to the lines around the error.
    static func markError(_ statement: String, position: Int?, context: Int = 8) -> String {
        let all = statement.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard var position, position > 0 else {
            return all.count > context ? (all.prefix(context) + ["…"]).joined(separator: "\n") : statement
        }
        var lines: [String] = []
        for line in all {
            lines.append(line)
            let length = line.unicodeScalars.count
            if position > length {
                position -= length + 1
                continue
            }
            lines.append(String(repeating: " ", count: max(position - 1, 0)) + "^")
            break
        }
        if lines.count > context + 1 { lines = ["…"] + lines.suffix(context + 1) }
        return lines.joined(separator: "\n")
    }
}
