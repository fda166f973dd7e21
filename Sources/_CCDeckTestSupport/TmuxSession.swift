import CCDeckBackends
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A terminal a person would use: a private tmux server running one command, driven with
/// send-keys and read with capture-pane.
public final class TmuxSession: @unchecked Sendable {
    public let socket: String
    public let directory: TemporaryDirectory

    /// Starts `script` (a shell script body; its environment is exactly `environment`) in a
    /// `width`×`height` window.
    public init(width: Int, height: Int, environment: [String: String], script: String) throws {
        socket = "ccdeck-test-" + UUID().uuidString.prefix(8)
        directory = TemporaryDirectory("ccdeck-tmux")
        let exports = environment.sorted { $0.key < $1.key }
            .map { "export \($0.key)='\($0.value.replacingOccurrences(of: "'", with: "'\\''"))'" }
            .joined(separator: "\n")
        let launcher = directory.write("launch.sh", "#!/bin/sh\n\(exports)\n\(script)\n", mode: 0o755)
        let out = try tmux(["new-session", "-d", "-x", String(width), "-y", String(height), "-s", "main", launcher])
        guard out.status.succeeded else { throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: out.stderr]) }
    }

    deinit { _ = try? tmux(["kill-server"]) }

    @discardableResult
    func tmux(_ args: [String]) throws -> ProcessRunner.Output {
        let env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "TERM": "xterm-256color",
                   "HOME": ProcessInfo.processInfo.environment["HOME"] ?? "/root"]
        return try ProcessRunner.run(Command("tmux", ["-L", socket, "-f", "/dev/null"] + args, environment: env), timeout: 20)
    }

    /// A tmux format about the pane: `#{pane_title}`, `#{window_bell_flag}`.
    public func display(_ format: String) -> String {
        ((try? tmux(["display-message", "-p", "-t", "main", format]).stdout) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Sends keys by tmux name (`Enter`, `Tab`, `BTab`, `C-c`, `PPage`) or, with `literal`, as text.
    public func send(_ keys: String..., literal: Bool = false) throws {
        try tmux(["send-keys", "-t", "main"] + (literal ? ["-l"] : []) + keys)
    }

    /// The visible screen; with `history`, also what scrolled off the top.
    public func capture(history: Bool = false) -> String {
        (try? tmux(["capture-pane", "-p", "-t", "main"] + (history ? ["-S", "-500"] : [])).stdout) ?? ""
    }

    public func resize(width: Int, height: Int) throws {
        try tmux(["resize-window", "-t", "main", "-x", String(width), "-y", String(height)])
    }

    /// Polls the screen until `predicate` holds (a wait for a state, not a timing assertion).
    /// On a timeout the last screen is printed, so a failure shows what the user would have seen.
    @discardableResult
    public func waitFor(_ what: String, timeout: TimeInterval = 30, history: Bool = false,
                        _ predicate: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var screen = ""
        while Date() < deadline {
            screen = capture(history: history)
            if predicate(screen) { return screen }
            usleep(100_000)
        }
        FileHandle.standardError.write(Data("tmux: gave up waiting for \(what); the screen was:\n\(screen)\n".utf8))
        return nil
    }

    @discardableResult
    public func waitFor(_ text: String, timeout: TimeInterval = 30, history: Bool = false) -> String? {
        waitFor(text, timeout: timeout, history: history) { $0.contains(text) }
    }
}

extension TmuxSession {
    /// The dashboard's attach, as a person does it: `a`, a command in the sandbox's shell whose
    /// answer must show, `exit`, and the dashboard back. nil when all went, else the step that failed.
    public func attachRoundTrip(run command: String, expect answer: String, back: String = "back from ccdeck-") throws -> String? {
        try send("a")
        guard waitFor("attaching a shell") != nil else { return "no attach" }
        try send(command, literal: true)
        try send("Enter")
        guard waitFor(answer) != nil else { return "no \(answer) from the shell" }
        try send("exit", literal: true)
        try send("Enter")
        return waitFor(back) == nil ? "not back in the dashboard" : nil
    }
}
