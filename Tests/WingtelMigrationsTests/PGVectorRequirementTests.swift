import Foundation
import Testing
import WingtelDatabase
import WingtelMigrations
import WingtelTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite("A database without pgvector")
struct PGVectorRequirementTests {
    @Test("push refuses a server that offers no pgvector, before applying anything")
    func pushRefuses() async throws {
        let debian = "/usr/lib/postgresql/15/bin"
        try #require(
            FileManager.default.isExecutableFile(atPath: "\(debian)/postgres"), "needs Debian's postgresql-15 (pgTAP depends on it)")
        let layout = TestCluster.projectLayout()
        let binaries = try PostgresBinaries.inspect(binDirectory: debian, source: "Debian")
        let cluster = LocalCluster(
            directory: layout.home.appendingPathComponent("test-clusters/novector-\(getpid())"), binaries: binaries, ephemeral: true)
        defer { try? cluster.destroy() }
        try? cluster.destroy()
        try cluster.start()

        let folder = try TemporaryDirectory("novector")
        defer { folder.remove() }
        try folder.write("20260101000000_first.sql", "create table t (id int);")
        let settings = try cluster.connectionSettings()
        await #expect {
            try await Migrator(directory: MigrationDirectory(url: folder.url)).push(settings)
        } throws: { error in
            guard case MigrationError.pgvectorUnavailable = error else { return false }
            return "\(error)".contains("pgvector")
        }
        #expect(try await Probe.int(settings, "select count(*) from pg_tables where tablename = 't'") == 0)
    }
}
