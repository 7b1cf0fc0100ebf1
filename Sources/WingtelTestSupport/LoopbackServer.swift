import Hummingbird
import Logging
import ServiceLifecycle

/// An HTTP server on a free loopback port, for the fake providers of tests and benchmarks and for
/// the functions server under test: started, its port known, stopped gracefully.
public final class LoopbackServer: Sendable {
    public let port: Int
    let group: ServiceGroup
    let running: Task<Void, any Error>

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(port: Int, group: ServiceGroup, running: Task<Void, any Error>) {
        self.port = port
        self.group = group
        self.running = running
    }

    /// Runs the service `make` builds; it must call the closure it is given with its port once
    /// it listens (Hummingbird's `onServerRunning`).
    public static func start(
        label: String, _ make: (_ onRunning: @escaping @Sendable (Int?) async -> Void) -> any Service
    ) async throws -> LoopbackServer {
        var logger = Logger(label: label)
        logger.logLevel = .warning
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let service = make { port in
            continuation.yield(port ?? 0)
            continuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let running = Task { try await group.run() }
        var port = 0
        for await value in ports { port = value }
        return LoopbackServer(port: port, group: group, running: running)
    }

    /// A plain Hummingbird router on 127.0.0.1.
    public static func start(router: Router<BasicRequestContext>, label: String) async throws -> LoopbackServer {
        var logger = Logger(label: label)
        logger.logLevel = .warning
        return try await start(label: label) { onRunning in
            Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { channel in await onRunning(channel.localAddress?.port) }, logger: logger)
        }
    }

    /// Stops accepting, finishes what is in flight, and waits for it.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
    }

    /// Stops without waiting (a fake whose requests may hang on purpose).
    public func abandon() {
        let group = group
        Task { await group.triggerGracefulShutdown() }
        running.cancel()
    }
}
