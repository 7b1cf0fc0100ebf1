import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WingtelDatabase

/// `wingtel import bequick`: reads an export file, stages it with COPY as one import batch,
/// then lets SQL validate it (`validate_import_data`) and migrate it (`migrate_subscriber_data`),
/// all in one transaction — a failure, or `--dry-run`, leaves nothing behind.
public struct BeQuickImporter: Sendable {
    public var logger: Logger

    public init(logger: Logger = Logger(label: "wingtel.import")) {
        self.logger = logger
    }

    public struct Options: Sendable {
        /// Stage, validate and migrate, report, then roll everything back.
        public var dryRun = false
        /// Stage and validate only; the batch and its issues stay for review.
        public var validateOnly = false
        /// Staging column → the file's header, for layouts other than the two known exports.
        public var mapping: [String: String]?
        public var progressEvery = 250_000

        public init(dryRun: Bool = false, validateOnly: Bool = false, mapping: [String: String]? = nil) {
            self.dryRun = dryRun
            self.validateOnly = validateOnly
            self.mapping = mapping
        }
    }

    public struct IssueSummary: Sendable, Equatable {
        public var type: String
        public var severity: String
        public var count: Int
        /// Up to five samples as JSON: [{"line": …, "value": …, "message": …}].
        public var samples: String
    }

    public struct EntityCount: Sendable, Equatable {
        public var entity: String
        public var created: Int
        public var updated: Int
        public var unchanged: Int
        public var skipped: Int?
    }

    public struct Result: Sendable {
        public var batchID: UUID
        public var shape: ExportLayout.Shape
        public var rows: Int
        public var unreadableRows: Int
        public var issues: [IssueSummary]
        /// Nil when only validating.
        public var migration: [EntityCount]?
        public var dryRun: Bool
        public var seconds: Double

        public var blockingIssues: Int { issues.filter { $0.severity == "blocking" }.reduce(0) { $0 + $1.count } }
        public func count(_ entity: String) -> EntityCount? { migration?.first { $0.entity == entity } }
    }

    public enum ImportError: Error, CustomStringConvertible, Sendable {
        case emptyFile(String)
        case headerOnly(String)
        case unknownOrganization(String)
        case unreadable(String, String)

        public var description: String {
            switch self {
            case .emptyFile(let file): return "\(file) is empty; export the subscriptions from BeQuick again"
            case .headerOnly(let file): return "\(file) has a header but no rows; nothing to import"
            case .unknownOrganization(let slug):
                return "no organization with slug '\(slug)'; list them with: psql \"$(wingtel db url)\" -c 'select slug from organizations'"
            case .unreadable(let file, let reason): return "cannot read \(file): \(reason)"
            }
        }
    }

    /// The file as COPY text for import_rows, read before any database work so a file that
    /// cannot be read at all changes nothing.
    struct Staged {
        var layout: ExportLayout
        var chunks: [ByteBuffer]
        var rows: Int
        var unreadable: Int
        var sha256: String
    }

    func stage(
        _ bytes: [UInt8], fileName: String, organization: String, batch: String, options: Options, started: ContinuousClock.Instant,
        progress: @Sendable (String) -> Void
    ) throws -> Staged {
        let sha256 = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        if bytes.allSatisfy({ $0 == 10 || $0 == 13 || $0 == 32 || $0 == 9 }) || bytes == [0xEF, 0xBB, 0xBF] {
            throw ImportError.emptyFile(fileName)
        }
        var layout: ExportLayout?
        var chunks: [ByteBuffer] = []
        var buffer = ByteBuffer()
        buffer.reserveCapacity(1 << 20)
        var rows = 0
        var unreadable = 0
        let prefix = organization + "\t" + batch + "\t"
        try CSVReader(bytes).forEachRecord { record in
            guard let current = layout else {
                layout = try ExportLayout(header: record.fields, mapping: options.mapping)
                return
            }
            rows += 1
            var problem = record.problem
            if problem == nil && record.fields.count != current.header.count {
                problem =
                    "\(record.fields.count) fields where the header has \(current.header.count) (a missing or extra comma, or an unquoted comma in a value)"
            }
            buffer.writeString(prefix)
            buffer.writeString(String(record.line))
            buffer.writeString("\t")
            if let problem {
                unreadable += 1
                buffer.writeString(CopyText.field(problem))
                for _ in ExportLayout.columns { buffer.writeString("\t\\N") }
                let raw = "{\"fields\":[" + record.fields.map(ExportLayout.jsonString).joined(separator: ",") + "]}"
                buffer.writeString("\t" + CopyText.field(raw) + "\n")
            } else {
                buffer.writeString("\\N")
                let (values, extra) = current.values(of: record.fields)
                for value in values {
                    buffer.writeString("\t")
                    buffer.writeString(CopyText.field(value))
                }
                buffer.writeString("\t" + CopyText.field(extra) + "\n")
            }
            if buffer.readableBytes >= 1 << 20 {
                chunks.append(buffer)
                buffer = ByteBuffer()
                buffer.reserveCapacity(1 << 20)
            }
            if rows % options.progressEvery == 0 {
                let elapsed = ContinuousClock.now - started
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                progress(String(format: "  %d rows read (%.0f rows/s)", rows, Double(rows) / max(seconds, 0.001)))
            }
        }
        guard let layout else { throw ImportError.emptyFile(fileName) }
        if rows == 0 { throw ImportError.headerOnly(fileName) }
        if buffer.readableBytes > 0 { chunks.append(buffer) }
        return Staged(layout: layout, chunks: chunks, rows: rows, unreadable: unreadable, sha256: sha256)
    }

