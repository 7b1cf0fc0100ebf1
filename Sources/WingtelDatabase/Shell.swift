import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs external programs (initdb, pg_ctl, pip) and reports failures with their output.
///
/// Uses `posix_spawn` and `waitpid` directly, with output captured in a temporary file
/// rather than a pipe: `pg_ctl start` leaves a daemon behind, and Foundation's `Process`
/// can miss the exit of a child whose grandchild lives on.
public enum Shell {
    public struct Output: Sendable {
        public var status: Int32
        public var text: String
    }

    /// Runs `executable` with `arguments`, capturing stdout and stderr together.
    /// With `streaming`, output goes to this process's stderr as it comes (long jobs such as pip).
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], streaming: Bool = false, check: Bool = true
    ) throws -> Output {
        let commandLine = ([executable] + arguments).joined(separator: " ")
        let capture = FileManager.default.temporaryDirectory
            .appendingPathComponent("wingtel-shell-\(getpid())-\(UUID().uuidString).log").path
        defer { unlink(capture) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if streaming {
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, capture, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw WingtelDatabaseError.commandFailed(
                command: commandLine, status: -1, output: String(cString: strerror(spawned)))
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR {
                throw WingtelDatabaseError.commandFailed(command: commandLine, status: -1, output: "waitpid failed")
            }
        }
        // WIFEXITED / WEXITSTATUS, spelled out (they are macros in C).
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let text = streaming ? "" : ((try? String(contentsOfFile: capture, encoding: .utf8)) ?? "")
        let output = Output(status: exitStatus, text: text)
        if check && exitStatus != 0 {
            throw WingtelDatabaseError.commandFailed(command: commandLine, status: exitStatus, output: text)
        }
        return output
    }

    /// The first executable named `name` on PATH.
    public static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
