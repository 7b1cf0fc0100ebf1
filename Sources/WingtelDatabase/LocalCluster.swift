import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A PostgreSQL cluster kept in a directory of the project (`.wingtel/cluster`) or a
/// throwaway one for tests. Listens on 127.0.0.1 only, on a free port remembered in
/// `cluster.json`. When the caller is root, the server runs as the unprivileged system
/// user `wingtel-pg` (PostgreSQL refuses to run as root).
public struct LocalCluster: Sendable {
    public static let serverUser = "wingtel-pg"
    public static let superuser = "postgres"
    public static let superuserPassword = "postgres"
    /// The Supabase CLI's local database port, taken when it is free.
    public static let preferredPort = 54322

    public struct State: Codable, Sendable, Equatable {
        public var port: Int
        public var binDirectory: String
        public var majorVersion: Int
        public var createdAt: Date
    }

    public enum Status: Sendable, Equatable {
        case notInitialized
        case stopped(port: Int)
        case running(port: Int, pid: Int)
    }

    public let directory: URL
    public let binaries: PostgresBinaries
    /// Durability settings off (fsync, synchronous commit): for throwaway test clusters only.
    public let ephemeral: Bool

    public init(directory: URL, binaries: PostgresBinaries, ephemeral: Bool = false) {
        self.directory = directory.standardizedFileURL
        self.binaries = binaries
        self.ephemeral = ephemeral
    }

    /// The cluster created earlier in `directory`, with the binaries it was created with; nil when none was.
    public static func existing(at directory: URL) -> LocalCluster? {
        let probe = LocalCluster(directory: directory, binaries: PostgresBinaries(binDirectory: "", majorVersion: 0, source: ""))
        guard let state = probe.readState() else { return nil }
        return LocalCluster(
            directory: directory,
            binaries: PostgresBinaries(binDirectory: state.binDirectory, majorVersion: state.majorVersion, source: "cluster.json"))
    }

    public var dataDirectory: URL { directory.appendingPathComponent("data") }
    public var logFile: URL { directory.appendingPathComponent("postgres.log") }
    public var stateFile: URL { directory.appendingPathComponent("cluster.json") }
    var extensionShareDirectory: URL { directory.appendingPathComponent("share") }

    public func readState() -> State? {
        guard let data = try? Data(contentsOf: stateFile) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(State.self, from: data)
    }

