import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Mode D: Incus system containers. An instance is made from an image alias that holds Claude
/// Code, gets the workspace as a disk device with UID shifting (a host uid N is uid N inside, so
/// the agent runs as the folder's owner and its files come back theirs), and the agent runs by
/// `incus exec` as that user. By default one instance per workspace is kept and reused by the
/// next run there (no launch cost, what the agent installed stays); `--ephemeral` makes one per
/// run and deletes it after.
///
/// The token never enters an argv, the instance's config or `incus monitor` (which broadcasts
/// every exec's argv): it goes, with the other variables the run passes, on the agent's stdin
/// ahead of the prompt; a small shell reads them into its environment, then becomes Claude Code,
/// which reads the prompt from the rest of stdin. Nothing is written to a file.
public struct IncusBackend: SandboxBackend, ImageBuilder {
    public let kind = BackendKind.incus
    public let environment: [String: String]
    public var queryTimeout: TimeInterval = 60

    /// incusd's socket, when ccdeck may ask it directly instead of through the CLI.
    let apiSocket: String?

    public init(environment: [String: String]) {
        self.environment = environment
        apiSocket = Self.incusSocket(environment: environment)
    }

    /// Where the incus CLI itself reaches the local daemon (`INCUS_SOCKET`, `INCUS_DIR`, or
    /// `/var/lib/incus/unix.socket`), unless its default remote is another one.
    static func incusSocket(environment: [String: String]) -> String? {
        let config = environment["INCUS_CONF"].map { $0 + "/config.yml" }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.config/incus/config.yml")
        if let text = try? String(contentsOfFile: config, encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("default-remote:") }),
           line.dropFirst("default-remote:".count).trimmingCharacters(in: .whitespaces) != "local" {
            return nil
        }
        if let socket = environment["INCUS_SOCKET"], !socket.isEmpty { return socket }
        return (environment["INCUS_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/lib/incus") + "/unix.socket"
    }

    /// incusd's answer to a GET over its socket: the `metadata` of a success, `.null` for 404,
    /// or nil when the CLI should be asked instead (no socket, not allowed there, not answering).
    func api(_ path: String) -> JSONValue? {
        guard let socket = apiSocket,
              let answer = try? UnixHTTP(socketPath: socket, timeout: queryTimeout).get(path) else { return nil }
        if answer.status == 404 { return .null }
        guard answer.succeeded, let body = JSONValue.parse(answer.body) else { return nil }
        return body["metadata"]
    }

    public var traits: BackendTraits {
        var t = BackendTraits(modeLetter: "D", isolation: .systemContainer, tokenDelivery: .stdin, workspace: .mount,
                              workspaceInside: "/workspace", mark: .configKeys, resourceNoun: "instance", canRun: true,
                              usesImage: true, takesRuntimeArguments: false)
        t.optionNames = Self.optionNames
        t.autoRank = 30
        return t
    }

    /// Options `ccdeck run --mode incus` takes.
    public static let optionNames: Set<String> = ["ephemeral", "profile", "config", "device"]
    /// The config keys of ccdeck's mark (`incus list user.ccdeck.store=S`).
    static let keyPrefix = "user.ccdeck."
    /// What a system container needs from an application image: an init (see `RunnerImage.incusInit`).
    static let initPath = "/ccdeck-init"

