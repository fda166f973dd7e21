import CCDeckCore
import Foundation

/// Mode B: Docker Sandboxes microVMs, through either CLI users have: Docker Desktop's
/// `docker sandbox` (4.58+) or its standalone successor `sbx`. ccdeck uses the one installed (sbx
/// first when both are), or the one `--sandbox-cli docker|sbx` names.
///
/// A headless run: `create --name ccdeck-<store>-<run> claude WORKSPACE` (the workspace is shared
/// at the same path), then `exec -i -w WORKSPACE NAME claude -p …` with the prompt on stdin, then
/// `rm`. Neither CLI keeps labels, so the name carries ccdeck's mark: its store and the run. No
/// token is given: Docker's host proxy adds the credential to the agent's requests, and the
/// sandbox holds nothing.
public struct DockerSandboxBackend: SandboxBackend {
    public enum CLI: String, Sendable, CaseIterable {
        case docker, sbx

        var executable: String { self == .docker ? "docker" : "sbx" }
        /// The words before a subcommand: `docker sandbox …`, `sbx …`.
        var prefix: [String] { self == .docker ? ["sandbox"] : [] }
        var displayName: String { self == .docker ? "docker sandbox" : "sbx" }
    }

    public let kind = BackendKind.sandbox
    public let environment: [String: String]
    public var queryTimeout: TimeInterval = 120

    public init(environment: [String: String]) { self.environment = environment }

    public var traits: BackendTraits {
        var t = BackendTraits(modeLetter: "B", isolation: .microVM, tokenDelivery: .hostProxy, workspace: .samePathShare,
                              workspaceInside: nil, mark: .namePrefix(Self.namePrefix), resourceNoun: "sandbox", canRun: true,
                              usesImage: false, takesRuntimeArguments: false)
        t.optionNames = ["sandbox-cli"]
        t.autoRank = 40
        return t
    }

    static let namePrefix = "ccdeck-"

    /// `ccdeck-<store>-<run id>`: only letters, digits and `-`, which both CLIs accept.
    public static func sandboxName(store: String, runID: String) -> String {
        namePrefix + store + "-" + String(runID.map { $0.isLetter || $0.isNumber ? $0 : "-" })
    }

    /// The run id in a name of this store's, or nil for a sandbox that is not this store's.
    static func runID(in name: String, store: String) -> String? {
        let prefix = namePrefix + store + "-"
        guard name.hasPrefix(prefix), name.count > prefix.count else { return nil }
        return String(name.dropFirst(prefix.count))
    }

    // MARK: probe

    /// Each CLI's answer: installed, and its version.
    func probeCLI(_ cli: CLI, timeout: TimeInterval) -> BackendStatus {
        let (output, early) = Probe.run(kind, cli.executable, cli.prefix + ["version"], environment: environment, timeout: timeout)
        if var early {
            if early.state == .notInstalled { early.detail = "\(cli.displayName): not installed" }
            return early
        }
        guard let output else { return BackendStatus(kind: kind, state: .error) }
        let text = output.stdout + output.stderr
        if output.status.succeeded { return BackendStatus(kind: kind, state: .ready, clientVersion: Self.version(in: text)) }
        if text.contains("is not a docker command") || text.contains("unknown command") {
            return BackendStatus(kind: kind, state: .notInstalled,
                                 detail: "\(cli.displayName): the plugin is not installed (Docker Desktop 4.58+)")
        }
        return BackendStatus(kind: kind, state: .daemonDown, clientVersion: Self.version(in: text),
                             detail: "\(cli.displayName): \(output.stderrSummary)")
    }

    /// Both CLIs at once; ready when either is, saying which are there.
    public func probe(timeout: TimeInterval) -> BackendStatus {
        let statuses = BackendRegistry.probeAll(CLI.allCases.map { CLIProbe(backend: self, cli: $0) }, timeout: timeout)
        let words = zip(CLI.allCases, statuses).map { cli, s in
            s.state == .ready ? "\(cli.displayName) \(s.clientVersion ?? "?")" : s.detail.isEmpty ? "\(cli.displayName): \(s.state.label)" : s.detail
        }
        let detail = words.joined(separator: "; ")
        if let ready = statuses.first(where: { $0.state == .ready }) {
            return BackendStatus(kind: kind, state: .ready, clientVersion: ready.clientVersion, detail: detail)
        }
        let best = statuses.first { $0.state != .notInstalled } ?? statuses[0]
        return BackendStatus(kind: kind, state: best.state, detail: detail)
    }