    func writeState(_ state: State) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: stateFile, options: .atomic)
    }

    public var isInitialized: Bool {
        FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent("PG_VERSION").path) && readState() != nil
    }

    public func status() -> Status {
        guard isInitialized, let state = readState() else { return .notInitialized }
        let result = try? runAsServerUser(binaries.path("pg_ctl"), ["-D", dataDirectory.path, "status"], check: false)
        if let result, result.status == 0 {
            // "pg_ctl: server is running (PID: 1234)"
            let pid =
                result.text.components(separatedBy: "PID: ").dropFirst().first
                .flatMap { Int($0.prefix(while: { $0.isNumber })) } ?? 0
            return .running(port: state.port, pid: pid)
        }
        return .stopped(port: state.port)
    }

    /// Settings for connecting as the superuser.
    public func connectionSettings(database: String = "postgres") throws -> ConnectionSettings {
        guard let state = readState() else { throw WingtelDatabaseError.clusterNotRunning(directory.path) }
        return ConnectionSettings(
            host: "127.0.0.1", port: state.port, username: Self.superuser, password: Self.superuserPassword,
            database: database, tls: .disable)
    }

    public enum StartOutcome: Sendable, Equatable {
        /// A new cluster was created (`initdb`) and started: the caller provisions it.
        case created(port: Int)
        case started(port: Int)
        case alreadyRunning(port: Int)
    }

    /// Creates the cluster when needed and starts it; harmless when it already runs.
    @discardableResult
    public func start(progress: (String) -> Void = { _ in }) throws -> StartOutcome {
        switch status() {
        case .running(let port, _):
            return .alreadyRunning(port: port)
        case .stopped(let port):
            var state = readState()!
            if !Self.isPortFree(port) {
                state.port = try Self.freePort()
                progress("Port \(port) is taken; the cluster moves to port \(state.port).")
                try writeState(state)
            }
            try prepareServerFiles(port: state.port)
            try launch()
            return .started(port: state.port)
        case .notInitialized:
            try initialize(progress: progress)
            let state = readState()!
            try launch()
            return .created(port: state.port)
        }
    }

    /// Stops the server; returns false when it was not running.
    @discardableResult
    public func stop(immediate: Bool = false) throws -> Bool {
        guard case .running = status() else { return false }
        try runAsServerUser(
            binaries.path("pg_ctl"), ["-D", dataDirectory.path, "-m", immediate ? "immediate" : "fast", "-w", "-t", "60", "stop"])
        return true
    }

    /// Stops the server and deletes the cluster directory.
    public func destroy() throws {
        _ = try? stop(immediate: true)
        if FileManager.default.fileExists(atPath: directory.path) {
            try FileManager.default.removeItem(at: directory)
        }
    }

    // MARK: - Creating and launching

    func initialize(progress: (String) -> Void) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: dataDirectory.path) {
            // A half-made cluster from an interrupted start: begin again.
            try fm.removeItem(at: dataDirectory)
        }
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = Self.isPortFree(Self.preferredPort) && !ephemeral ? Self.preferredPort : try Self.freePort()
        progress("Creating a PostgreSQL \(binaries.majorVersion) cluster in \(dataDirectory.path) (\(binaries.source)) …")
        let passwordFile = directory.appendingPathComponent(".pwfile")
        try Self.superuserPassword.write(to: passwordFile, atomically: true, encoding: .utf8)
        try handOverToServerUser()
        defer { try? fm.removeItem(at: passwordFile) }
        try runAsServerUser(
            binaries.path("initdb"),
            [
                "-D", dataDirectory.path, "-U", Self.superuser, "--pwfile=\(passwordFile.path)",
                "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8",
            ] + (ephemeral ? ["--no-sync"] : []))
        let include = "\n# Wingtel: settings that change with each start live in wingtel.conf\ninclude_if_exists = 'wingtel.conf'\n"
        let conf = dataDirectory.appendingPathComponent("postgresql.conf")
        let handle = try FileHandle(forWritingTo: conf)
        handle.seekToEndOfFile()
        handle.write(Data(include.utf8))
        try handle.close()
        try writeState(
            State(port: port, binDirectory: binaries.binDirectory, majorVersion: binaries.majorVersion, createdAt: Date()))
        try prepareServerFiles(port: port)
    }

    /// Writes `wingtel.conf` and refreshes the pgTAP copy the server finds through `extension_control_path`.
    func prepareServerFiles(port: Int) throws {
        var lines = [
            "# Written by wingtel at each start; edit postgresql.conf for lasting changes.",
            "port = \(port)",
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 200",
            // A tenth of this 24 GiB machine (the usual advice is up to a quarter): at a million
            // lines the working set of a bill run or an import outgrew 256MB and ran from the
            // OS cache. Bulk loads write gigabytes of WAL; 4GB between checkpoints spares them
            // most full-page images. Memory is taken as pages are used, so test clusters stay small.
            "shared_buffers = '2GB'",
            "max_wal_size = '4GB'",
            "logging_collector = off",
        ]
        if ephemeral {
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        }
        if binaries.majorVersion >= 18, let share = try copyPGTAP() {
            // PostgreSQL 18 appends /extension to each path element.
            lines.append("extension_control_path = '$system:\(share.path)'")
        }
        try (lines.joined(separator: "\n") + "\n").write(
            to: dataDirectory.appendingPathComponent("wingtel.conf"), atomically: true, encoding: .utf8)
        try handOverToServerUser()
    }

    /// Copies Debian's pgTAP (plain SQL) next to the cluster; nil when pgTAP is not installed.
    func copyPGTAP() throws -> URL? {
        guard let source = Self.pgTAPDirectory() else { return nil }
        let fm = FileManager.default
        let target = extensionShareDirectory.appendingPathComponent("extension")
        try fm.createDirectory(at: target, withIntermediateDirectories: true)
        for file in try fm.contentsOfDirectory(atPath: source) where file.hasPrefix("pgtap") {
            let destination = target.appendingPathComponent(file)
            if fm.fileExists(atPath: destination.path) { try fm.removeItem(at: destination) }
            try fm.copyItem(atPath: "\(source)/\(file)", toPath: destination.path)
        }
        return extensionShareDirectory
    }

    /// The directory of an installed pgTAP control file (Debian's postgresql-NN-pgtap), newest first.
    public static func pgTAPDirectory() -> String? {
        if let explicit = ProcessInfo.processInfo.environment["WINGTEL_PGTAP_DIR"], !explicit.isEmpty {
            return explicit
        }
        let base = "/usr/share/postgresql"
        guard let versions = try? FileManager.default.contentsOfDirectory(atPath: base) else { return nil }
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let directory = "\(base)/\(version)/extension"
            if FileManager.default.fileExists(atPath: "\(directory)/pgtap.control") { return directory }
        }
        return nil
    }

    func launch() throws {
        let result = try runAsServerUser(
            binaries.path("pg_ctl"),
            ["-D", dataDirectory.path, "-l", logFile.path, "-w", "-t", "60", "start"], check: false)
        if result.status != 0 {
            let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            throw WingtelDatabaseError.commandFailed(
                command: "pg_ctl start", status: result.status, output: result.text + "\n" + log)
        }
    }

    // MARK: - Running as an unprivileged user

    static var isRoot: Bool { getuid() == 0 }

    /// Runs a server program; as root, through `runuser` as the `wingtel-pg` user.
    @discardableResult
    func runAsServerUser(_ executable: String, _ arguments: [String], check: Bool = true) throws -> Shell.Output {
        if Self.isRoot {
            guard
                let runuser = Shell.which("runuser")
                    ?? ["/usr/sbin/runuser", "/sbin/runuser"].first(where: {
                        FileManager.default.isExecutableFile(atPath: $0)
                    })
            else {
                throw WingtelDatabaseError.unprivilegedUserUnavailable("runuser (util-linux) is not installed")
            }
            return try Shell.run(runuser, ["-u", Self.serverUser, "--", executable] + arguments, check: check)
        }
        return try Shell.run(executable, arguments, check: check)
    }

    /// As root: creates the `wingtel-pg` system user when missing and gives it the cluster directory.
    func handOverToServerUser() throws {
        guard Self.isRoot else { return }
        try Self.ensureServerUser()
        try Shell.run("/bin/chown", ["-R", "\(Self.serverUser):", directory.path])
        let probe = try Shell.run(
            Shell.which("runuser") ?? "/usr/sbin/runuser",
            ["-u", Self.serverUser, "--", "/bin/sh", "-c", "test -x \"$0\" && test -w \"$1\"", binaries.path("postgres"), directory.path],
            check: false)
        if probe.status != 0 {
            throw WingtelDatabaseError.unprivilegedUserUnavailable(
                "the user \(Self.serverUser) cannot reach \(binaries.path("postgres")) or \(directory.path) (a parent directory is private); set WINGTEL_HOME to a directory other users can traverse, such as /var/lib/wingtel"
            )
        }
    }

    static func ensureServerUser() throws {
        if getpwnam(serverUser) != nil { return }
        guard
            let useradd = Shell.which("useradd")
                ?? ["/usr/sbin/useradd", "/sbin/useradd"].first(where: {
                    FileManager.default.isExecutableFile(atPath: $0)
                })
        else {
            throw WingtelDatabaseError.unprivilegedUserUnavailable("useradd is not available to create \(serverUser)")
        }
        let result = try Shell.run(
            useradd, ["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", serverUser],
            check: false)
        // Status 9: created meanwhile by a concurrent start.
        if result.status != 0 && result.status != 9 {
            throw WingtelDatabaseError.unprivilegedUserUnavailable("useradd \(serverUser) failed: \(result.text)")
        }
    }

    // MARK: - Ports

    public static func isPortFree(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }

    /// A port the kernel reports free on 127.0.0.1.
    public static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw WingtelDatabaseError.commandFailed(command: "socket()", status: errno, output: "") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(descriptor, pointer, length) == 0 else { return -1 }
                return getsockname(descriptor, pointer, &length)
            }
        }
        guard bound == 0 else { throw WingtelDatabaseError.commandFailed(command: "bind()", status: errno, output: "") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
