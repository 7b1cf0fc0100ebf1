import ArgumentParser
import Foundation
import Logging
import WingtelDatabase

@main
struct Wingtel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wingtel",
        abstract: "Wingtel: the MVNO operations platform (PostgreSQL core, Swift tools).",
        discussion: """
            Connection for database commands: --db-url, else DATABASE_URL, else the local cluster \
            (`wingtel db start`). Set WINGTEL_LOG_LEVEL=debug for detailed logs.
            """,
        subcommands: [
            DatabaseCommand.self, GenerateCommand.self, SeedCommand.self, UsageCommand.self, BillCommand.self, ReportCommand.self,
            AuditCommand.self, ServeCommand.self, ImportCommand.self,
        ]
    )

    static func main() async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            let level = ProcessInfo.processInfo.environment["WINGTEL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            handler.logLevel = level ?? .warning
            return handler
        }
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch  where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            // Help requests and usage errors raised while running (a command group run bare).
            exit(withError: error)
        } catch {
            FileHandle.standardError.write(Data("error: \(describeDatabaseError(error))\n".utf8))
            Foundation.exit(1)
        }
    }
}

/// "1.23 s" or "45 ms".
func formatDuration(_ duration: Duration) -> String {
    let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    return seconds < 1 ? String(format: "%.0f ms", seconds * 1000) : String(format: "%.2f s", seconds)
}

/// Progress and notices go to stderr so that stdout stays clean for results (`$(wingtel db url)`).
func note(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// A command's own failure: its message is printed as is.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
