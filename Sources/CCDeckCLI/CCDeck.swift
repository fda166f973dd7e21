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
        subcommands: [DashboardCommand.self, BackendsCommand.self, TokenCommand.self, ImageCommand.self, RunCommand.self, RunsCommand.self,
                      SandboxesCommand.self, FlyCommand.self, CompareCommand.self]
    )

    /// On a terminal, a bare `ccdeck` opens the dashboard; elsewhere (a pipe, CI) it shows
    /// what it can run on, and how to go on.
    func run() throws {
        if isatty(0) == 1 && isatty(1) == 1 {
            try DashboardCommand.open(readonly: false, noColor: false, options: LaunchOptions())
            return
        }
        try BackendsCommand.show(json: false, timeout: 3)
        Terminal.out("\nNo terminal here, so no dashboard: `ccdeck run --mode auto` runs Claude Code in the first ready engine; `ccdeck --help` lists every command.")
    }
}

/// An error ccdeck explains in one line, with the exit status it deserves.
struct CLIError: Error {
    var message: String
    var code: Int32

    static func usage(_ message: String) -> CLIError { CLIError(message: message, code: 2) }
    static func setup(_ message: String) -> CLIError { CLIError(message: message, code: 2) }
}

/// What the commands share: the backends they may use. The executable sets it once, before
/// parsing; a host that registers more backends (the tests' own) sets its own registry.
public enum CLIContext {
    nonisolated(unsafe) public static var registry = BackendRegistry.standard

    static var environment: [String: String] { ProcessInfo.processInfo.environment }
}

/// The `ccdeck` command line: parses, runs, and turns every error into one line and an exit status.
public enum CCDeckCLI {
    public static func main(registry: BackendRegistry = .standard) -> Never {
        PhaseTrace.shared.start()
        CLIContext.registry = registry
        // A closed pipe (`ccdeck run | head`) is an error to report, not a signal to die of.
        signal(SIGPIPE, SIG_IGN)
        // A store from an older ccdeck is indexed on its first use here: say how far it got.
        RunStore.onIndexProgress = { done, total in
            let line = "ccdeck: indexing the run history (first use): \(done)/\(total) runs"
            FileHandle.standardError.write(Data((isatty(2) == 1 ? "\r" + line + (done == total ? "\n" : "") : line + "\n").utf8))
        }
        do {
            var command = try CCDeck.parseAsRoot()
            PhaseTrace.shared.mark("parse")
            try command.run()
            if let failure = Terminal.outputFailure {
                Terminal.error("cannot write to standard output: \(failure)")
                exit(2)
            }
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
                if let failure = Terminal.outputFailure {
                    Terminal.error("cannot write to standard output: \(failure)")
                    exit(2)
                }
                CCDeck.exit(withError: error)
            }
            // Argument errors: ArgumentParser's message and usage, but our exit status.
            if let nsError = error as? CocoaError {
                Terminal.error(nsError.localizedDescription)
            } else {
                Terminal.err(CCDeck.fullMessage(for: error))
            }
            exit(2)
        }
        exit(0)
    }
}