    /// Incus names: letters, digits and hyphens; a run's image tag `name:tag` becomes `name-tag`.
    public static func alias(for image: String) -> String {
        String(image.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" })
    }

    /// The instance kept for a workspace: the same one for every run there from this store.
    static func persistentName(workspace: String, store: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (store + ":" + workspace).utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "ccdeck-ws-" + String(String(hash, radix: 16).suffix(12))
    }

    // MARK: probe

    public func probe(timeout: TimeInterval) -> BackendStatus {
        let started = Date()
        let (output, early) = Probe.run(kind, "incus", ["version"], environment: cEnvironment, timeout: timeout)
        if let early { return early }
        guard let output else { return BackendStatus(kind: kind, state: .error) }
        let parsed = Self.parseVersion(output.stdout)
        let path = ChildProcess.resolve("incus", environment: environment)
        guard let server = parsed.server, server != "unreachable" else {
            let why = output.stderrSummary
            let detail = why.localizedCaseInsensitiveContains("permission denied")
                ? "no permission on the incus socket (add yourself to the incus-admin group)"
                : why.isEmpty ? "incusd is not reachable (is it running?)" : why
            return BackendStatus(kind: kind, state: .daemonDown, clientVersion: parsed.client, detail: detail, executable: path)
        }
        // A daemon that answers but has nowhere to put an instance cannot run anything.
        let left = max(0.5, timeout - Date().timeIntervalSince(started))
        let (pools, poolsEarly) = Probe.run(kind, "incus", ["storage", "list", "--format", "csv", "-c", "n"],
                                            environment: cEnvironment, timeout: left)
        if var poolsEarly { poolsEarly.clientVersion = parsed.client; return poolsEarly }
        let names = (pools?.stdout ?? "").split(separator: "\n").map(String.init)
        guard pools?.status.succeeded == true, !names.isEmpty else {
            return BackendStatus(kind: kind, state: .error, clientVersion: parsed.client, serverVersion: server,
                                 detail: "no storage pool (incus storage create default dir)", executable: path)
        }
        return BackendStatus(kind: kind, state: .ready, clientVersion: parsed.client, serverVersion: server,
                             detail: "pool \(names.joined(separator: ", "))", executable: path)
    }

    /// `incus version`: `Client version: 6.0.3` / `Server version: 6.0.3` (or `unreachable`).
    static func parseVersion(_ text: String) -> EngineOutput.Versions {
        var v = EngineOutput.Versions()
        for line in text.lineSlices {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "Client version" { v.client = parts[1] }
            if parts[0] == "Server version" { v.server = parts[1] }
        }
        return v
    }

    // MARK: prepare

    /// Who the agent is inside: with `shift=true` a host uid is the same uid inside.
    struct AgentUser: Equatable {
        var uid: UInt32
        var gid: UInt32
        var home: String

        init(_ owner: FileOwner) {
            uid = owner.uid
            gid = owner.gid
            home = owner.uid == 0 ? "/root" : owner.uid == UInt32(RunnerImage.agentUID) ? "/home/agent" : "/tmp/ccdeck-home"
        }
    }

    public func prepare(_ spec: RunSpec, build: ImageBuild?, cancel: Cancellation,
                        progress: (String) -> Void) throws -> Preparation {
        if let unknown = spec.options.keys.sorted().first(where: { !Self.optionNames.contains($0) }) {
            throw BackendError.refused("incus does not take --\(unknown)")
        }
        if !spec.runtimeArguments.isEmpty {
            throw BackendError.refused("incus does not take --runtime-arg (use --device, --profile or -c)")
        }
        if let name = spec.passEnvironment.first(where: { spec.environment[$0]?.contains("\n") == true }) {
            throw BackendError.refused("\(name) holds a line break: incus runs get their variables on stdin, one a line")
        }
        let devices = try Self.devices(spec)
        let ephemeral = spec.options["ephemeral"] != nil
        let name = ephemeral ? spec.sandboxName : Self.persistentName(workspace: spec.workspace, store: spec.mark[Mark.store] ?? "")
        let user = AgentUser(spec.workspaceOwner)
        let who = user.uid == 0 ? "root" : user.uid == UInt32(RunnerImage.agentUID) ? "the image's agent user" : "the workspace's owner"
        var prep = Preparation(agentUser: "uid \(user.uid):\(user.gid) (\(who)), in \(ephemeral ? "an ephemeral" : "a persistent") instance",
                               userArguments: [], sandboxName: name, persistent: !ephemeral)
        // incusd answered on its socket: the agent is started by ccdeck-incusexec, not the CLI.
        func overSocket() {
            if let client = Self.execClient(environment: environment) { prep.choices["client"] = client }
        }

        if !ephemeral {
            if let found = api("/1.0/instances/" + UnixHTTP.escape(name)) {
                if found != .null {
                    overSocket()
                    return try reuse(found, name: name, devices: devices, prep: prep, progress: progress)
                }
            } else if let existing = try listedInstance(name) {
                return try reuse(existing, name: name, devices: devices, prep: prep, progress: progress)
            }
        }
        // A new instance in one request to incusd, made and started (none of it secret); the CLI's
        // `incus launch` is the same request and a client start (~16 ms) and a question before it.
        let alias = try imageAlias(for: spec.image)
        let config = Self.instanceConfig(spec, user: user, ephemeral: ephemeral)
        let launch = LaunchRequest(name: name, source: .init(alias: alias), ephemeral: ephemeral,
                                   profiles: spec.options["profile"], config: config, devices: devices)
        switch try act("POST", "/1.0/instances", launch, what: "incus launch") {
        case .done?:
            overSocket()
            return prep
        case .failed(let why)?, .notFound(let why)?:
            // incusd says "Image not provided" for an alias it does not have: ask, to say what to do.
            if api("/1.0/images/aliases/" + UnixHTTP.escape(alias)) == .null { throw Self.missingImage(alias) }
            throw Self.launchFailure(why)
        case nil: break  // the socket is not ccdeck's to use: the CLI, as the user would
        }
        var args = ["launch", alias, name]
        if ephemeral { args.append("--ephemeral") }
        for profile in spec.options["profile"] ?? [] { args += ["-p", profile] }
        let out = try query(args, input: Data(Self.instanceYAML(config: config, devices: devices).utf8), what: "incus launch")
        guard out.status.succeeded else {
            let why = out.stderrSummary
            if why.localizedCaseInsensitiveContains("image") && Self.isNotFound(why) { throw Self.missingImage(alias) }
            throw Self.launchFailure(why)
        }
        return prep
    }

    /// The workspace's own instance: one look, and a call more only when something changed.
    func reuse(_ existing: JSONValue, name: String, devices: [String: [String: String]], prep: Preparation,
               progress: (String) -> Void) throws -> Preparation {
        if existing["status"]?.stringValue?.uppercased() != "RUNNING" { try run(["start", name], what: "incus start \(name)") }
        for (device, settings) in devices.sorted(by: { $0.key < $1.key })
        where Self.deviceSettings(existing["devices"]?[device]) != settings {
            _ = try? query(["config", "device", "remove", name, device], what: "incus config device remove")
            try run(["config", "device", "add", name, device] + settings.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" },
                    what: "incus config device add \(device)")
        }
        progress("reusing instance \(name)")
        return prep
    }

    /// `POST /1.0/instances`: what `incus launch` asks for (incusd starts it: `instance_create_start`).
    struct LaunchRequest: Encodable {
        struct Source: Encodable {
            var type = "image"
            var alias: String
        }
        var name: String
        var type = "container"
        var source: Source
        var ephemeral: Bool
        /// nil: the default profile, as `incus launch` without `-p`.
        var profiles: [String]?
        var config: [String: String]
        var devices: [String: [String: String]]
        var start = true
    }

    /// The devices a run's instance has: the workspace (uid-shifted) and those `--device` adds.
    static func devices(_ spec: RunSpec) throws -> [String: [String: String]] {
        var devices = ["workspace": ["type": "disk", "source": spec.workspace, "path": "/workspace", "shift": "true"]]
        for device in spec.options["device"] ?? [] {
            let parts = device.split(separator: ",").map(String.init)
            guard parts.count >= 2, parts[2...].allSatisfy({ $0.contains("=") }) else {
                throw BackendError.refused("--device \(InertText.line(device)): NAME,TYPE[,key=value…]")
            }
            var settings = ["type": parts[1]]
            for kv in parts[2...] {
                let pair = kv.split(separator: "=", maxSplits: 1).map(String.init)
                settings[pair[0]] = pair.count > 1 ? pair[1] : ""
            }
            devices[parts[0]] = settings
        }
        return devices
    }

    static func deviceSettings(_ value: JSONValue?) -> [String: String]? {
        guard case .object(let fields)? = value else { return nil }
        return fields.compactMapValues(\.stringValue)
    }

    /// A new instance's config: ccdeck's init, its mark, and the user's `-c` keys.
    static func instanceConfig(_ spec: RunSpec, user: AgentUser, ephemeral: Bool) -> [String: String] {
        var config: [String: String] = ["raw.lxc": "lxc.init.cmd=\(initPath)"]
        var mark = spec.mark
        mark[Mark.prefix + "workspace"] = spec.workspace
        mark[Mark.prefix + "uid"] = "\(user.uid)"
        mark[Mark.prefix + "gid"] = "\(user.gid)"
        mark[Mark.prefix + "persistent"] = ephemeral ? "false" : "true"
        for (k, v) in mark { config[keyPrefix + k.dropFirst(Mark.prefix.count)] = v }
        for kv in spec.options["config"] ?? [] {
            let pair = kv.split(separator: "=", maxSplits: 1).map(String.init)
            config[pair[0]] = pair.count > 1 ? pair[1] : ""
        }
        return config
    }

    /// `incus launch`'s YAML on stdin: the config and the devices.
    static func instanceYAML(config: [String: String], devices: [String: [String: String]]) -> String {
        var yaml = "config:\n"
        for (k, v) in config.sorted(by: { $0.key < $1.key }) { yaml += "  \(yamlString(k)): \(yamlString(v))\n" }
        yaml += "devices:\n"
        for (name, settings) in devices.sorted(by: { $0.key < $1.key }) {
            yaml += "  \(yamlString(name)):\n"
            for (k, v) in settings.sorted(by: { $0.key < $1.key }) { yaml += "    \(yamlString(k)): \(yamlString(v))\n" }
        }
        return yaml
    }

    /// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
    static func yamlString(_ s: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes  // YAML knows no `\/`
        let data = (try? encoder.encode(s)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The alias a run's image names: `name:tag` as `name-tag`, else `name` alone (a docker-style
    /// tag given to every mode, as `compare` does), whichever incus has.
    func imageAlias(for image: String) throws -> String {
        let full = Self.alias(for: image)
        guard image.contains(":") else { return full }
        let bare = Self.alias(for: String(image.prefix(while: { $0 != ":" })))
        if let found = api("/1.0/images/aliases/" + UnixHTTP.escape(full)) {
            if found != .null { return full }
            if let other = api("/1.0/images/aliases/" + UnixHTTP.escape(bare)), other != .null { return bare }
            return full
        }
        let out = try query(["image", "alias", "list", "--format", "csv"], what: "incus image alias list")
        let have = Set(out.stdout.split(separator: "\n").compactMap { $0.split(separator: ",").first.map(String.init) })
        if have.contains(full) { return full }
        return have.contains(bare) ? bare : full
    }

    static func missingImage(_ alias: String) -> BackendError {
        .refused("the incus image \(alias) is missing: build it with `ccdeck image build --runtime incus"
                 + (alias == Self.alias(for: RunnerImage.defaultTag) ? "`" : " --tag \(alias)`"))
    }

    /// incus's refusal to launch, in words that say what to do.
    static func launchFailure(_ why: String) -> BackendError {
        if why.localizedCaseInsensitiveContains("root disk") || why.localizedCaseInsensitiveContains("root device") {
            return .refused("incus has no root disk for the instance: "
                            + "incus profile device add default root disk path=/ pool=default (\(why))")
        }
        if why.localizedCaseInsensitiveContains("storage pool") {
            return .refused("incus has no storage pool: incus storage create default dir (\(why))")
        }
        return .commandFailed("incus launch", why)
    }

    /// The instance as `incus list` shows it, or nil when there is none (when the socket is not
    /// ccdeck's to ask).
    func listedInstance(_ name: String) throws -> JSONValue? {
        let out = try query(["list", name, "--format", "json"], what: "incus list")
        guard out.status.succeeded, case .array(let items)? = JSONValue.parse(Data(out.stdout.utf8)) else { return nil }
        return items.first { $0["name"]?.stringValue == name }
    }

    // MARK: run

    /// The shell that starts the agent: it reads a count, then that many `NAME=value` lines from
    /// stdin into its environment (the token among them), notes its pid for `stop`, and becomes
    /// Claude Code, which reads the prompt from the rest of stdin. `read` takes a pipe one byte at
    /// a time, so nothing of the prompt is consumed.
    static func agentScript(runID: String) -> String {
        "IFS= read -r n && i=0 && while [ \"$i\" -lt \"$n\" ]; do IFS= read -r kv && export \"$kv\" && i=$((i + 1)); done && "
            + "mkdir -p \"$HOME\" 2>/dev/null; echo $$ > \(pidFile(runID)) && "
            + "exec claude -p --dangerously-skip-permissions " + RunSpec.agentArguments.joined(separator: " ")
    }

    static func pidFile(_ runID: String) -> String { "/tmp/ccdeck-agent-\(runID).pid" }

    /// What goes on stdin ahead of the prompt: the count, then `NAME=value` a line.
    static func variables(_ spec: RunSpec, user: AgentUser) -> Data {
        var lines = ["HOME=\(user.home)"]
        if user.uid == 0 { lines.append("IS_SANDBOX=1") }  // Claude Code skips permissions as root only then
        for name in spec.passEnvironment { if let v = spec.environment[name] { lines.append("\(name)=\(v)") } }
        if let token = spec.token { lines.append("\(token.name)=\(token.value)") }
        return Data(("\(lines.count)\n" + lines.joined(separator: "\n") + "\n").utf8)
    }

    public func start(_ spec: RunSpec, preparation: Preparation) throws -> AgentLaunch {
        let name = preparation.sandboxName ?? spec.sandboxName
        let user = AgentUser(spec.workspaceOwner)
        let script = Self.agentScript(runID: spec.id)
        if let client = preparation.choices["client"], let socket = apiSocket {
            // The exec request `incus exec -T` sends, made by ccdeck-incusexec (no client start);
            // it goes on the client's stdin ahead of the variables and the prompt.
            let request = ExecRequest(command: ["/bin/sh", "-c", script], environment: environment["TERM"].map { ["TERM": $0] } ?? [:],
                                      user: user.uid, group: user.gid, cwd: "/workspace")
            let body = try JSONEncoder().encode(request)
            let child = try ChildProcess.spawn(Command(client, [socket, name, String(Int(queryTimeout))], environment: cEnvironment),
                                               stdin: .pipe)
            return AgentLaunch(process: child, stdinPrefix: Data("\(body.count)\n".utf8) + body + Self.variables(spec, user: user))
        }
        let args = ["exec", name, "-T", "--user", "\(user.uid)", "--group", "\(user.gid)", "--cwd", "/workspace",
                    "--", "/bin/sh", "-c", script]
        let child = try ChildProcess.spawn(Command("incus", args, environment: cEnvironment), stdin: .pipe)
        return AgentLaunch(process: child, stdinPrefix: Self.variables(spec, user: user))
    }

    /// `POST /1.0/instances/NAME/exec`, as `incus exec -T --user U --group G --cwd C` sends it.
    struct ExecRequest: Encodable {
        var command: [String]
        var environment: [String: String]
        var user: UInt32
        var group: UInt32
        var cwd: String
        var waitForWebsocket = true
        var interactive = false

        enum CodingKeys: String, CodingKey {
            case command, environment, user, group, cwd, interactive
            case waitForWebsocket = "wait-for-websocket"
        }
    }

    /// The exec client beside ccdeck (`CCDECK_INCUSEXEC` names another; `off` keeps the CLI).
    static func execClient(environment: [String: String]) -> String? {
        if environment["CCDECK_INCUSEXEC"] == "off" { return nil }
        return BundledHelper.find("ccdeck-incusexec", variable: "CCDECK_INCUSEXEC", environment: environment)
    }

    public func stop(_ sandbox: SandboxRef) -> Bool {
        let script = "kill -TERM $(cat \(Self.pidFile(sandbox.runID)))"
        guard let out = try? query(["exec", sandbox.name, "--", "sh", "-c", script], what: "incus exec (stop)") else { return false }
        return out.status.succeeded
    }

    /// The exit status is the `incus exec` client's own; incus keeps nothing after it.
    public func outcome(_ sandbox: SandboxRef) -> SandboxOutcome? { nil }

    public func remove(_ sandbox: SandboxRef) throws {
        if try removeByAPI(sandbox.name) { return }
        let out = try query(["delete", "-f", sandbox.name], what: "incus delete")
        if !out.status.succeeded && !Self.isNotFound(out.stderrSummary) {
            throw BackendError.commandFailed("incus delete \(InertText.line(sandbox.name))", out.stderrSummary)
        }
    }

    /// `incus delete -f` over incusd's socket, as the CLI does it without its start: a running
    /// instance is stopped at once (an ephemeral one goes with it), then deleted; one already gone
    /// is fine. false when the socket is not ccdeck's to use.
    func removeByAPI(_ name: String) throws -> Bool {
        let path = "/1.0/instances/" + UnixHTTP.escape(name)
        guard let found = api(path) else { return false }
        guard found != .null else { return true }
        let what = "incus delete \(InertText.line(name))"
        let status = found["status_code"]?.wholeNumber(in: 0...999) ?? 0
        if status != 0 && status != Self.stoppedCode {
            let stop = StateRequest(action: "stop", force: true, timeout: -1)
            switch try act("PUT", path + "/state", stop, what: what) {
            case nil: return false
            case .failed(let why)?: throw BackendError.commandFailed(what, why)
            case .done?, .notFound?: break
            }
            if found["ephemeral"] == .bool(true) { return true }
        }
        switch try act("DELETE", path, Optional<StateRequest>.none, what: what) {
        case nil: return false
        case .failed(let why)?: throw BackendError.commandFailed(what, why)
        case .done?, .notFound?: return true
        }
    }

    /// incusd's status code of a stopped instance.
    static let stoppedCode = 102

    /// `PUT /1.0/instances/NAME/state`.
    struct StateRequest: Encodable {
        var action: String
        var force: Bool
        var timeout: Int
    }

    /// A persistent instance stays for the next run as it is (the run left no file with a secret
    /// in it); an ephemeral one goes.
    public func release(_ sandbox: SandboxRef) throws {
        guard sandbox.name.hasPrefix("ccdeck-ws-") else { return try remove(sandbox) }
    }

    public func resources(store: String) throws -> [SandboxResource] {
        if let items = allInstances() { return Self.parseInstances(items, store: store) }
        let out = try query(["list", "\(Self.keyPrefix)store=\(store)", "--format", "json"], what: "incus list")
        guard out.status.succeeded else { throw BackendError.commandFailed("incus list", out.stderrSummary) }
        return Self.parseInstances(out.stdout, store: store)
    }

    /// Every instance with its config and status, over incusd's socket (what `incus list
    /// --format json` reads, without its client start); nil when the CLI must be asked.
    func allInstances() -> JSONValue? {
        guard let items = api("/1.0/instances?recursion=1"), case .array = items else { return nil }
        return items
    }

    public func foreignResources(store: String) throws -> [SandboxResource] {
        let items: JSONValue
        if let all = allInstances() {
            items = all
        } else {
            let out = try query(["list", "--format", "json"], what: "incus list")
            guard out.status.succeeded, let listed = JSONValue.parse(Data(out.stdout.utf8)) else { return [] }
            items = listed
        }
        guard case .array(let items) = items else { return [] }
        return items.compactMap { item in
            guard let name = item["name"]?.stringValue, item["config"]?[Self.keyPrefix + "store"]?.stringValue != store else { return nil }
            return SandboxResource(id: name, name: name, backend: kind, runID: nil,
                                   state: (item["status"]?.stringValue ?? "?").lowercased(),
                                   createdAt: item["created_at"]?.stringValue.flatMap(EngineOutput.parseRFC3339))
        }
    }

    /// `incus list --format json`: an array of instances; only those carrying this store's mark.
    static func parseInstances(_ text: String, store: String) -> [SandboxResource] {
        JSONValue.parse(Data(text.utf8)).map { parseInstances($0, store: store) } ?? []
    }

    /// The instances (`incus list`'s JSON, or incusd's own) that carry this store's mark.
    static func parseInstances(_ list: JSONValue, store: String) -> [SandboxResource] {
        guard case .array(let items) = list else { return [] }
        return items.compactMap { item in
            guard let name = item["name"]?.stringValue, let config = item["config"],
                  config[keyPrefix + "store"]?.stringValue == store else { return nil }
            let created = item["created_at"]?.stringValue.flatMap(EngineOutput.parseRFC3339)
            let persistent = config[keyPrefix + "persistent"]?.stringValue == "true"
            return SandboxResource(id: name, name: name, backend: .incus, runID: config[keyPrefix + "run"]?.stringValue,
                                   state: (item["status"]?.stringValue ?? "?").lowercased() + (persistent ? ", persistent" : ""),
                                   createdAt: created, persistent: persistent)
        }
    }

    public func attachCommand(_ sandbox: SandboxRef) -> Command? {
        let uid = (try? query(["config", "get", sandbox.name, Self.keyPrefix + "uid"], what: "incus config get"))?
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "0"
        let gid = (try? query(["config", "get", sandbox.name, Self.keyPrefix + "gid"], what: "incus config get"))?
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "0"
        let home = AgentUser(FileOwner(uid: UInt32(uid) ?? 0, gid: UInt32(gid) ?? 0)).home
        return Command("incus", ["exec", sandbox.name, "-t", "--user", uid.isEmpty ? "0" : uid, "--group", gid.isEmpty ? "0" : gid,
                                 "--cwd", "/workspace", "--env", "HOME=\(home)", "--", "sh", "-c",
                                 "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"],
                       environment: environment)
    }

    /// `incus monitor`: one JSON object per lifecycle event (and a blank line after each).
    public func eventsCommand(store: String) -> Command? {
        Command("incus", ["monitor", "--type", "lifecycle", "--format", "json"], environment: cEnvironment)
    }

    // MARK: image

    /// Builds the runner image from the Dockerfile with the first ready container engine, exports
    /// its root filesystem, adds ccdeck's init and the metadata, and imports it as `image`'s alias.
    public func build(image: String, _ build: ImageBuild, progress: (String) -> Void) throws {
        let engines = ContainerBackend.Engine.allCases.map { ContainerBackend($0, environment: environment) }
        guard let engine = engines.first(where: { $0.probe(timeout: 5).state == .ready }) else {
            throw BackendError.unavailable(kind, "building an incus image needs docker or podman to build the Dockerfile "
                                           + "(without them: see docs/modes.md, \"An Incus image without docker\")")
        }
        let alias = Self.alias(for: image)
        let tag = "ccdeck-incus-build:\(alias)"
        progress("building \(tag) with \(engine.kind.displayName), then importing it into incus as \(alias)")
        try engine.build(image: tag, build, progress: progress)
        let fm = FileManager.default
        let scratch = fm.temporaryDirectory.appendingPathComponent("ccdeck-incus-\(UUID().uuidString.prefix(8))").path
        try fm.createDirectory(atPath: scratch + "/extra", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fm.removeItem(atPath: scratch) }
        let exe = engine.kind.rawValue
        let created = try ProcessRunner.run(Command(exe, ["create", tag], environment: environment), timeout: queryTimeout)
        guard created.status.succeeded else { throw BackendError.commandFailed("\(exe) create", created.stderrSummary) }
        let cid = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? ProcessRunner.run(Command(exe, ["rm", "-f", cid], environment: environment), timeout: queryTimeout) }
        let rootfs = scratch + "/rootfs.tar"
        let exported = try ProcessRunner.run(Command(exe, ["export", "-o", rootfs, cid], environment: environment), timeout: 600)
        guard exported.status.succeeded else { throw BackendError.commandFailed("\(exe) export", exported.stderrSummary) }
        try RunnerImage.incusInit.write(toFile: scratch + "/extra" + Self.initPath, atomically: true, encoding: .utf8)
        chmod(scratch + "/extra" + Self.initPath, 0o755)
        let appended = try ProcessRunner.run(Command("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", scratch + "/extra",
                                                             "-rf", rootfs, "." + Self.initPath], environment: environment),
                                             timeout: 120)
        guard appended.status.succeeded else { throw BackendError.commandFailed("tar", appended.stderrSummary) }
        let metadata = "architecture: x86_64\ncreation_date: \(Int(Date().timeIntervalSince1970))\n"
            + "properties:\n  description: ccdeck runner image (\(alias))\n"
        try metadata.write(toFile: scratch + "/metadata.yaml", atomically: true, encoding: .utf8)
        let meta = try ProcessRunner.run(Command("tar", ["-C", scratch, "-cf", scratch + "/meta.tar", "metadata.yaml"],
                                                 environment: environment), timeout: 60)
        guard meta.status.succeeded else { throw BackendError.commandFailed("tar", meta.stderrSummary) }
        _ = try? query(["image", "delete", alias], what: "incus image delete")  // a rebuild replaces it
        let imported = try ProcessRunner.run(Command("incus", ["image", "import", scratch + "/meta.tar", rootfs, "--alias", alias],
                                                     environment: cEnvironment), timeout: 600)
        guard imported.status.succeeded else { throw BackendError.commandFailed("incus image import", imported.stderrSummary) }
        _ = try? ProcessRunner.run(Command(exe, ["rmi", tag], environment: environment), timeout: queryTimeout)
        progress("imported \(alias)")
    }

    // MARK: helpers

    /// What incusd made of a request that acts: done, refused (its words), or not found.
    enum Acted: Equatable {
        case done
        case failed(String)
        case notFound(String)
    }

    /// A request that makes incusd act (launch, stop, delete), followed to the end of the
    /// operation it starts. nil when nothing could be asked: no socket, or not ccdeck's to use
    /// (the CLI is asked instead; a user outside incus-admin reaches incusd through another).
    func act<Body: Encodable>(_ method: String, _ path: String, _ body: Body?, what: String) throws -> Acted? {
        guard let socket = apiSocket else { return nil }
        // One exchange; nil when nothing could be sent.
        func send(_ method: String, _ path: String, _ data: Data?, timeout: TimeInterval) throws -> UnixHTTP.Response? {
            do {
                return try UnixHTTP(socketPath: socket, timeout: timeout).request(method, path, body: data)
            } catch UnixHTTP.Failure.cannotConnect {
                return nil
            } catch UnixHTTP.Failure.timedOut {
                throw BackendError.timedOut(what, queryTimeout)
            } catch {
                throw BackendError.commandFailed(what, "incusd gave no answer (\(error))")
            }
        }
        guard let answer = try send(method, path, try body.map { try JSONEncoder().encode($0) }, timeout: queryTimeout) else { return nil }
        let reply = JSONValue.parse(answer.body)
        let why = InertText.line(reply?["error"]?.stringValue ?? answer.text)
        if answer.status == 404 { return .notFound(why) }
        guard answer.succeeded, let reply else { return .failed(why) }
        guard reply["type"]?.stringValue == "async", let operation = reply["operation"]?.stringValue else { return .done }
        // incusd holds the answer until the operation ends (or the timeout passes; then it says Running).
        guard let ended = try send("GET", operation + "/wait?timeout=\(Int(queryTimeout.rounded(.up)))", nil,
                                   timeout: queryTimeout + 5) else {
            throw BackendError.commandFailed(what, "incusd stopped answering on \(socket)")
        }
        let result = JSONValue.parse(ended.body)
        if let error = result?["error"]?.stringValue, !error.isEmpty { return .failed(InertText.line(error)) }
        switch result?["metadata"]?["status"]?.stringValue {
        case "Success": return .done
        case "Running", "Pending": throw BackendError.timedOut(what, queryTimeout)
        default:
            let err = result?["metadata"]?["err"]?.stringValue ?? ""
            return .failed(InertText.line(err.isEmpty ? ended.text : err))
        }
    }

    /// incus translates its messages: ccdeck reads them in English.
    var cEnvironment: [String: String] {
        var env = environment
        env["LC_ALL"] = "C"
        return env
    }

    static func isNotFound(_ message: String) -> Bool {
        ["not found", "no such", "does not exist"].contains { message.localizedCaseInsensitiveContains($0) }
    }

    @discardableResult
    private func run(_ args: [String], what: String) throws -> ProcessRunner.Output {
        let out = try query(args, what: what)
        guard out.status.succeeded else { throw BackendError.commandFailed(what, out.stderrSummary) }
        return out
    }

    private func query(_ args: [String], input: Data? = nil, what: String) throws -> ProcessRunner.Output {
        let out: ProcessRunner.Output
        do {
            out = try ProcessRunner.run(Command("incus", args, environment: cEnvironment), input: input, timeout: queryTimeout)
        } catch ProcessError.notFound {
            throw BackendError.unavailable(kind, "incus is not installed")
        }
        if out.timedOut { throw BackendError.timedOut(what, queryTimeout) }
        let why = out.stderrSummary
        if !out.status.succeeded, why.localizedCaseInsensitiveContains("permission denied") {
            throw BackendError.unavailable(kind, "no permission on the incus socket (add yourself to the incus-admin group)")
        }
        if !out.status.succeeded, why.localizedCaseInsensitiveContains("unix.socket") || why.localizedCaseInsensitiveContains("connect:") {
            throw BackendError.unavailable(kind, why)
        }
        return out
    }
}
