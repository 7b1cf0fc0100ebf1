import Foundation
import Testing
import WingtelCodegen
import WingtelDatabase
import WingtelTestSupport

@Suite("wingtel gen swift --check")
struct GeneratorCheckTests {
    @Test("the committed client matches the migrated schema, and a schema change makes it stale until regenerated")
    func check() async throws {
        let settings = try await TestCluster.shared.migratedDatabase()
        let generator = Generator(layout: TestCluster.projectLayout())
        let fresh = try await generator.generate(settings, check: true)
        #expect(fresh.changed.isEmpty, "run `wingtel gen swift` and commit: \(fresh.changed)")
        #expect(fresh.diagnostics.isEmpty, "\(fresh.diagnostics)")

        try await Probe.execute(settings, "alter table public.notes add column pinned boolean not null default false")
        let stale = try await generator.generate(settings, check: true)
        #expect(stale.changed == ["Public.swift"])
        #expect(stale.files["Public.swift"]?.contains("public var pinned: Bool\n") == true)
    }
}