    /// One CLI's probe, run beside the other's.
    struct CLIProbe: SandboxBackend {
        let backend: DockerSandboxBackend
        let cli: CLI
        var kind: BackendKind { backend.kind }
        var traits: BackendTraits { backend.traits }
        func probe(timeout: TimeInterval) -> BackendStatus { backend.probeCLI(cli, timeout: timeout) }
        func prepare(_ spec: RunSpec, build: ImageBuild?, cancel: Cancellation, progress: (String) -> Void) throws -> Preparation {
            throw BackendError.notImplemented(kind)
        }
        func start(_ spec: RunSpec, preparation: Preparation) throws -> AgentLaunch { throw BackendError.notImplemented(kind) }
        func stop(_ sandbox: SandboxRef) -> Bool { false }
        func outcome(_ sandbox: SandboxRef) -> SandboxOutcome? { nil }
        func remove(_ sandbox: SandboxRef) throws {}
        func resources(store: String) throws -> [SandboxResource] { [] }
    }

    /// The first token that looks like a version (`v0.12.0`, `4.58.1`).
    static func version(in text: String) -> String? {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," || $0 == ":" })
            .map { $0.hasPrefix("v") ? $0.dropFirst() : $0 }
            .first { $0.first?.isNumber == true && $0.contains(".") }
            .map(String.init)
    }

    /// The CLI a run uses: the one named, else sbx (the successor) when ready, else docker sandbox.
    func chooseCLI(_ named: String?) throws -> CLI {
        if let named {
            guard let cli = CLI(rawValue: named) else {
                throw BackendError.refused("--sandbox-cli takes docker or sbx, not \(InertText.line(named))")
            }
            let status = probeCLI(cli, timeout: 10)
            guard status.state == .ready else { throw BackendError.unavailable(kind, status.detail) }
            return cli
        }
        for cli in [CLI.sbx, .docker] where probeCLI(cli, timeout: 10).state == .ready { return cli }
        throw BackendError.unavailable(kind, "neither `docker sandbox` (Docker Desktop 4.58+) nor `sbx` is installed and answering")
    }

    // MARK: run

    public func prepare(_ spec: RunSpec, build: ImageBuild?, cancel: Cancellation,
                        progress: (String) -> Void) throws -> Preparation {
        if let unknown = spec.options.keys.sorted().first(where: { !traits.optionNames.contains($0) }) {
            throw BackendError.refused("the sandbox mode does not take --\(unknown)")
        }
        if !spec.runtimeArguments.isEmpty { throw BackendError.refused("the sandbox mode does not take --runtime-arg") }
        let cli = try chooseCLI(spec.options["sandbox-cli"]?.last)
        let name = Self.sandboxName(store: spec.mark[Mark.store] ?? "", runID: spec.id)
        let out = try query(cli, Self.createArguments(cli, name: name, workspace: spec.workspace), what: "\(cli.displayName) create")
        guard out.status.succeeded else {
            throw BackendError.commandFailed("\(cli.displayName) create", out.stderrSummary)
        }
        var prep = Preparation(agentUser: "the sandbox's own agent user (\(cli.displayName))", sandboxName: name)
        prep.choices["cli"] = cli.rawValue
        return prep
    }

    static func createArguments(_ cli: CLI, name: String, workspace: String) -> [String] {
        cli.prefix + ["create", "--name", name, "claude", workspace]
    }

    /// `exec -i -w WORKSPACE NAME claude -p …`: the prompt on stdin; the variables the run passes
    /// (never the token: the sandbox gets none) as `-e NAME=value`, which both CLIs take.
    static func execArguments(_ cli: CLI, _ spec: RunSpec, name: String) -> [String] {
        var args = cli.prefix + ["exec", "-i", "-w", spec.workspace]
        for variable in spec.passEnvironment where variable != spec.token?.name {
            if let value = spec.environment[variable] { args += ["-e", "\(variable)=\(value)"] }
        }
        return args + [name, "claude", "-p", "--dangerously-skip-permissions"] + RunSpec.agentArguments
    }

    public func start(_ spec: RunSpec, preparation: Preparation) throws -> AgentLaunch {
        let cli = try preparation.choices["cli"].flatMap(CLI.init(rawValue:)) ?? chooseCLI(spec.options["sandbox-cli"]?.last)
        let name = preparation.sandboxName ?? spec.sandboxName
        var env = environment
        for variable in ["CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY"] { env[variable] = nil }  // nothing to leak
        let child = try ChildProcess.spawn(Command(cli.executable, Self.execArguments(cli, spec, name: name), environment: env),
                                           stdin: .pipe)
        return AgentLaunch(process: child, sandboxID: cli.rawValue)
    }

