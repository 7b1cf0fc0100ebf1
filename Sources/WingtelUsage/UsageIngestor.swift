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
        public var rowsTotal: Int
        public var rowsInserted: Int
        public var rowsDuplicate: Int
        public var rowsQuarantined: Int
        enum CodingKeys: String, CodingKey {
            case id
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
        let data = try Data(contentsOf: file, options: .alwaysMapped)
        let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        let started = ContinuousClock.now
        return try await Database.withIdentity(.service(name: "usage-ingest"), on: settings, logger: logger) { connection in
            // Hand-written SQL on purpose: the staging table is session-local, outside the generated client.
            var organization: UUID?
            let found = try await connection.query("select id from public.organizations where slug = \(slug)", logger: logger)
            for try await id in found.decode(UUID.self) { organization = id }
            guard let organization else { throw UsageIngestError.unknownOrganization(slug) }
            try await connection.execute(
                """
                create temp table usage_staging (line_number integer, mdn text, recorded_at timestamptz, kind text,
                  quantity bigint, record_id text, problem text) on commit drop
                """, logger: logger)
            let fileName = file.lastPathComponent
            let counted = ManagedCount()
            try await connection.copyFrom(table: "usage_staging", logger: logger) { writer in
                var buffer = ByteBuffer()
                buffer.reserveCapacity(1 << 20)
                var reader: UsageFileReader?
                var number = 0
                var lineStart = data.startIndex
                var index = data.startIndex
                func handle(_ lineData: Data) async throws {
                    number += 1
                    var line = String(decoding: lineData, as: UTF8.self)
                    if line.hasSuffix("\r") { line.removeLast() }
                    if reader == nil {
                        reader = try UsageFileReader(header: line, file: fileName)
                        return
                    }
                    if line.isEmpty { return }
                    buffer.writeString(UsageFileReader.copyLine(reader!.row(line, number: number)))
                    counted.value += 1
                    if buffer.readableBytes >= 1 << 20 {
                        try await writer.write(buffer)
                        buffer.clear()
                    }
                    if counted.value % progressEvery == 0 {
                        let seconds =
                            Double((ContinuousClock.now - started).components.attoseconds) / 1e18
                            + Double((ContinuousClock.now - started).components.seconds)
                        progress(String(format: "  %d rows read (%.0f rows/s)", counted.value, Double(counted.value) / max(seconds, 0.001)))
                    }
                }
                while index < data.endIndex {
                    if data[index] == 10 {
                        try await handle(data[lineStart..<index])
                        lineStart = data.index(after: index)
                    }
                    index = data.index(after: index)
                }
                if lineStart < data.endIndex { try await handle(data[lineStart..<data.endIndex]) }
                if reader == nil { throw UsageFileReader.ReadError.empty(fileName) }
                if buffer.readableBytes > 0 { try await writer.write(buffer) }
            }
            progress("  \(counted.value) rows staged; resolving lines, removing duplicates, quarantining problems …")
            let rows = try await connection.query(
                "select to_jsonb(b)::text from public.ingest_usage(\(organization), \(source), \(fileName), \(digest)) b", logger: logger)
            var summary: Summary?
            for try await text in rows.decode(String.self) {
                summary = try JSONDecoder().decode(Summary.self, from: Data(text.utf8))
            }
            guard let summary else { throw UsageIngestError.noSummary }
            return summary
        }
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
