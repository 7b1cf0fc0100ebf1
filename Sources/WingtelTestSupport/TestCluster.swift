import Foundation
import Logging
import WingtelDatabase
import WingtelMigrations

#if canImport(Glibc)
    import Glibc
#endif

/// One throwaway PostgreSQL cluster per test process, provisioned by the same code as
/// `wingtel db start`. A template database holds the shim, every migration, the seed and
/// pgTAP; each suite gets a fresh clone of it (`CREATE DATABASE … TEMPLATE`), so suites
/// are isolated and cheap. The cluster stops when the process exits; clusters left by a
/// killed run are removed by the next one.
public actor TestCluster {
    public static let shared = TestCluster()
    public static let templateName = "wingtel_template"

    public nonisolated let layout: ProjectLayout
    private var setup: Task<LocalCluster, any Error>?
    private var templateSetup: Task<Void, any Error>?
    private var counter = 0
    let logger = Logger(label: "wingtel.tests")

    public init(layout: ProjectLayout = TestCluster.projectLayout()) {
        self.layout = layout
    }

    /// The project this test target belongs to, found from this source file's path.
    public static func projectLayout(file: String = #filePath) -> ProjectLayout {
        ProjectLayout.discover(from: URL(fileURLWithPath: file).deletingLastPathComponent())
    }

    /// The running cluster (created on first use).
    public func cluster() async throws -> LocalCluster {
        if let setup { return try await setup.value }
        let layout = self.layout
        let task = Task { () throws -> LocalCluster in
            let binaries = try PostgresBinaries.resolve(home: layout.home) { line in
                FileHandle.standardError.write(Data("[test cluster] \(line)\n".utf8))
            }
            let parent = layout.home.appendingPathComponent("test-clusters")
            Self.removeAbandonedClusters(in: parent, binaries: binaries)
            let cluster = LocalCluster(
                directory: parent.appendingPathComponent("\(getpid())"), binaries: binaries, ephemeral: true)
            try? cluster.destroy()
            try cluster.start()
            clusterToStopAtExit = cluster
            atexit {
                try? clusterToStopAtExit?.destroy()
            }
            return cluster
        }
        setup = task
        return try await task.value
    }

    /// A new, empty database (from `template1`: no shim, no migrations).
    public func emptyDatabase(_ label: String = #function) async throws -> ConnectionSettings {
        let cluster = try await cluster()
        let name = nextName(label)
        try await Provisioner(layout: layout, logger: logger).recreate(database: name, in: cluster)
        return try cluster.connectionSettings(database: name)
    }

    /// A new database cloned from the migrated template (shim, migrations, seed, pgTAP).
    public func migratedDatabase(_ label: String = #function) async throws -> ConnectionSettings {
        let cluster = try await cluster()
        try await ensureTemplate(cluster)
        let name = nextName(label)
        try await Provisioner(layout: layout, logger: logger).recreate(database: name, in: cluster, template: Self.templateName)
        return try cluster.connectionSettings(database: name)
    }

    private func ensureTemplate(_ cluster: LocalCluster) async throws {
        if let templateSetup { return try await templateSetup.value }
        let layout = self.layout
        let logger = self.logger
        let task = Task {
            let provisioner = Provisioner(layout: layout, logger: logger)
            try await provisioner.recreate(database: Self.templateName, in: cluster)
            let settings = try cluster.connectionSettings(database: Self.templateName)
            try await provisioner.provision(settings, seed: true)
            if LocalCluster.pgTAPDirectory() != nil {
                try await PgTAPRunner(logger: logger).ensurePgTAP(settings)
            }
        }
        templateSetup = task
        try await task.value
    }

    private func nextName(_ label: String) -> String {
        counter += 1
        let cleaned = label.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }
        return String("t\(counter)_\(String(cleaned))".prefix(63))
    }

    /// Stops and deletes clusters whose test process is gone.
    static func removeAbandonedClusters(in parent: URL, binaries: PostgresBinaries) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: parent.path) else { return }
        for entry in entries {
            guard let pid = Int32(entry), pid != getpid() else { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }
            let stale = LocalCluster(directory: parent.appendingPathComponent(entry), binaries: binaries)
            try? stale.destroy()
        }
    }
}

nonisolated(unsafe) private var clusterToStopAtExit: LocalCluster?
