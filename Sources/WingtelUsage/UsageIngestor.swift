import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WingtelDatabase

/// `wingtel usage ingest`: streams a usage file into the session's staging table with COPY,
/// then lets `ingest_usage` (SQL) do the rest in one transaction — a failure leaves nothing.
public struct UsageIngestor: Sendable {
    public var logger: Logger

    public init(logger: Logger = Logger(label: "wingtel.usage")) {
        self.logger = logger
    }

    public struct Summary: Sendable, Equatable, Decodable {
        public var id: UUID
        public var organizationID: UUID
        public var rowsTotal: Int
        public var rowsInserted: Int
        public var rowsDuplicate: Int
        public var rowsQuarantined: Int
        /// Seconds from the start to the records' commit (read, stage, resolve, insert, quarantine).
        public var recordsSeconds: Double?
        /// Seconds the daily rollups took after that.
        public var rollupSeconds: Double?
        enum CodingKeys: String, CodingKey {
            case id
            case organizationID = "organization_id"
            case rowsTotal = "rows_total"
            case rowsInserted = "rows_inserted"
            case rowsDuplicate = "rows_duplicate"
            case rowsQuarantined = "rows_quarantined"
        }
    }

    /// Loads `file` for the organization `slug` (as the service `usage-ingest`), reporting progress every `progressEvery` rows.
    public func ingest(
        file: URL, organizationSlug slug: String, source: String, settings: ConnectionSettings, progressEvery: Int = 250_000,
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> Summary {
        let started = ContinuousClock.now  // the file's read and hash count too
        let data = try Data(contentsOf: file, options: .alwaysMapped)
        let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        return try await Database.withConnection(settings, logger: logger) { connection in
            // Two transactions: the records (with their quarantine) commit first, then the daily
            // rollups; if the second never runs, roll_up_usage (or the next bill run) does it.
            var summary = try await connection.withIdentity(.service(name: "usage-ingest"), logger: logger) { connection in
                try await stageAndIngest(
                    connection, data: data, digest: digest, file: file, slug: slug, source: source, started: started,
                    progressEvery: progressEvery, progress: progress)
            }
            summary.recordsSeconds = Self.seconds(since: started)
            progress("  records committed; adding them to the daily rollups …")
            let rollupStarted = ContinuousClock.now
            try await connection.withIdentity(.service(name: "usage-ingest"), logger: logger) { connection in
                try await connection.run("select public.roll_up_usage(\(summary.organizationID))", logger: logger)
                try await connection.run("drop table if exists pg_temp.usage_staging", logger: logger)
            }
            summary.rollupSeconds = Self.seconds(since: rollupStarted)
            return summary
        }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    private func stageAndIngest(
        _ connection: PostgresConnection, data: Data, digest: String, file: URL, slug: String, source: String,
        started: ContinuousClock.Instant, progressEvery: Int, progress: @escaping @Sendable (String) -> Void
    ) async throws -> Summary {
        // Hand-written SQL on purpose: the staging table is session-local, outside the generated client.
        var organization: UUID?
        let found = try await connection.query("select id from public.organizations where slug = \(slug)", logger: logger)
        for try await id in found.decode(UUID.self) { organization = id }
        guard let organization else { throw UsageIngestError.unknownOrganization(slug) }
        // Kept past the first commit for the roll-up step; dropped after it.
        try await connection.execute("drop table if exists pg_temp.usage_staging", logger: logger)
        try await connection.execute(
            """
            create temp table usage_staging (line_number integer, mdn text, recorded_at timestamptz, kind text,
              quantity bigint, record_id text, problem text)
            """, logger: logger)
        let fileName = file.lastPathComponent
        let counted = ManagedCount()
        let numbers = ManagedNumbers()
        try await connection.copyFrom(table: "usage_staging", logger: logger) { writer in
            var buffer = ByteBuffer()
            buffer.reserveCapacity(1 << 20 + 1 << 16)
            var reader: UsageFileReader?
            var number = 0
            var offset = 0
            var nextProgress = progressEvery
            while offset < data.count {
                // A chunk of lines at a time, straight from the mapped file into COPY's text format.
                try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws in
                    let base = raw.baseAddress!
                    while offset < raw.count && buffer.readableBytes < 1 << 20 {
                        let end = memchr(base + offset, 10, raw.count - offset).map { UnsafeRawPointer($0) - base } ?? raw.count
                        var upper = end
                        if upper > offset && raw[upper - 1] == 13 { upper -= 1 }
                        let line = UnsafeRawBufferPointer(rebasing: raw[offset..<upper])
                        number += 1
                        offset = end + 1
                        guard let current = reader else {
                            reader = try UsageFileReader(header: String(decoding: line, as: UTF8.self), file: fileName)
                            continue
                        }
                        if line.isEmpty { continue }
                        current.appendCopyLine(line, number: number, to: &buffer, numbers: &numbers.value)
                        counted.value += 1
                    }
                }
                if buffer.readableBytes > 0 {
                    try await writer.write(buffer)
                    buffer.clear()
                }
                if counted.value >= nextProgress {
                    nextProgress += progressEvery
                    let seconds =
                        Double((ContinuousClock.now - started).components.attoseconds) / 1e18
                        + Double((ContinuousClock.now - started).components.seconds)
                    progress(String(format: "  %d rows read (%.0f rows/s)", counted.value, Double(counted.value) / max(seconds, 0.001)))
                }
            }
            if reader == nil { throw UsageFileReader.ReadError.empty(fileName) }
        }
        // The file's distinct numbers, for ingest_usage to resolve (it drops the table once read).
        try await connection.execute("drop table if exists pg_temp.usage_numbers", logger: logger)
        try await connection.execute("create temp table usage_numbers (raw text)", logger: logger)
        try await connection.copyFrom(table: "usage_numbers", logger: logger) { writer in
            var buffer = ByteBuffer()
            for raw in numbers.value.all {
                buffer.writeString(CopyText.field(raw))
                buffer.writeInteger(UInt8(10))
                if buffer.readableBytes >= 1 << 20 {
                    try await writer.write(buffer)
                    buffer.clear()
                }
            }
            if buffer.readableBytes > 0 { try await writer.write(buffer) }
        }
        progress("  \(counted.value) rows staged; resolving lines, removing duplicates, quarantining problems …")
        let rows = try await connection.query(
            """
            select to_jsonb(b)::text from public.ingest_usage(\(organization), \(source), \(fileName), \(digest), roll_up => false) b
            """, logger: logger)
        var summary: Summary?
        for try await text in rows.decode(String.self) {
            summary = try JSONDecoder().decode(Summary.self, from: Data(text.utf8))
        }
        guard let summary else { throw UsageIngestError.noSummary }
        return summary
    }
}

public enum UsageIngestError: Error, CustomStringConvertible, Sendable {
    case unknownOrganization(String)
    case noSummary
    public var description: String {
        switch self {
        case .unknownOrganization(let slug):
            return "no organization with slug '\(slug)'; list them with: psql \"$(wingtel db url)\" -c 'select slug from organizations'"
        case .noSummary: return "ingest_usage returned no batch"
        }
    }
}

/// A counter the COPY closure updates (it runs on one task; the class only satisfies Sendable).
final class ManagedCount: @unchecked Sendable {
    var value = 0
}

/// The file's distinct numbers, filled by the same COPY closure.
final class ManagedNumbers: @unchecked Sendable {
    var value = NumberSet()
}
