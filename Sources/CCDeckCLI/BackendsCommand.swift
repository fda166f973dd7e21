import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation

struct BackendsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backends",
        abstract: "Detect every backend (docker, podman, docker sandbox, sbx, fly, incus): installed, reachable, version.",
        aliases: ["doctor"]
    )

    @Flag(help: "Print JSON for scripts.")
    var json = false

    @Option(help: "Seconds each probe may take before its daemon counts as not responding.")
    var timeout: Double = 3

    func validate() throws {
        guard timeout > 0, timeout <= 60 else { throw ValidationError("--timeout must be between 0 and 60 seconds") }
    }

    func run() throws {
        try Self.show(json: json, timeout: timeout)
    }

    static func show(json: Bool, timeout: Double) throws {
        let env = ProcessInfo.processInfo.environment
        let backends = CLIContext.registry.all(environment: env)
        let letters = Dictionary(uniqueKeysWithValues: backends.map { ($0.kind, $0.traits.modeLetter) })
        let statuses = BackendRegistry.probeAll(backends, timeout: timeout)
        if json {
            Terminal.out(try Terminal.json(statuses.map { BackendJSON($0, mode: letters[$0.kind] ?? "?") }))
            return
        }
        let rows = statuses.map { s in
            [s.kind.displayName, letters[s.kind] ?? "?", s.state.label, s.version ?? "-", s.detail.isEmpty ? "" : s.detail]
        }
        Terminal.table(["BACKEND", "MODE", "STATE", "VERSION", "DETAIL"], rows).forEach(Terminal.out)
    }


    struct BackendJSON: Encodable {
        var backend: String
        var mode: String
        var state: String
        var installed: Bool
        var reachable: Bool
        var clientVersion: String?
        var serverVersion: String?
        var detail: String
        var executable: String?

        init(_ s: BackendStatus, mode: String) {
            backend = s.kind.rawValue
            self.mode = mode
            state = s.state.rawValue
            installed = s.isInstalled
            reachable = s.state == .ready
            clientVersion = s.clientVersion
            serverVersion = s.serverVersion
            detail = s.detail
            executable = s.executable
        }
    }
}
