import Foundation

/// Where a Wingtel project keeps things (ARCHITECTURE.md §2), found from the working directory.
public struct ProjectLayout: Sendable {
    public var root: URL

    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// The nearest ancestor of `start` (default: the working directory) holding `supabase/`
    /// or `Package.swift`; the start directory itself when none does.
    public static func discover(from start: URL? = nil) -> ProjectLayout {
        let first = (start ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL
        var candidate = first
        while true {
            let fm = FileManager.default
            if fm.fileExists(atPath: candidate.appendingPathComponent("supabase").path)
                || fm.fileExists(atPath: candidate.appendingPathComponent("Package.swift").path)
            {
                return ProjectLayout(root: candidate)
            }
            let parent = candidate.deletingLastPathComponent()
            if parent.path == candidate.path { return ProjectLayout(root: first) }
            candidate = parent
        }
    }

    public var supabaseDirectory: URL { root.appendingPathComponent("supabase") }
    public var migrationsDirectory: URL { supabaseDirectory.appendingPathComponent("migrations") }
    public var seedFile: URL { supabaseDirectory.appendingPathComponent("seed.sql") }
    public var pgTAPDirectory: URL { supabaseDirectory.appendingPathComponent("tests") }
    public var sqlDirectory: URL { root.appendingPathComponent("sql") }
    public var localShimDirectory: URL { sqlDirectory.appendingPathComponent("local") }
    public var syncLockFile: URL { sqlDirectory.appendingPathComponent("sync.lock") }

    /// Local state (cluster, virtual environment): `WINGTEL_HOME`, else `.wingtel/` in the project.
    public var home: URL {
        if let override = ProcessInfo.processInfo.environment["WINGTEL_HOME"], !override.isEmpty {
            return URL(fileURLWithPath: override).standardizedFileURL
        }
        return root.appendingPathComponent(".wingtel")
    }
}