    /// Imports `file` into the organization `slug` as the service `bequick-import`.
    public func run(
        file: URL, organizationSlug slug: String, options: Options = Options(), settings: ConnectionSettings,
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws -> Result {
        let started = ContinuousClock.now
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: file))
        } catch {
            throw ImportError.unreadable(file.path, error.localizedDescription)
        }
        let fileName = file.lastPathComponent
        struct DryRun: Error { var result: Result }
        do {
            return try await Database.withIdentity(.service(name: "bequick-import"), on: settings, logger: logger) { connection in
                var organization: UUID?
                let found = try await connection.query("select id from public.organizations where slug = \(slug)", logger: logger)
                for try await id in found.decode(UUID.self) { organization = id }
                guard let organization else { throw ImportError.unknownOrganization(slug) }
                let batch = UUID()
                let staged = try stage(
                    bytes, fileName: fileName, organization: organization.uuidString.lowercased(), batch: batch.uuidString.lowercased(),
                    options: options, started: started, progress: progress)
                let mappingJSON: String? = options.mapping.map { mapping in
                    "{"
                        + mapping.sorted { $0.key < $1.key }.map {
                            ExportLayout.jsonString($0.key) + ":" + ExportLayout.jsonString($0.value)
                        }
                        .joined(separator: ",") + "}"
                }
                try await connection.run(
                    """
                    insert into public.import_batches (organization_id, id, shape, file_name, file_sha256, mapping, row_count, imported_by)
                    values (\(organization), \(batch), \(staged.layout.shape.rawValue), \(fileName), \(staged.sha256), \(mappingJSON)::jsonb,
                            \(staged.rows), coalesce(nullif(current_setting('wingtel.actor', true), ''), current_user))
                    """, logger: logger)
                let columns = ["organization_id", "batch_id", "line_number", "parse_error"] + ExportLayout.columns + ["extra"]
                try await connection.copyFrom(table: "import_rows", columns: columns, logger: logger) { writer in
                    for chunk in staged.chunks { try await writer.write(chunk) }
                }
                progress("  \(staged.rows) rows staged (\(staged.layout.shape.rawValue)); validating …")
                var issues: [IssueSummary] = []
                let validation = try await connection.query(
                    "select validation_type, severity::text, issue_count, coalesce(sample_issues::text, '[]') from public.validate_import_data(\(organization), \(batch))",
                    logger: logger)
                for try await (type, severity, count, samples) in validation.decode((String, String, Int64, String).self) {
                    issues.append(IssueSummary(type: type, severity: severity, count: Int(count), samples: samples))
                }
                var migration: [EntityCount]?
                if !options.validateOnly {
                    progress("  migrating the rows without blocking issues …")
                    var counts: [EntityCount] = []
                    let migrated = try await connection.query(
                        "select entity, created, updated, unchanged, skipped from public.migrate_subscriber_data(\(organization), \(batch))",
                        logger: logger)
                    for try await (entity, created, updated, unchanged, skipped) in migrated.decode(
                        (String, Int64, Int64, Int64, Int64?).self)
                    {
                        counts.append(
                            EntityCount(
                                entity: entity, created: Int(created), updated: Int(updated), unchanged: Int(unchanged),
                                skipped: skipped.map(Int.init)))
                    }
                    migration = counts
                }
                let elapsed = ContinuousClock.now - started
                let result = Result(
                    batchID: batch, shape: staged.layout.shape, rows: staged.rows, unreadableRows: staged.unreadable, issues: issues,
                    migration: migration, dryRun: options.dryRun,
                    seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                if options.dryRun { throw DryRun(result: result) }
                return result
            }
        } catch let dryRun as DryRun {
            return dryRun.result
        }
    }
}
