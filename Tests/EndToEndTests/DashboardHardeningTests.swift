import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The dashboard in terminals from real life: TERMs it cannot drive are refused in ccdeck's own
/// words, and pastes arrive as text (bracketed paste), switched off again on every way out.
/// Needs no engine: a stand-in `docker` is enough to open the launch form.
@Suite(.serialized, .enabled(if: ChildProcess.resolve("tmux", environment: EngineEnvironment.host) != nil,
                             "needs tmux (scripts/testenv install)"))
struct DashboardHardeningTests: DashboardHarness {
    let home = TemporaryDirectory("ccdeck-e2e-harden")

    /// After the dashboard: its exit status and the terminal's modes, then a line read back, to
    /// show the terminal still takes input plainly (no paste markers, echo and line editing on).
    static let afterwards = """
        echo "EXIT:$?"
        stty -a | tr '\\n' ' ' | sed 's/^/STTY: /'
        echo
        echo "READY-TO-READ"
        read -r line
        printf 'GOT:[%s]\\n' "$line" | cat -v
        exec sleep 600
        """

    func session(term: String?, width: Int = 250, height: Int = 40, path: String? = nil) throws -> TmuxSession {
        var env = EngineEnvironment.runEnvironment(home: home.path, model: nil, token: EngineEnvironment.canaryToken())
        env["LANG"] = "C.UTF-8"
        env["LC_ALL"] = "C.UTF-8"
        env.removeValue(forKey: "TERM")
        if let term { env["TERM"] = term }
        if let path { env["PATH"] = path + ":" + (env["PATH"] ?? "/usr/bin:/bin") }
        let script = (term == nil ? "unset TERM\n" : "") + """
            echo $$ > "\(home.path)/ccdeck.pid"
            "\(TestPaths.ccdeckBinary)" dashboard
            """ + "\n" + Self.afterwards
        return try TmuxSession(width: width, height: height, environment: env, script: script)
    }

    /// Pastes `text` the way a terminal does: tmux adds the bracket markers only when the program
    /// in the pane asked for bracketed paste.
    func paste(_ tmux: TmuxSession, _ text: String) throws {
        let env = ["PATH": EngineEnvironment.host["PATH"] ?? "/usr/bin:/bin", "TERM": "xterm-256color",
                   "HOME": EngineEnvironment.host["HOME"] ?? "/root"]
        for args in [["set-buffer", "-b", "ccdeck", "--", text], ["paste-buffer", "-p", "-b", "ccdeck", "-t", "main"]] {
            let out = try ProcessRunner.run(Command("tmux", ["-L", tmux.socket, "-f", "/dev/null"] + args, environment: env),
                                            timeout: 20)
            #expect(out.status.succeeded, "tmux \(args[0]): \(out.stderr)")
        }
    }

    /// The shell after the dashboard reads a pasted line as plain text: bracketed paste is off again.
    func expectPlainInputAfterwards(_ tmux: TmuxSession, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(tmux.waitFor("READY-TO-READ", timeout: 20, history: true) != nil, sourceLocation: sourceLocation)
        try paste(tmux, "typed-after\n")
        let screen = tmux.waitFor("GOT:", timeout: 20, history: true)
        #expect(screen?.contains("GOT:[typed-after]") == true, "\(screen ?? "")", sourceLocation: sourceLocation)
        #expect(screen?.contains("200~") == false, "paste markers reached the shell", sourceLocation: sourceLocation)
    }

    @Test(arguments: [
        ("dumb", "ccdeck: error: TERM=dumb cannot address the cursor: run it in a terminal like xterm, or use `ccdeck runs ls`"),
        ("nonexistent-term", "ccdeck: error: TERM=nonexistent-term is not a terminal type this system knows (no terminfo entry)"),
        ("", "ccdeck: error: TERM is empty, so the dashboard cannot know what this terminal can do"),
        (nil, "ccdeck: error: TERM is not set, so the dashboard cannot know what this terminal can do"),
    ] as [(String?, String)])
    func aTerminalThatCannotRunTheDashboardIsRefusedInOurWords(term: String?, message: String) throws {
        let tmux = try session(term: term)
        expectTerminalRestored(tmux, exit: "2")
        let screen = tmux.capture(history: true)
        let joined = screen.replacingOccurrences(of: "\n", with: "")
        #expect(joined.contains(message), "\(screen)")
        // Nothing of ncurses' own: no "Error opening terminal", no frame drawn on one line.
        #expect(!screen.contains("Error opening terminal") && !screen.contains("Backends"), "\(screen)")
        #expect(screen.components(separatedBy: "ccdeck: error:").count == 2, "one line, said once")
        try expectPlainInputAfterwards(tmux)
    }

    /// A stand-in `docker` that is up: enough for the launch form.
    func fakeDocker() -> TemporaryDirectory {
        let bin = TemporaryDirectory("ccdeck-fake-docker")
        bin.write("docker", """
            #!/bin/sh
            case "$1" in
              version) echo '{"Client":{"Version":"99.0"},"Server":{"Version":"99.1"}}'; exit 0 ;;
              events) exec sleep 600 ;;
              ps) exit 0 ;;
              *) echo "fake docker: $*" >&2; exit 1 ;;
            esac
            """, mode: 0o755)
        return bin
    }

    @Test func aMultiLinePasteIsPromptTextUntilEnter() throws {
        let bin = fakeDocker()
        let tmux = try session(term: "xterm-256color", width: 120, path: bin.path)
        #expect(tmux.waitFor("docker ready") { $0.contains("q quit") && $0.contains("✓ docker") } != nil)
        try tmux.send("n")
        #expect(tmux.waitFor("Launch a run") != nil)
        try tmux.send("C-u")
        try paste(tmux, "first line\nsecond line\nq\n\u{1B}]0;pwned\u{7}\u{1B}[2Jlast")
        let screen = tmux.waitFor("pasted prompt") { $0.contains("⏎second line⏎q⏎␛]0;pwned␇␛[2Jlast▏") }
        #expect(screen != nil)
        // Nothing launched, nothing replayed as keys: the form is still open, no run exists, no quit asked.
        #expect(screen?.contains("Launch a run") == true && screen?.contains("Runs (0)") == true, "\(screen ?? "")")
        #expect(screen?.contains("Quit ccdeck?") == false)
        try tmux.send("Escape")
        #expect(tmux.waitFor("form closed") { !$0.contains("Launch a run") && $0.contains("q quit") } != nil)
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
        try expectPlainInputAfterwards(tmux)
    }

    /// Every way out turns bracketed paste off: a signal, and a crash in ccdeck's own code.
    @Test(arguments: [SIGTERM, SIGSEGV])
    func bracketedPasteIsOffAfterASignal(signal: Int32) throws {
        let tmux = try session(term: "xterm-256color", width: 120)
        #expect(tmux.waitFor("q quit") != nil)
        kill(try dashboardPID(), signal)
        expectTerminalRestored(tmux, exit: String(128 + signal))
        try expectPlainInputAfterwards(tmux)
    }
}
