import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Mode C: Fly.io Machines, ephemeral and remote. The token is the app's secret
/// `CLAUDE_CODE_OAUTH_TOKEN`, pushed ahead of runs (`ccdeck fly push-token`, its value on stdin)
/// and given to every machine at boot; ccdeck notes which token it pushed (a fingerprint) and
/// refuses a run while Fly holds another or an expired one.
///
/// A run: the workspace (a tar) and the prompt go up as `--file-local` files of a `fly machine
/// run` (which forwards no stdin and no output) with restart policy `no` and ccdeck's metadata;
/// the machine unpacks the workspace, runs Claude Code, packs the workspace again, says
/// `ccdeck-exit N` and waits; ccdeck follows `fly logs`, takes the agent's lines out of its JSON
/// entries, then fetches the packed workspace (`fly ssh sftp get`) into the local one, and
/// destroys the machine.
public struct FlyBackend: SandboxBackend, TokenKeeper {
    public let kind = BackendKind.fly
    public let environment: [String: String]
    public var queryTimeout: TimeInterval = 120
    /// A workspace larger than this does not go up: say so rather than wait for it.
    public static let maxWorkspaceBytes = 64 << 20
    /// How often `machine run` is tried again after a capacity error, and how long it waits first.
    static let capacityRetries = 3
    static let capacityBackoff: TimeInterval = 0.5

    public init(environment: [String: String]) { self.environment = environment }

    public var traits: BackendTraits {
        var t = BackendTraits(modeLetter: "C", isolation: .remoteMachine, tokenDelivery: .appSecret, workspace: .uploadAndDownload,
                              workspaceInside: "/workspace", mark: .metadata, resourceNoun: "machine", canRun: true,
                              usesImage: true, takesRuntimeArguments: false)
        t.optionNames = ["app", "region"]
        t.autoRank = 50
        return t
    }

    var executable: String? {
        ["fly", "flyctl"].first { ChildProcess.resolve($0, environment: environment) != nil }
    }

    // MARK: probe

    public func probe(timeout: TimeInterval) -> BackendStatus {
        guard let executable else {
            return BackendStatus(kind: kind, state: .notInstalled, detail: "neither fly nor flyctl found in PATH")
        }
        let started = Date()
        let (output, early) = Probe.run(kind, executable, ["version"], environment: environment, timeout: timeout)
        if let early { return early }
        let version = output.flatMap { DockerSandboxBackend.version(in: $0.stdout) }
        // The API is the "daemon": are we logged in, and does it answer?
        let left = max(0.5, timeout - Date().timeIntervalSince(started))
        let (auth, authEarly) = Probe.run(kind, executable, ["auth", "whoami"], environment: environment, timeout: left)
        if var authEarly {
            authEarly.clientVersion = version
            if authEarly.state == .notResponding { authEarly.detail = "the Fly.io API did not answer within \(Probe.formatTimeout(left))" }
            return authEarly
        }
        guard let auth, auth.status.succeeded else {
            return BackendStatus(kind: kind, state: .daemonDown, clientVersion: version,
                                 detail: "not logged in: \(auth?.stderrSummary ?? "") (run `fly auth login`)")
        }
        let who = auth.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let app = appName(nil).map { ", app \($0)" } ?? ", no app set (FLY_APP, fly.toml or --app)"
        return BackendStatus(kind: kind, state: .ready, clientVersion: version, detail: (who.isEmpty ? "logged in" : "logged in as \(who)") + app)
    }

    // MARK: app and state

    /// The app: `--app`, else FLY_APP, else the `app` of ./fly.toml.
    public func appName(_ given: String?) -> String? {
        if let given, !given.isEmpty { return given }
        if let env = environment["FLY_APP"], !env.isEmpty { return env }
        return Self.tomlValue("app", in: FileManager.default.currentDirectoryPath + "/fly.toml")
    }

    func region(_ given: String?) -> String? {
        given ?? Self.tomlValue("primary_region", in: FileManager.default.currentDirectoryPath + "/fly.toml")
    }

