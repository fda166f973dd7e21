import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Show or extract the Claude Code token ccdeck would use.",
        subcommands: [Show.self, Extract.self, Push.self],
        defaultSubcommand: Show.self
    )

    /// Backends that keep their own copy of the token, ready or not, and what they hold.
    static func keepers() -> [(any TokenKeeper, KeptToken?)] {
        let env = ProcessInfo.processInfo.environment
        let store = RunStore(environment: env)
        return CLIContext.registry.all(environment: env).compactMap { $0 as? any TokenKeeper }
            .filter { $0.keptToken(store: store) != nil || ChildProcess.resolve("fly", environment: env) != nil }
            .map { ($0, $0.keptToken(store: store)) }
    }

    struct Push: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "push",
            abstract: "Push the token to every backend that keeps a copy (a Fly app's secret), its value on stdin, never argv.")

        func run() throws {
            let env = ProcessInfo.processInfo.environment
            let token = try TokenCommand.resolve()
            let keepers = CLIContext.registry.all(environment: env).compactMap { $0 as? any TokenKeeper }
            guard !keepers.isEmpty else { throw CLIError.setup("no backend keeps a copy of the token") }
            var failed = false
            for keeper in keepers {
                do {
                    Terminal.out("pushed \(token.redacted) to \(try keeper.pushToken(token, store: RunStore(environment: env)))")
                } catch {
                    Terminal.error("\(keeper.kind.displayName): \(error)")
                    failed = true
                }
            }
            if failed { throw ExitCode(2) }
        }
    }

    static func resolve() throws -> Token {
        try TokenResolver(environment: ProcessInfo.processInfo.environment).resolve()
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Where the token comes from, its kind, a redacted form, expiry, plan and scopes.",
            discussion: "Exit status 1 when the token is expired or lacks the user:inference scope."
        )

        @Flag(help: "Print JSON (the token redacted) for scripts.")
        var json = false

        func run() throws {
            let token = try TokenCommand.resolve()
            let status = TokenStatus(token: token, now: Date())
            if json {
                Terminal.out(try Terminal.json(TokenJSON(token, status: status, includeSecret: false)))
            } else {
                for line in Self.describe(token, status: status) { Terminal.out(line) }
                // Backends that keep a copy: which token they hold, since when, until when.
                for (backend, kept) in TokenCommand.keepers() {
                    let state = kept.map { "\($0.place): \($0.describe(against: token, now: Date()))" } ?? "nothing pushed yet"
                    Terminal.out("\((backend.kind.displayName + ":").padding(toLength: 9, withPad: " ", startingAt: 0))\(state)")
                }
                for w in status.warnings { Terminal.warning(w) }
            }
            if status.urgency == .expired || status.warnings.contains(where: { $0.contains("user:inference") }) {
                throw ExitCode(1)
            }
        }

        static func describe(_ token: Token, status: TokenStatus) -> [String] {
            var rows: [(String, String)] = [
                ("source", token.source.description),
                ("kind", token.kind.label + (token.kindIsGuessed ? " (guessed from its prefix)" : "")),
                ("token", token.redacted),
            ]
            if let expiresAt = token.expiresAt {
                let left = status.timeLeft ?? 0
                let when = left > 0 ? "in \(TokenStatus.format(duration: left))" : "\(TokenStatus.format(duration: -left)) ago"
                rows.append(("expires", "\(Terminal.localTime(expiresAt)) (\(when))"))
            } else if !token.warnings.isEmpty {
                rows.append(("expires", "unknown (see the warning below)"))
            } else {
                rows.append(("expires", "unknown (a token outside the credentials file carries no expiry)"))
            }
            if let plan = token.subscriptionType { rows.append(("plan", plan)) }
            if let scopes = token.scopes { rows.append(("scopes", scopes.isEmpty ? "(none)" : scopes.joined(separator: ", "))) }
            return rows.map { "\($0.0 + ":")".padding(toLength: 9, withPad: " ", startingAt: 0) + InertText.line($0.1) }
        }
    }

    struct Extract: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "extract",
            abstract: "Print the token itself, for piping (the one command that prints it whole)."
        )

        @Flag(help: "Print only the token (the default).")
        var tokenOnly = false

        @Flag(name: .customLong("export"), help: "Print `export CLAUDE_CODE_OAUTH_TOKEN=…` for a shell.")
        var exportLine = false

        @Flag(help: "Print JSON with the token and its metadata.")
        var json = false

        func validate() throws {
            if [tokenOnly, exportLine, json].filter({ $0 }).count > 1 {
                throw ValidationError("choose one of --token-only, --export and --json")
            }
        }

        func run() throws {
            let token = try TokenCommand.resolve()
            if json {
                Terminal.out(try Terminal.json(TokenJSON(token, status: TokenStatus(token: token, now: Date()), includeSecret: true)))
            } else if exportLine {
                Terminal.out("export \(token.kind.environmentVariable)='\(token.value.replacingOccurrences(of: "'", with: "'\\''"))'")
            } else {
                Terminal.out(token.value)
            }
        }
    }

    struct TokenJSON: Encodable {
        var token: String?
        var redacted: String
        var kind: String
        var source: String
        var variable: String
        var expiresAt: Date?
        var secondsLeft: Int?
        var urgency: String
        var subscriptionType: String?
        var scopes: [String]?
        var warnings: [String]

        init(_ t: Token, status: TokenStatus, includeSecret: Bool) {
            token = includeSecret ? t.value : nil
            redacted = t.redacted
            kind = t.kind.rawValue
            source = t.source.description
            variable = t.kind.environmentVariable
            expiresAt = t.expiresAt
            secondsLeft = status.timeLeft.flatMap { $0.rounded(.towardZero).wholeNumber(in: -(1 << 53)...(1 << 53)) }
            urgency = status.urgency.rawValue
            subscriptionType = t.subscriptionType
            scopes = t.scopes
            warnings = status.warnings
        }
    }
}