    /// The CLI that made a sandbox: recorded as the run's sandbox id (`sbx`, `docker`).
    func cli(of sandbox: SandboxRef) -> CLI {
        sandbox.id.flatMap { CLI(rawValue: String($0.split(separator: ":").first ?? "")) } ?? .sbx
    }

    /// A resource id is `CLI:NAME`; a run's ref names the sandbox.
    func name(of sandbox: SandboxRef) -> String {
        sandbox.name.split(separator: ":", maxSplits: 1).last.map(String.init) ?? sandbox.name
    }

    public func stop(_ sandbox: SandboxRef) -> Bool {
        let cli = cli(of: sandbox)
        guard let out = try? query(cli, cli.prefix + ["stop", name(of: sandbox)], what: "\(cli.displayName) stop") else { return false }
        return out.status.succeeded
    }

    /// The exit status is the `exec` client's own: nothing is kept after it.
    public func outcome(_ sandbox: SandboxRef) -> SandboxOutcome? { nil }

    public func remove(_ sandbox: SandboxRef) throws {
        let cli = cli(of: sandbox)
        let args = cli.prefix + ["rm"] + (cli == .sbx ? ["--force"] : []) + [name(of: sandbox)]
        let out = try query(cli, args, what: "\(cli.displayName) rm")
        if !out.status.succeeded && !Self.isGone(out.stderrSummary) {
            throw BackendError.commandFailed("\(cli.displayName) rm \(InertText.line(name(of: sandbox)))", out.stderrSummary)
        }
    }

    static func isGone(_ message: String) -> Bool {
        ["no sandbox named", "not found", "no such"].contains { message.localizedCaseInsensitiveContains($0) }
    }

    public func resources(store: String) throws -> [SandboxResource] {
        try listAll().filter { Self.runID(in: $0.name, store: store) != nil }.map {
            var r = $0
            r.runID = Self.runID(in: $0.name, store: store)
            return r
        }
    }

    public func foreignResources(store: String) throws -> [SandboxResource] {
        try listAll().filter { Self.runID(in: $0.name, store: store) == nil }
    }

    /// Every sandbox of every CLI that answers, as `CLI:NAME`.
    private func listAll() throws -> [SandboxResource] {
        var found: [SandboxResource] = []
        for cli in CLI.allCases where probeCLI(cli, timeout: 10).state == .ready {
            let out = try query(cli, cli.prefix + ["ls", "--json"], what: "\(cli.displayName) ls")
            guard out.status.succeeded else { throw BackendError.commandFailed("\(cli.displayName) ls", out.stderrSummary) }
            for s in Self.parseList(out.stdout) {
                found.append(SandboxResource(id: "\(cli.rawValue):\(s.name)", name: s.name, backend: kind, runID: nil,
                                             state: s.status, createdAt: s.createdAt))
            }
        }
        return found
    }

    /// `docker sandbox ls --json` (`{"vms":[…]}`) or `sbx ls --json` (`{"sandboxes":[…]}`). sbx's
    /// schema drifts (one release dropped `id`) and daemon start-up lines can come first on
    /// stdout: the JSON is read from the first `{`, and only `name` is required.
    static func parseList(_ text: String) -> [(name: String, status: String, createdAt: Date?)] {
        guard let start = text.firstIndex(of: "{"),
              let json = JSONValue.parse(Data(text[start...].utf8)) else { return [] }
        var items: [JSONValue] = []
        for key in ["sandboxes", "vms"] { if case .array(let list)? = json[key] { items += list } }
        return items.compactMap { item in
            guard let name = item["name"]?.stringValue else { return nil }
            let created = item["created_at"]?.stringValue.flatMap(EngineOutput.parseRFC3339)
            return (name, item["status"]?.stringValue ?? item["state"]?.stringValue ?? "?", created)
        }
    }

    public func attachCommand(_ sandbox: SandboxRef) -> Command? {
        let cli = cli(of: sandbox)
        return Command(cli.executable, cli.prefix + ["exec", "-it", name(of: sandbox), "sh", "-c",
                                                     "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"],
                       environment: environment)
    }

    private func query(_ cli: CLI, _ args: [String], what: String) throws -> ProcessRunner.Output {
        let out: ProcessRunner.Output
        do {
            out = try ProcessRunner.run(Command(cli.executable, args, environment: environment), timeout: queryTimeout)
        } catch ProcessError.notFound {
            throw BackendError.unavailable(kind, "\(cli.executable) is not installed")
        }
        if out.timedOut { throw BackendError.timedOut(what, queryTimeout) }
        return out
    }
}