    /// `key = "value"` at the top level of a fly.toml (ccdeck reads nothing else from it).
    static func tomlValue(_ key: String, in path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.lineSlices {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("[") { break }  // top-level keys come before the first table
            let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[0] == key else { continue }
            return parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        return nil
    }

    /// What ccdeck noted about an app: which token it pushed, which image is current.
    public struct AppState: Codable, Sendable {
        public var token: KeptToken?
        public var imageTag: String?
        public var imageBuiltAt: Date?
    }

    static func statePath(store: RunStore, app: String) -> String { store.root + "/fly/" + app + ".json" }

    public func loadState(store: RunStore, app: String) -> AppState {
        guard let data = FileManager.default.contents(atPath: Self.statePath(store: store, app: app)) else { return AppState() }
        return (try? RunStore.decoder.decode(AppState.self, from: data)) ?? AppState()
    }

    func saveState(_ state: AppState, store: RunStore, app: String) throws {
        try FileManager.default.createDirectory(atPath: store.root + "/fly", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let data = try RunStore.encoder.encode(state)
        try data.write(to: URL(fileURLWithPath: Self.statePath(store: store, app: app)), options: .atomic)
    }

    // MARK: token

    public func pushToken(_ token: Token, store: RunStore) throws -> String {
        guard let app = appName(nil) else { throw BackendError.refused(Self.noApp) }
        let input = Data("\(token.kind.environmentVariable)=\(token.value)\n".utf8)
        let out = try fly(["secrets", "import", "--stage", "-a", app], input: input, what: "fly secrets import")
        guard out.status.succeeded else { throw Self.failure("fly secrets import", out) }
        var state = loadState(store: store, app: app)
        state.token = KeptToken(place: "fly app \(app)", fingerprint: token.fingerprint, pushedAt: Date(), expiresAt: token.expiresAt)
        try saveState(state, store: store, app: app)
        return "fly app \(app) (staged: machines started from now on get it)"
    }

    public func keptToken(store: RunStore) -> KeptToken? {
        appName(nil).flatMap { loadState(store: store, app: $0).token }
    }

    static let noApp = "no Fly app: give --app, set FLY_APP, or run where fly.toml names it"

    // MARK: image

    /// Builds the runner image and pushes it to `registry.fly.io/APP:TAG` (flyctl authenticates
    /// the push itself, right before it), and notes the tag as the app's current one.
    public func buildAndPush(app: String, tag: String, dockerfile: String, context: String?, store: RunStore,
                             progress: (String) -> Void) throws -> String {
        guard let executable else { throw BackendError.unavailable(kind, "neither fly nor flyctl is installed") }
        let fm = FileManager.default
        let scratch = fm.temporaryDirectory.appendingPathComponent("ccdeck-fly-\(UUID().uuidString.prefix(8))").path
        try fm.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fm.removeItem(atPath: scratch) }
        try dockerfile.write(toFile: scratch + "/Dockerfile", atomically: true, encoding: .utf8)
        let child = try ChildProcess.spawn(Command(executable, ["deploy", "--build-only", "--push", "--image-label", tag, "-a", app,
                                                                "--dockerfile", scratch + "/Dockerfile", context ?? scratch],
                                                   environment: environment))
        var tail: [String] = []
        let status = ProcessRunner.stream(child, onStdoutLine: { progress(InertText.line(String(decoding: $0, as: UTF8.self))) },
                                          onStderrLine: { line in
            let text = InertText.line(String(decoding: line, as: UTF8.self))
            tail = Array((tail + [text]).suffix(5))
            progress(text)
        })
        guard status.succeeded else {
            throw BackendError.commandFailed("fly deploy --build-only --push", RunJudgement.meaningfulLine(tail) ?? "\(status)")
        }
        var state = loadState(store: store, app: app)
        state.imageTag = tag
        state.imageBuiltAt = Date()
        try saveState(state, store: store, app: app)
        return "registry.fly.io/\(app):\(tag)"
    }

    // MARK: run

    public func prepare(_ spec: RunSpec, build: ImageBuild?, cancel: Cancellation,
                        progress: (String) -> Void) throws -> Preparation {
        if let unknown = spec.options.keys.sorted().first(where: { !traits.optionNames.contains($0) }) {
            throw BackendError.refused("fly does not take --\(unknown)")
        }
        guard let app = appName(spec.options["app"]?.last) else { throw BackendError.refused(Self.noApp) }
        let store = RunStore(environment: environment)
        let state = loadState(store: store, app: app)
        // The token Fly holds must be this one, and alive: nothing is started before that is so.
        guard let kept = state.token else {
            throw BackendError.refused("fly app \(app) holds no token from ccdeck: run `ccdeck fly push-token` first")
        }
        if let local = spec.token, kept.fingerprint != Token.fingerprint(of: local.value) {
            throw BackendError.refused("fly app \(app) holds another token than this one (pushed \(kept.describe(against: nil, now: Date()))): "
                                       + "run `ccdeck fly push-token` or press the dashboard's re-push key")
        }
        if let expires = kept.expiresAt, expires <= Date() {
            throw BackendError.refused("the token fly app \(app) holds has expired: log in again, then `ccdeck fly push-token`")
        }
        var image = spec.image
        if image == RunnerImage.defaultTag {
            guard let tag = state.imageTag else {
                throw BackendError.refused("no runner image pushed for fly app \(app): run `ccdeck fly build` first")
            }
            image = "registry.fly.io/\(app):\(tag)"
        }
        var prep = Preparation(agentUser: "the image's user, on a machine of fly app \(app)")
        prep.choices = ["app": app, "image": image]
        if let r = region(spec.options["region"]?.last) { prep.choices["region"] = r }
        return prep
    }

    /// The machine's command: unpack the workspace, run the agent on the prompt, pack the
    /// workspace again, say how it ended, and wait to be fetched from and destroyed.
    static let machineScript = """
        mkdir -p /workspace && cd /workspace && tar -xf /run/ccdeck/workspace.tar && \
        claude -p --dangerously-skip-permissions --output-format stream-json --verbose < /run/ccdeck/prompt; \
        code=$?; tar -cf /tmp/ccdeck-result.tar -C /workspace . ; echo "ccdeck-exit $code"; \
        trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done
        """

    static func machineRunArguments(app: String, region: String?, name: String, image: String, mark: [String: String],
                                    variables: [String: String], workspaceTar: String, promptFile: String) -> [String] {
        var args = ["machine", "run", image, "-a", app, "--name", name, "--restart", "no", "--detach"]
        if let region { args += ["-r", region] }
        // `-e` takes NAME=value only, so only variables that are no secret go this way (the token is the app's secret).
        for (k, v) in variables.sorted(by: { $0.key < $1.key }) { args += ["-e", "\(k)=\(v)"] }
        for (k, v) in mark.sorted(by: { $0.key < $1.key }) {
            args += ["--metadata", Self.metadataKey(k) + "=" + v]
        }
        args += ["--file-local", "/run/ccdeck/workspace.tar=" + workspaceTar, "--file-local", "/run/ccdeck/prompt=" + promptFile,
                 "--entrypoint", "/bin/sh", "--", "-c", machineScript]
        return args
    }

    /// `ccdeck.run` → `ccdeck_run`: underscores keep `?metadata.key=` queries unambiguous.
    static func metadataKey(_ key: String) -> String { key.replacingOccurrences(of: ".", with: "_") }

    public func start(_ spec: RunSpec, preparation: Preparation) throws -> AgentLaunch {
        guard let executable, let app = preparation.choices["app"], let image = preparation.choices["image"] else {
            throw BackendError.unavailable(kind, "not prepared")
        }
        // The workspace and the prompt go up as files (0600, private folder): fly forwards no stdin.
        let fm = FileManager.default
        let up = fm.temporaryDirectory.appendingPathComponent("ccdeck-fly-up-\(spec.id)").path
        try fm.createDirectory(atPath: up, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fm.removeItem(atPath: up) }
        let tar = try ProcessRunner.run(Command("tar", ["-cf", up + "/workspace.tar", "-C", spec.workspace, "--exclude=./.git", "."],
                                                environment: environment), timeout: 300)
        guard tar.status.succeeded else { throw BackendError.commandFailed("tar (the workspace)", tar.stderrSummary) }
        let size = ((try? fm.attributesOfItem(atPath: up + "/workspace.tar"))?[.size] as? Int) ?? 0
        if size > Self.maxWorkspaceBytes {
            throw BackendError.refused("the workspace is \(size >> 20) MiB: fly runs take at most \(Self.maxWorkspaceBytes >> 20) MiB up")
        }
        guard fm.createFile(atPath: up + "/prompt", contents: Data(spec.prompt.utf8), attributes: [.posixPermissions: 0o644]) else {
            throw BackendError.commandFailed("the prompt file", up + "/prompt")
        }
        let name = DockerSandboxBackend.sandboxName(store: spec.mark[Mark.store] ?? "", runID: spec.id)
        var variables: [String: String] = [:]
        for name in spec.passEnvironment where name != spec.token?.name { variables[name] = spec.environment[name] }
        let args = Self.machineRunArguments(app: app, region: preparation.choices["region"], name: name, image: image,
                                            mark: spec.mark, variables: variables, workspaceTar: up + "/workspace.tar",
                                            promptFile: up + "/prompt")
        var machineID: String?
        for attempt in 0...Self.capacityRetries {
            let out = try fly(args, what: "fly machine run")
            if out.status.succeeded {
                machineID = Self.machineID(in: out.stdout)
                break
            }
            let why = out.stderrSummary
            // Capacity is Fly's to lack for a while: try again, a little later each time.
            guard Self.isCapacity(why), attempt < Self.capacityRetries else {
                throw BackendError.commandFailed("fly machine run", Self.isCapacity(why)
                    ? "no capacity after \(Self.capacityRetries + 1) tries: \(why)" : why)
            }
            usleep(useconds_t(Self.capacityBackoff * pow(2, Double(attempt)) * 1_000_000))
        }
        guard let machineID else { throw BackendError.commandFailed("fly machine run", "no machine id in its output") }
        let logs = try ChildProcess.spawn(Command(executable, ["logs", "-a", app, "--machine", machineID, "--json"],
                                                  environment: environment), stdin: .null)
        return AgentLaunch(process: logs, sandboxID: machineID, decoder: FlyLogDecoder())
    }

    static func isCapacity(_ message: String) -> Bool {
        ["insufficient resources", "capacity"].contains { message.localizedCaseInsensitiveContains($0) }
    }

    /// `Machine ID: 148e…` in `fly machine run`'s output.
    static func machineID(in text: String) -> String? {
        for line in text.lineSlices {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, parts[0] == "Machine ID", !parts[1].isEmpty { return parts[1] }
        }
        return nil
    }

    public func stop(_ sandbox: SandboxRef) -> Bool {
        guard let app = appName(nil), let id = sandbox.id,
              let out = try? fly(["machine", "stop", id, "-a", app], what: "fly machine stop") else { return false }
        return out.status.succeeded
    }

    /// The exit status comes from the log stream's last word (`ccdeck-exit N`).
    public func outcome(_ sandbox: SandboxRef) -> SandboxOutcome? { nil }

    /// The workspace as the agent left it, fetched from the machine and unpacked over the local
    /// one: files added and changed come back (files the agent deleted stay here).
    public func collect(_ sandbox: SandboxRef, into workspace: String) throws {
        guard let app = appName(nil), let id = sandbox.id else { throw BackendError.refused(Self.noApp) }
        let fm = FileManager.default
        let down = fm.temporaryDirectory.appendingPathComponent("ccdeck-fly-down-\(sandbox.runID)").path
        try fm.createDirectory(atPath: down, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fm.removeItem(atPath: down) }
        let get = try fly(["ssh", "sftp", "get", "/tmp/ccdeck-result.tar", down + "/result.tar", "-a", app, "--machine", id],
                          what: "fly ssh sftp get")
        guard get.status.succeeded else { throw Self.failure("fly ssh sftp get", get) }
        let untar = try ProcessRunner.run(Command("tar", ["-xf", down + "/result.tar", "-C", workspace, "--no-same-owner"],
                                                  environment: environment), timeout: 300)
        guard untar.status.succeeded else { throw BackendError.commandFailed("tar (the changes)", untar.stderrSummary) }
    }

    public func remove(_ sandbox: SandboxRef) throws {
        guard let app = appName(nil) else { throw BackendError.refused(Self.noApp) }
        let id = sandbox.id ?? sandbox.name
        let out = try fly(["machine", "destroy", id, "-a", app, "--force"], what: "fly machine destroy")
        // Not idempotent: "already destroyed" and "not found" both mean gone.
        if !out.status.succeeded && !["not found", "already been destroyed", "destroyed"].contains(where: {
            out.stderrSummary.localizedCaseInsensitiveContains($0)
        }) {
            throw Self.failure("fly machine destroy \(InertText.line(id))", out)
        }
    }

    public func resources(store: String) throws -> [SandboxResource] {
        try machines().filter { $0.metadata[Self.metadataKey(Mark.store)] == store }.map { m in
            SandboxResource(id: m.id, name: m.name, backend: kind, runID: m.metadata[Self.metadataKey(Mark.run)], state: m.state,
                            createdAt: m.createdAt)
        }
    }

    public func foreignResources(store: String) throws -> [SandboxResource] {
        try machines().filter { $0.metadata[Self.metadataKey(Mark.store)] != store }.map { m in
            SandboxResource(id: m.id, name: m.name, backend: kind, runID: nil, state: m.state, createdAt: m.createdAt)
        }
    }

    struct Machine {
        var id: String
        var name: String
        var state: String
        var createdAt: Date?
        var metadata: [String: String]
    }

    /// `fly machine list --json`: an (indented) array; no filter flag, so the filtering is here.
    func machines() throws -> [Machine] {
        guard let app = appName(nil) else { return [] }
        let out = try fly(["machine", "list", "-a", app, "--json"], what: "fly machine list")
        guard out.status.succeeded else { throw Self.failure("fly machine list", out) }
        return Self.parseMachines(out.stdout)
    }

    static func parseMachines(_ text: String) -> [Machine] {
        guard case .array(let items)? = JSONValue.parse(Data(text.utf8)) else { return [] }
        return items.compactMap { item in
            guard let id = item["id"]?.stringValue else { return nil }
            var metadata: [String: String] = [:]
            if case .object(let fields)? = item["config"]?["metadata"] { metadata = fields.compactMapValues(\.stringValue) }
            return Machine(id: id, name: item["name"]?.stringValue ?? id, state: item["state"]?.stringValue ?? "?",
                           createdAt: item["created_at"]?.stringValue.flatMap(EngineOutput.parseRFC3339), metadata: metadata)
        }
    }

    public func attachCommand(_ sandbox: SandboxRef) -> Command? {
        guard let executable, let app = appName(nil), let id = sandbox.id else { return nil }
        return Command(executable, ["ssh", "console", "-a", app, "--machine", id], environment: environment)
    }

    // MARK: helpers

    static func failure(_ what: String, _ out: ProcessRunner.Output) -> BackendError {
        let why = out.stderrSummary
        if why.localizedCaseInsensitiveContains("could not find app") {
            return .refused("\(why): create it with `fly apps create` (see docs/fly.md)")
        }
        if why.localizedCaseInsensitiveContains("access token") || why.localizedCaseInsensitiveContains("not logged in") {
            return .refused("fly: not logged in (run `fly auth login`)")
        }
        return .commandFailed(what, why)
    }

    private func fly(_ args: [String], input: Data? = nil, what: String) throws -> ProcessRunner.Output {
        guard let executable else { throw BackendError.unavailable(kind, "neither fly nor flyctl is installed") }
        let out = try ProcessRunner.run(Command(executable, args, environment: environment), input: input, timeout: queryTimeout)
        if out.timedOut { throw BackendError.timedOut(what, queryTimeout) }
        return out
    }
}

/// `fly logs --json` prints each entry as indented JSON over several lines; the agent's line is
/// its `message`. The machine's last word, `ccdeck-exit N`, ends the run.
public final class FlyLogDecoder: OutputDecoder {
    public init() {}
    private var pending = Data()
    private var depth = 0
    public private(set) var finished = false
    public private(set) var exitCode: Int32?

    public func decode(_ line: Data) -> [Data] {
        // Count braces outside strings to know when an entry is whole.
        var inString = false, escaped = false
        for b in line {
            if escaped { escaped = false; continue }
            if inString {
                if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
                continue
            }
            if b == 0x22 { inString = true } else if b == 0x7B { depth += 1 } else if b == 0x7D { depth -= 1 }
        }
        pending.append(line)
        pending.append(0x0A)
        guard depth <= 0 else { return [] }
        depth = 0
        defer { pending.removeAll(keepingCapacity: true) }
        guard let entry = JSONValue.parse(pending), let message = entry["message"]?.stringValue else { return [] }
        if message.hasPrefix("ccdeck-exit ") {
            finished = true
            exitCode = Int32(message.dropFirst("ccdeck-exit ".count).trimmingCharacters(in: .whitespaces))
            return []
        }
        return [Data(message.utf8)]
    }
}
