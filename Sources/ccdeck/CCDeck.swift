import ArgumentParser
import CCDeckBackends
import CCDeckCore
import CCDeckTUI
import Foundation

struct CCDeck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccdeck",
        abstract: "Run Claude Code headless in isolated sandboxes, watch the runs, compare the backends.",
        discussion: """
            Exit status: 0 success, 1 the agent's run failed, 2 usage or setup error \
            (no token, no engine, bad arguments).
            """,
        version: "0.1.0",
        subcommands: [DashboardCommand.self, BackendsCommand.self, TokenCommand.self, ImageCommand.self, RunCommand.self, RunsCommand.self]
    )

    /// On a terminal, a bare `ccdeck` opens the dashboard; elsewhere (a pipe, CI) it shows
    /// what it can run on, and how to go on.
    func run() throws {
        if isatty(0) == 1 && isatty(1) == 1 {
            try DashboardCommand.open(readonly: false, noColor: false, options: LaunchOptions())
            return
        }
        try BackendsCommand.show(json: false, timeout: 3)
        print("\nNo terminal here, so no dashboard: `ccdeck run --mode auto` runs Claude Code in the first ready engine; `ccdeck --help` lists every command.")
    }
}

/// An error ccdeck explains in one line, with the exit status it deserves.
struct CLIError: Error {
    var message: String
    var code: Int32

    static func usage(_ message: String) -> CLIError { CLIError(message: message, code: 2) }
    static func setup(_ message: String) -> CLIError { CLIError(message: message, code: 2) }
}

@main
enum Main {
    static func main() {
        do {
            var command = try CCDeck.parseAsRoot()
            try command.run()
        } catch let error as CLIError {
            Terminal.error(error.message)
            exit(error.code)
        } catch let error as TokenError {
            Terminal.error("\(error)")
            exit(2)
        } catch let error as RunStoreError {
            Terminal.error("\(error)")
            exit(2)
        } catch let error as BackendError {
            Terminal.error("\(error)")
            exit(2)
        } catch {
            if CCDeck.exitCode(for: error) == .success || error is ExitCode {
                CCDeck.exit(withError: error)
            }
            // Argument errors: ArgumentParser's message and usage, but our exit status.
            if let nsError = error as? CocoaError {
                Terminal.error(nsError.localizedDescription)
            } else {
                FileHandle.standardError.write(Data((CCDeck.fullMessage(for: error) + "\n").utf8))
            }
            exit(2)
        }
    }
}
