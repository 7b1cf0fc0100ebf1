import Foundation
import Testing
import WingtelDatabase
import WingtelMigrations
import WingtelTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite("The local cluster (wingtel db start|stop|status)")
struct LocalClusterTests {
    let layout = TestCluster.projectLayout()

    @Test("start creates and runs it (as an unprivileged user when root); twice is harmless; stop stops; start again restarts it")
    func lifecycle() async throws {
        let binaries = try PostgresBinaries.resolve(home: layout.home)
        let directory = layout.home.appendingPathComponent("test-clusters/lifecycle-\(getpid())-\(UUID().uuidString.prefix(8))")
        let cluster = LocalCluster(directory: directory, binaries: binaries, ephemeral: true)
        defer { try? cluster.destroy() }

        #expect(cluster.status() == .notInitialized)
        guard case .created(let port) = try cluster.start() else {
            Issue.record("the first start must create the cluster")
            return
        }
        guard case .running(let runningPort, let pid) = cluster.status() else {
            Issue.record("the cluster must run after start")
            return
        }
        #expect(runningPort == port)
        if getuid() == 0 {
            // PostgreSQL refuses root: the server must run as the dedicated user.
            let owner = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
                .split(separator: "\n").first { $0.hasPrefix("Uid:") }
            #expect(owner != nil && !owner!.contains("\t0\t"))
        }
        #expect(try cluster.start() == .alreadyRunning(port: port))

        let settings = try cluster.connectionSettings()
        #expect(try await Probe.int(settings, "select 1") == 1)
        #expect(try await Probe.int(settings, "select count(*) from pg_available_extensions where name = 'vector'") == 1)
        #expect(try await Probe.int(settings, "current_setting('listen_addresses') = '127.0.0.1'") == 1)

        #expect(try cluster.stop())
        #expect(cluster.status() == .stopped(port: port))
        #expect(try cluster.stop() == false)
        // Usually the same port; another cluster may have taken it meanwhile (see portMoves).
        guard case .started = try cluster.start() else {
            Issue.record("a stopped cluster must start")
            return
        }
        #expect(try await Probe.int(try cluster.connectionSettings(), "select 1") == 1)
    }

    @Test("a port taken while the cluster was stopped makes it move to a free one")
    func portMoves() async throws {
        let binaries = try PostgresBinaries.resolve(home: layout.home)
        let directory = layout.home.appendingPathComponent("test-clusters/ports-\(getpid())-\(UUID().uuidString.prefix(8))")
        let cluster = LocalCluster(directory: directory, binaries: binaries, ephemeral: true)
        defer { try? cluster.destroy() }
        guard case .created(let port) = try cluster.start() else { return }
        try cluster.stop()
        // Occupy the old port with a listening socket.
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        listen(descriptor, 1)
        guard case .started(let newPort) = try cluster.start() else {
            Issue.record("a stopped cluster must start")
            return
        }
        #expect(newPort != port)
        #expect(try await Probe.int(try cluster.connectionSettings(), "select 1") == 1)
    }

    @Test("WINGTEL_PG_BIN naming a PostgreSQL without pgvector is refused with what to do")
    func binariesWithoutPGVector() throws {
        let debian = "/usr/lib/postgresql/15/bin"
        try #require(
            FileManager.default.isExecutableFile(atPath: "\(debian)/postgres"), "needs Debian's postgresql-15 (pgTAP depends on it)")
        #expect {
            try PostgresBinaries.resolve(home: layout.home, environment: ["WINGTEL_PG_BIN": debian])
        } throws: { error in
            guard case WingtelDatabaseError.pgvectorMissing = error else { return false }
            return "\(error)".contains("unset WINGTEL_PG_BIN")
        }
        #expect(throws: WingtelDatabaseError.self) {
            try PostgresBinaries.resolve(home: layout.home, environment: ["WINGTEL_PG_BIN": "/nonexistent/bin"])
        }
    }

    @Test("an unreachable database is a one-line error naming the URL and the next step")
    func unreachable() async throws {
        let port = try LocalCluster.freePort()
        let settings = ConnectionSettings(host: "127.0.0.1", port: port, username: "postgres", password: "secret", database: "postgres")
        await #expect {
            try await Database.withConnection(settings) { _ in () }
        } throws: { error in
            let text = "\(error)"
            return text.contains("127.0.0.1:\(port)") && text.contains("wingtel db start") && !text.contains("secret")
                && !text.contains("\n")
        }
    }
}
