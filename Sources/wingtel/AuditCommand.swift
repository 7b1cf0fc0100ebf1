import ArgumentParser
import Foundation
import PostgresNIO
import WingtelDatabase

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Seal and verify the hash-chained audit trail.",
        subcommands: [AuditSealCommand.self, AuditVerifyCommand.self])
}

struct AuditSealCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal",
        abstract: "Add the audit entries of finished transactions to their organization's hash chain.",
        discussion: "Schedule it every minute (cron, or pg_cron: select audit.seal()); verify runs it first.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        let sealed = try await Database.withConnection(settings, logger: commandLogger) { connection in
            // Hand-written SQL on purpose: the audit schema is not exposed, so the generated client has no calls for it.
            let rows = try await connection.query("select audit.seal()", logger: commandLogger)
            var count: Int64 = 0
            for try await value in rows.decode(Int64.self) { count = value }
            return count
        }
        print("Sealed \(sealed) audit entries.")
    }
}

struct AuditVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute an organization's audit chain and report the first broken entry (exit 3 when broken).")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Organization slug.") var org: String

    func run() async throws {
        let settings = try connection.resolve(layout: ProjectLayout.discover())
        let result = try await Database.withConnection(settings, logger: commandLogger) {
            connection -> (Bool, Int64, Int64, Int64?, String?)? in
            // Hand-written SQL on purpose: audit.verify_chain lives in the unexposed audit schema.
            let rows = try await connection.query(
                """
                select v.valid, v.sealed_entries, v.unsealed_entries, v.first_broken_entry, v.problem
                from public.organizations o cross join lateral audit.verify_chain(o.id) v where o.slug = \(org)
                """, logger: commandLogger)
            for try await row in rows.decode((Bool, Int64, Int64, Int64?, String?).self) { return row }
            return nil
        }
        guard let (valid, sealed, unsealed, broken, problem) = result else {
            throw CommandFailure(
                "no organization with slug '\(org)'; list them with: psql \"$(wingtel db url)\" -c 'select slug from organizations'")
        }
        if valid {
            print("Audit chain of \(org) is intact: \(sealed) sealed entries, \(unsealed) not yet sealed.")
        } else {
            print("Audit chain of \(org) is BROKEN at entry \(broken.map(String.init) ?? "?"): \(problem ?? "unknown problem").")
            throw ExitCode(3)
        }
    }
}
