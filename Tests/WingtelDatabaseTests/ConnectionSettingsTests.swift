import Testing
import WingtelDatabase

@Suite("postgres:// URLs")
struct ConnectionSettingsTests {
    @Test("a Supabase-style URL parses, with percent-encoded password and TLS required")
    func supabaseURL() throws {
        let settings = try ConnectionSettings(
            url: "postgresql://postgres.abcd:p%40ss%2Fword@aws-0-us-east-1.pooler.supabase.com:6543/postgres?sslmode=require")
        #expect(settings.host == "aws-0-us-east-1.pooler.supabase.com")
        #expect(settings.port == 6543)
        #expect(settings.username == "postgres.abcd")
        #expect(settings.password == "p@ss/word")
        #expect(settings.database == "postgres")
        #expect(settings.tls == .require)
        #expect(!settings.redactedURL.contains("p%40ss"))
        #expect(settings.redactedURL.contains("****"))
    }

    @Test("loopback defaults to no TLS, other hosts to prefer; defaults for port and database")
    func defaults() throws {
        let local = try ConnectionSettings(url: "postgres://u@127.0.0.1")
        #expect(local.port == 5432 && local.database == "postgres" && local.tls == .disable && local.password == nil)
        #expect(try ConnectionSettings(url: "postgres://u@db.example.com/app").tls == .prefer)
    }

    @Test("the URL a settings value prints parses back to the same settings")
    func roundTrip() throws {
        let settings = ConnectionSettings(host: "127.0.0.1", port: 54322, username: "postgres", password: "pa ss", database: "postgres")
        #expect(try ConnectionSettings(url: settings.url) == settings)
    }

    @Test(
        "malformed URLs are refused with the reason",
        arguments: ["mysql://x@y/z", "not a url", "postgres:///db", "postgres://h/db?sslmode=sometimes"])
    func invalid(url: String) {
        #expect(throws: WingtelDatabaseError.self) { try ConnectionSettings(url: url) }
    }
}
