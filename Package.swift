// swift-tools-version:6.1
import PackageDescription

// Dependencies are kept few on purpose (see ARCHITECTURE.md §3, "Dependencies").
let package = Package(
    name: "wingtel",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "wingtel", targets: ["wingtel"]),
        .library(name: "WingtelDatabase", targets: ["WingtelDatabase"]),
        .library(name: "WingtelMigrations", targets: ["WingtelMigrations"]),
        .library(name: "WingtelClient", targets: ["WingtelClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        // Already a dependency of postgres-nio; named here for TLS to hosted databases (sslmode=require).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        // The functions server (`wingtel serve`): HTTP on SwiftNIO with graceful shutdown.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        // Metrics API (used by Hummingbird's middleware and ours) and its Prometheus text exporter.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.9.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        // HTTP field names for provider headers (already Hummingbird's own dependency).
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
    ],
    targets: [
        // Connection configuration, the local cluster, acting as a user.
        .target(
            name: "WingtelDatabase",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Supabase-compatible migration history, statement splitting, sql/ compilation.
        .target(
            name: "WingtelMigrations",
            dependencies: [
                "WingtelDatabase",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The typed client: hand-written runtime plus the generated declarations (committed).
        .target(
            name: "WingtelClient",
            dependencies: [
                "WingtelDatabase",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The code generator behind `wingtel gen swift`: introspect → model → render.
        .target(
            name: "WingtelCodegen",
            dependencies: [
                "WingtelDatabase",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Usage (CDR) files into the database: COPY into a staging table, then SQL.
        .target(
            name: "WingtelUsage",
            dependencies: [
                "WingtelDatabase",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Migration out of BeQuick: export files staged with COPY, then validated and migrated in SQL.
        .target(
            name: "WingtelImport",
            dependencies: [
                "WingtelDatabase",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The deterministic demo MVNO behind `wingtel seed demo`.
        .target(
            name: "WingtelDemo",
            dependencies: [
                "WingtelDatabase",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Bill runs, dunning, finance reports and invoice pages: calls of the SQL billing functions.
        .target(
            name: "WingtelBilling",
            dependencies: [
                "WingtelDatabase",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Webhook signature schemes of the providers (Stripe, Twilio, AT&T, ThingSpace, HMAC):
        // pure functions over raw bytes, no I/O.
        .target(
            name: "WingtelVerification",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // The HTTP functions behind `wingtel serve`: verify, make one SQL call, answer.
        .target(
            name: "WingtelFunctions",
            dependencies: [
                "WingtelDatabase",
                "WingtelVerification",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Benchmark B8 (the outbox loop against a fake carrier); see benchmarks/README.md.
        .executableTarget(
            name: "WingtelBench",
            dependencies: [
                "WingtelDatabase", "WingtelFunctions", "WingtelTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "benchmarks/WingtelBench"
        ),
        // The command-line tool. It does not link WingtelClient: `wingtel gen swift` must build
        // even when the committed generated code no longer compiles against a changed schema.
        .executableTarget(
            name: "wingtel",
            dependencies: [
                "WingtelDatabase",
                "WingtelMigrations",
                "WingtelCodegen",
                "WingtelUsage",
                "WingtelDemo",
                "WingtelBilling",
                "WingtelFunctions",
                "WingtelImport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test support: one throwaway cluster per run, a migrated template, a database per suite.
        .target(
            name: "WingtelTestSupport",
            dependencies: [
                "WingtelDatabase", "WingtelMigrations",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "WingtelMigrationsTests",
            dependencies: ["WingtelMigrations", "WingtelTestSupport"]
        ),
        .testTarget(
            name: "WingtelDatabaseTests",
            dependencies: ["WingtelDatabase", "WingtelMigrations", "WingtelTestSupport"]
        ),
        .testTarget(
            name: "WingtelTenancyTests",
            dependencies: [
                "WingtelDatabase", "WingtelTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "WingtelCodegenTests",
            dependencies: [
                "WingtelCodegen", "WingtelClient", "WingtelDatabase", "WingtelTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "WingtelImportTests",
            dependencies: [
                "WingtelImport", "WingtelDatabase", "WingtelTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "WingtelUsageTests",
            dependencies: ["WingtelUsage", "WingtelDatabase", "WingtelTestSupport"]
        ),
        .testTarget(
            name: "WingtelBillingTests",
            dependencies: [
                "WingtelBilling", "WingtelDatabase", "WingtelTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "WingtelVerificationTests",
            dependencies: ["WingtelVerification"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "WingtelFunctionsTests",
            dependencies: [
                "WingtelFunctions", "WingtelVerification", "WingtelDatabase", "WingtelTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .testTarget(
            name: "WingtelDemoTests",
            dependencies: ["WingtelDemo", "WingtelDatabase", "WingtelTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
