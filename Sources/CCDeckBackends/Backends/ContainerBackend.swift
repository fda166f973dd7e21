import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Mode A: a plain Docker or Podman container sharing the host kernel. The two CLIs have the
/// same shape, so one type serves both, told apart by `engine`.
public struct ContainerBackend: SandboxBackend, ImageBuilder {
    public enum Engine: String, Sendable, CaseIterable {
        case docker, podman
    }

    public let engine: Engine
    public let environment: [String: String]
    /// How long any engine query may take before ccdeck calls the daemon hung.
    public var queryTimeout: TimeInterval = 15

    /// dockerd's socket, when ccdeck may ask it directly instead of through the CLI.
    let apiSocket: String?

    public init(_ engine: Engine, environment: [String: String]) {
        self.engine = engine
        self.environment = environment
        apiSocket = engine == .docker ? Self.dockerSocket(environment: environment) : nil
    }

    /// Where the docker CLI itself would connect, when that is a local unix socket:
    /// `DOCKER_HOST=unix://…`, or no `DOCKER_HOST` and no context chosen (`DOCKER_CONTEXT`, the
    /// config's `currentContext`), which is `/var/run/docker.sock`. A tcp or ssh host or a context
    /// stays with the CLI, which knows their TLS and transport.
    static func dockerSocket(environment: [String: String]) -> String? {
        if let host = environment["DOCKER_HOST"], !host.isEmpty {
            return host.hasPrefix("unix://") ? String(host.dropFirst("unix://".count)) : nil
        }
        if let context = environment["DOCKER_CONTEXT"], !context.isEmpty, context != "default" { return nil }
        let configDirectory = environment["DOCKER_CONFIG"] ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.docker")
        if let data = FileManager.default.contents(atPath: configDirectory + "/config.json") {
            guard let config = JSONValue.parse(data) else { return nil }  // the CLI will say what is wrong with it
            if let context = config["currentContext"]?.stringValue, !context.isEmpty, context != "default" { return nil }
        }
        return "/var/run/docker.sock"
    }

    public var kind: BackendKind { BackendKind(engine.rawValue) }
    var executable: String { engine.rawValue }

    public var traits: BackendTraits {
        var t = BackendTraits(modeLetter: "A", isolation: .sharedKernel, tokenDelivery: .environmentByName, workspace: .mount,
                              workspaceInside: "/workspace", mark: .labels, resourceNoun: "container", canRun: true,
                              usesImage: true, takesRuntimeArguments: true)
        t.optionNames = ["isolation"]
        t.autoRank = engine == .docker ? 10 : 20
        t.enforcesEgress = true
        return t
    }

    /// gVisor's runtime on this host, if installed.
    var runsc: String? { ChildProcess.resolve("runsc", environment: environment) }

    /// Whether runs can go under gVisor here, and if not, the one step that makes it so. A run
    /// held to an allowlist (`egress`) reaches the proxy's socket, which runsc allows only with
    /// `--host-uds=open`: podman gets it per run, dockerd from its runtime's registration.
    func gvisorProblem(egress: Bool = false) -> String? {
        guard runsc != nil else { return "gVisor: runsc is not installed (apt-get install runsc)" }
        guard engine == .docker else { return nil }  // podman takes the runtime's path per run
        guard let runtimes = info(.Runtimes) else { return "gVisor: the daemon did not list its runtimes" }
        guard runtimes.contains("\"runsc\"") else {
            return "gVisor: register runsc with dockerd (daemon.json \"runtimes\": {\"runsc\": {\"path\": \"\(runsc!)\", "
                + "\"runtimeArgs\": [\"--host-uds=open\"]}}) and restart it"
        }
        if egress && !["host-uds=open", "host-uds=all", "fsgofer-host-uds"].contains(where: runtimes.contains) {
            return "gVisor: the egress allowlist needs runsc to reach ccdeck's proxy socket: add \"--host-uds=open\" to "
                + "runsc's runtimeArgs in daemon.json and restart dockerd (or run with --allow-all)"
        }
        return nil
    }

    /// A run that picks its own network (`--runtime-arg=--network=…`) is not held to the list.
    public func egressUnenforceable(_ spec: RunSpec) -> String? {
        guard let arg = spec.runtimeArguments.first(where: { $0 == "--network" || $0 == "--net" || $0.hasPrefix("--network=")
            || $0.hasPrefix("--net=") }) else { return nil }
        return "the run chooses its own network (\(InertText.line(arg)))"
    }

    // MARK: probe

    public func probe(timeout: TimeInterval) -> BackendStatus {
        let args = engine == .docker ? ["version", "--format", "{{json .}}"] : ["version", "--format", "json"]
        let (output, early) = Probe.run(kind, executable, args, environment: environment, timeout: timeout)
        if let early { return early }
        guard let output else { return BackendStatus(kind: kind, state: .error, detail: "no output") }
        let path = ChildProcess.resolve(executable, environment: environment)
        let versions = EngineOutput.parseVersion(output.stdout)
        if output.status.succeeded, let versions, versions.client != nil {
            // Local podman has no server part: the client is the engine.
            return BackendStatus(kind: kind, state: .ready, clientVersion: versions.client,
                                 serverVersion: versions.server ?? (engine == .podman ? versions.client : nil),
                                 detail: gvisorProblem() ?? "gVisor ready (--isolation gvisor)", executable: path)
        }
        return BackendStatus(kind: kind, state: .daemonDown, clientVersion: versions?.client,
                             detail: output.stderrSummary.isEmpty ? "\(executable) version: \(output.status)"
                                                                  : output.stderrSummary,
                             executable: path)
    }

    // MARK: prepare

    public func prepare(_ spec: RunSpec, build: ImageBuild?, cancel: Cancellation,
                        progress: (String) -> Void) throws -> Preparation {
        if let name = spec.options.keys.sorted().first(where: { !traits.optionNames.contains($0) }) {
            throw BackendError.refused("\(executable) does not take --\(name)")
        }
        let isolation = spec.options["isolation"]?.last ?? "runc"
        guard ["runc", "gvisor"].contains(isolation) else {
            throw BackendError.refused("--isolation takes runc or gvisor, not \(InertText.line(isolation))")
        }
        if isolation == "gvisor" {
            // dockerd's runtimes are asked (`GET /info`, 20–40 ms of the daemon's time) only when
            // the run needs runsc to reach the proxy's socket; else dockerd's own refusal of an
            // unknown runtime is the check (`startFailure` then says what to do).
            guard runsc != nil else { throw BackendError.refused("gVisor: runsc is not installed (apt-get install runsc)") }
            if spec.egress != nil, let problem = gvisorProblem(egress: true) { throw BackendError.refused(problem) }
        }
        if spec.workspace.contains(",") && spec.workspace.contains(":") {
            throw BackendError.refused("\(InertText.line(spec.workspace)): \(executable) cannot mount a path holding both ',' and ':'")
        }
        let rootless = geteuid() != 0 && isRootless()
        var plan = try Self.userPlan(engine: engine, rootless: rootless, owner: spec.workspaceOwner,
                                     invoker: FileOwner(uid: geteuid(), gid: getegid()), workspace: spec.workspace)
        if apiSocket != nil, let client = DockerDirectRun.findClient(environment: environment),
           let ping = try api("GET", "/_ping", what: "docker ping"), ping.succeeded {
            // Started without the CLI (`start`): the create request is the image check, as
            // `--pull=never` is when the CLI starts it after all (a runtime argument it alone knows).
            // The daemon is asked first whether it answers at all (~0.2 ms): one that is down or
            // hung is told so here, before anything is created.
            plan.choices["client"] = client
            plan.imageCheckedAtStart = true
        } else if apiSocket != nil {
            // Asking dockerd over its socket costs well under a millisecond.
            plan.builtImage = try ensureImage(spec.image, buildIfMissing: build, cancel: cancel, progress: progress)
        } else {
            // A CLI's look costs 12–30 ms on every run: `--pull=never` makes the start the check.
            plan.imageCheckedAtStart = true
        }
        plan.removedByClient = keepsLog(spec)
        if isolation == "gvisor" {
            plan.isolation = .gvisor
            plan.choices["runsc"] = runsc
        }
        return plan
    }

    /// podman removes the container itself (`--rm`, in the same process that ran it, where a
    /// `podman rm` afterwards costs ~40 ms more) when conmon keeps the agent's output in the run's
    /// folder: should ccdeck die, what the agent printed afterwards outlives the container there.
    /// docker's log cannot be put elsewhere, so docker's container stays until ccdeck has read
    /// how it ended (removed over dockerd's socket, at the daemon's own cost).
    func keepsLog(_ spec: RunSpec) -> Bool {
        engine == .podman && spec.removeAtEnd && spec.runDirectory != nil
            && !spec.runtimeArguments.contains { $0.hasPrefix("--log-driver") || $0.hasPrefix("--log-opt") || $0 == "--rm" }
    }

    /// Where podman's log of the run's container is kept (`keepsLog`).
    static func keptLogPath(runDirectory: String) -> String { runDirectory + "/" + RunSpec.keptOutputName }

    /// Who the agent runs as, so that it can write the workspace and what it writes comes back
    /// owned by the workspace's owner.
    ///
    /// - A rootful engine runs the agent as the owner's uid and gid: the image's `agent` user when
    ///   that is uid 1000, root (with `IS_SANDBOX=1`, which Claude Code wants before it skips
    ///   permissions as root) for a root-owned folder, else the bare uid with a writable HOME.
    /// - A rootless engine can only write as the user running it: podman maps that user to the
    ///   image's agent user (`--userns=keep-id`), rootless docker runs the agent as root inside,
    ///   which is that user outside. A folder of anyone else's is refused before anything starts.
    public static func userPlan(engine: Engine, rootless: Bool, owner: FileOwner, invoker: FileOwner,
                                workspace: String) throws -> Preparation {
        let agent = UInt32(RunnerImage.agentUID)
        if rootless {
            guard owner.uid == invoker.uid else {
                throw BackendError.refused(
                    "rootless \(engine.rawValue) writes files as you (uid \(invoker.uid)), but \(InertText.line(workspace)) belongs "
                        + "to uid \(owner.uid): run ccdeck as its owner, or `chown` the folder to yourself")
            }
            if engine == .podman {
                return Preparation(agentUser: "uid \(agent) inside, you (uid \(invoker.uid)) outside (podman --userns=keep-id)",
                                   userArguments: ["--userns=keep-id:uid=\(agent),gid=\(agent)"])
            }
            return Preparation(agentUser: "root inside, you (uid \(invoker.uid)) outside (rootless docker)",
                               userArguments: ["--user", "0:0", "-e", "IS_SANDBOX=1", "-e", "HOME=/root"])
        }
        if owner.uid == agent {
            return Preparation(agentUser: "uid \(agent) (the image's agent user)", userArguments: [])
        }
        if owner.uid == 0 {
            return Preparation(agentUser: "uid 0 (root: the workspace is root's)",
                               userArguments: ["--user", "0:\(owner.gid)", "-e", "IS_SANDBOX=1", "-e", "HOME=/root"])
        }
        return Preparation(agentUser: "uid \(owner.uid):\(owner.gid) (the workspace's owner)",
                           userArguments: ["--user", "\(owner.uid):\(owner.gid)", "-e", "HOME=/tmp"])
    }

    /// Rootless docker maps the container's root to the user running it; the daemon says so in
    /// its security options. (Asked only when ccdeck is not root: root's docker is rootful.)
    func isRootless() -> Bool {
        if engine == .podman { return true }
        return info(.SecurityOptions)?.contains("rootless") ?? false
    }

    enum InfoField: String { case Runtimes, SecurityOptions }

    /// One field of `docker info`, as JSON text: from the daemon's socket, else the CLI.
    func info(_ field: InfoField) -> String? {
        let name = field.rawValue
        if let answer = try? api("GET", "/info", what: "docker info") {
            guard answer.succeeded, let value = JSONValue.parse(answer.body)?[name],
                  let text = try? JSONEncoder().encode(value) else { return nil }
            return String(decoding: text, as: UTF8.self)
        }
        guard let out = try? query(["info", "--format", "{{json .\(name)}}"], what: "docker info"), out.status.succeeded else { return nil }
        return out.stdout
    }

    /// Makes sure `image` is there, building it from `buildIfMissing` when it is not.
    /// Returns true when it had to build.
    public func ensureImage(_ image: String, buildIfMissing: ImageBuild?, cancel: Cancellation = Cancellation(fd: nil),
                            progress: (String) -> Void) throws -> Bool {
        let why: String
        if let answer = try api("GET", "/images/\(UnixHTTP.escape(image))/json", what: "docker image inspect") {
            if answer.succeeded { return false }
            why = answer.status == 404 ? "no such image" : Self.message(answer)
        } else {
            let inspect = try query(["image", "inspect", "--format", "{{.Id}}", image], what: "\(executable) image inspect")
            if inspect.status.succeeded { return false }
            why = inspect.stderrSummary
        }
        guard why.localizedCaseInsensitiveContains("no such") || why.localizedCaseInsensitiveContains("not known")
                || why.localizedCaseInsensitiveContains("not found") else {
            throw BackendError.unavailable(kind, why)
        }
        guard let build = buildIfMissing else {
            throw BackendError.commandFailed("image \(InertText.line(image))",
                                             "not found in \(executable); build it or pick another with --image")
        }
        progress("image \(image) not found in \(executable): building it (first time only)")
        try self.build(image: image, build, cancel: cancel, progress: progress)
        return true
    }

    public func build(image: String, _ build: ImageBuild, progress: (String) -> Void) throws {
        try self.build(image: image, build, cancel: Cancellation(fd: nil), progress: progress)
    }

    /// `docker build -t IMAGE` from a Dockerfile; its output goes to `progress` line by line. A stop
    /// asked meanwhile ends the build at once (the client's exit cancels it in the daemon).
    public func build(image: String, _ build: ImageBuild, cancel: Cancellation, progress: (String) -> Void) throws {
        let fm = FileManager.default
        // The Dockerfile goes in a private temporary folder, never into the user's context folder.
        let scratch = fm.temporaryDirectory.appendingPathComponent("ccdeck-build-\(UUID().uuidString.prefix(8))").path
        try fm.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fm.removeItem(atPath: scratch) }
        let dockerfilePath = scratch + "/Dockerfile"
        try build.dockerfile.write(toFile: dockerfilePath, atomically: true, encoding: .utf8)
        let context = build.contextDirectory ?? scratch
        let child = try ChildProcess.spawn(Command(executable, ["build", "-t", image, "-f", dockerfilePath, context],
                                                   environment: environment))
        var tail: [String] = []
        let status = ProcessRunner.stream(child, wakeFD: cancel.isRequested ? nil : cancel.fd, onStdoutLine: { line in
            progress(InertText.line(String(decoding: line, as: UTF8.self)))
        }, onStderrLine: { line in
            let text = InertText.line(String(decoding: line, as: UTF8.self))
            tail = Array((tail + [text]).suffix(5))
            progress(text)
        }, onWake: {
            cancel.check()
            cancel.markRequested()
            child.signal(SIGTERM)
        })
        if cancel.isRequested { throw BackendError.cancelled }
        guard status.succeeded else {
            throw BackendError.commandFailed("\(executable) build", tail.last ?? "\(status)")
        }
    }

    // MARK: run

    /// `run -i`: the prompt arrives on the agent's stdin. The container is not `--rm`: it stays
    /// until ccdeck has read how it ended (and, should ccdeck die, until a dashboard adopts it).
    public func runArguments(_ spec: RunSpec, preparation: Preparation) -> [String] {
        var args: [String] = []
        let gvisor = preparation.isolation == .gvisor
        if gvisor && engine == .podman {
            // podman takes the runtime as global options: runsc's path and its flags (the host's
            // network when the run asks for it; cgroups left to the host, which runsc cannot
            // manage on hybrid hierarchies).
            args += ["--runtime", preparation.choices["runsc"] ?? "runsc", "--runtime-flag", "ignore-cgroups"]
            if spec.egress != nil {
                // gVisor's own network with no device but its loopback (podman's empty namespace
                // is refused by runsc's netstack and, passed through, has its loopback down), and
                // the proxy's socket.
                args += ["--runtime-flag", "network=none", "--runtime-flag", "host-uds=open"]
            }
            if spec.runtimeArguments.contains(where: { $0 == "--network=host" || $0 == "--net=host" }) {
                args += ["--runtime-flag", "network=host"]
            }
        }
        args += ["run", "-i", "--name", spec.sandboxName]
        if preparation.imageCheckedAtStart { args.append("--pull=never") }
        if preparation.removedByClient, let folder = spec.runDirectory {
            // No signal proxying: ccdeck stops containers by name, never through its client, and a
            // client whose ccdeck died must not take the container with it.
            args += ["--rm", "--sig-proxy=false", "--log-driver", "k8s-file", "--log-opt", "path=" + Self.keptLogPath(runDirectory: folder),
                     "--pidfile", folder + "/" + RunSpec.startStampName]
        }
        if gvisor && engine == .docker { args.append("--runtime=runsc") }
        for (k, v) in spec.mark.sorted(by: { $0.key < $1.key }) { args += ["--label", "\(k)=\(v)"] }
        args += Self.bind(spec.workspace, "/workspace")
        args += ["-w", "/workspace"]
        args += preparation.userArguments
        if let token = spec.token { args += ["-e", token.name] }  // by name: the value never enters argv
        let proxyVariables = spec.egress?.agentEnvironment ?? [:]
        for name in spec.passEnvironment where name != spec.token?.name && proxyVariables[name] == nil { args += ["-e", name] }
        if let egress = spec.egress {
            // No network but loopback; the bridge (the container's first process) is its one way out.
            args += ["--network", "none"] + Self.bind(egress.socketDirectory, EgressEndpoint.directoryInside)
                + Self.bind(egress.bridge, EgressEndpoint.bridgeInside, readOnly: true)
            for (name, value) in proxyVariables.sorted(by: { $0.key < $1.key }) { args += ["-e", "\(name)=\(value)"] }
            args += ["--entrypoint", EgressEndpoint.bridgeInside]
        }
        args += spec.runtimeArguments
        args.append(spec.image)
        if let egress = spec.egress {
            args += Array(egress.wrap(["claude", "-p", "--dangerously-skip-permissions"]).dropFirst())
        }
        args += RunSpec.agentArguments
        return args
    }

    /// A bind mount: `-v` splits on ':', `--mount` on ',', so a path with a ':' goes by `--mount`
    /// (prepare refuses a workspace holding both).
    static func bind(_ source: String, _ target: String, readOnly: Bool = false) -> [String] {
        source.contains(":")
            ? ["--mount", "type=bind,source=\(source),target=\(target)" + (readOnly ? ",readonly" : "")]
            : ["-v", "\(source):\(target)" + (readOnly ? ":ro" : "")]
    }

    public func start(_ spec: RunSpec, preparation: Preparation) throws -> AgentLaunch {
        var env = spec.environment
        if let token = spec.token { env[token.name] = token.value }  // the engine client's own environment only
        let args = runArguments(spec, preparation: preparation)
        if let client = preparation.choices["client"], let socket = apiSocket,
           let request = DockerDirectRun.createRequest(args, environment: env) {
            // The same container, asked of dockerd by ccdeck-dockerrun; its description (which
            // may hold the token's value) goes first on the client's stdin, never in argv, and
            // the client's environment is the spec's, which never holds the token.
            let child = try ChildProcess.spawn(Command(client, [socket, request.name, String(Int(queryTimeout))],
                                                       environment: spec.environment), stdin: .pipe)
            return AgentLaunch(process: child, stdinPrefix: DockerDirectRun.stdinPrefix(body: request.body))
        }
        let child = try ChildProcess.spawn(Command(executable, args, environment: env), stdin: .pipe)
        return AgentLaunch(process: child)
    }

    /// True once the container is stopped. "No such container" is false: a stop asked while the
    /// engine is still creating it must be asked again, not taken as done.
    public func stop(_ sandbox: SandboxRef) -> Bool {
        if let answer = try? api("POST", "/containers/\(UnixHTTP.escape(sandbox.name))/kill", what: "docker kill") {
            // Gone is stopped too (removed as it stopped, `removeWhenStopped`).
            return answer.succeeded || answer.status == 404
                || (answer.status == 409 && Self.message(answer).localizedCaseInsensitiveContains("not running"))
        }
        guard let out = try? query(["kill", sandbox.name], what: "\(executable) kill") else { return false }
        let why = out.stderrSummary
        return out.status.succeeded || why.localizedCaseInsensitiveContains("not running")
            || why.localizedCaseInsensitiveContains("state improper")  // podman: "can only kill running containers"
    }

    public func outcome(_ sandbox: SandboxRef) -> SandboxOutcome? {
        if let answer = try? api("GET", "/containers/\(UnixHTTP.escape(sandbox.name))/json", what: "docker inspect") {
            // The API answers one object where the CLI prints a list of them.
            guard answer.succeeded, let state = EngineOutput.parseInspectState("[" + answer.text + "]") else { return nil }
            return SandboxOutcome(startedAt: state.startedAt, exitCode: state.running ? nil : state.exitCode, running: state.running)
        }
        guard let out = try? query(["inspect", "--type", "container", sandbox.name], what: "inspect"),
              out.status.succeeded, let state = EngineOutput.parseInspectState(out.stdout) else { return nil }
        return SandboxOutcome(startedAt: state.startedAt, exitCode: state.running ? nil : state.exitCode, running: state.running)
    }

    /// An attached `run` exits with its container's status; 125 is the engine's own failure and a
    /// signal is the client's death, which say nothing of the agent.
    public func outcome(fromClient status: ExitStatus) -> SandboxOutcome? {
        guard case .exited(let code) = status, code != 125 else { return nil }
        return SandboxOutcome(startedAt: nil, exitCode: code, running: false)
    }

    public func startedAt(_ sandbox: SandboxRef) -> Date? { outcome(sandbox)?.startedAt }

    /// docker, over its socket: `wait` returns once the container stopped and the daemon has
    /// copied its last output to the attached client (it waits for the streams before it says
    /// so), then the removal, while the client is still winding down. podman removes its own
    /// (`--rm`); a CLI `wait` would cost a process beside the agent.
    public func removeWhenStopped(_ sandbox: SandboxRef) -> Bool? {
        guard engine == .docker, let socket = apiSocket,
              let stopped = try? UnixHTTP(socketPath: socket, timeout: 7 * 24 * 3600)
                  .request("POST", "/containers/\(UnixHTTP.escape(sandbox.name))/wait?condition=not-running"),
              stopped.succeeded else { return nil }
        return (try? removeContainer(id: sandbox.name)) != nil
    }

    public func imageMissing(exitCode: Int32, stderr: [String]) -> Bool {
        exitCode == 125 && stderr.contains { line in
            ["no such image", "image not known", "unable to find image"].contains { line.localizedCaseInsensitiveContains($0) }
        }
    }

    /// The log conmon keeps beside the record, from its start, followed until the container ends
    /// (`podman wait`; at once when it is gone): `podman logs -f` ends early on a container that
    /// removes itself, and cannot read one already gone.
    public func keptOutput(_ sandbox: SandboxRef, runDirectory: String) -> (Command, OutputDecoder)? {
        let path = Self.keptLogPath(runDirectory: runDirectory)
        guard engine == .podman, access(path, R_OK) == 0 else { return nil }
        // The shell reaps the waiter, so tail sees its pid go (a zombie child of tail's would not).
        let script = #""$1" wait "$2" >/dev/null 2>&1 & w=$!; tail -s 0.2 -n +1 -f --pid=$w -- "$3" & t=$!; wait $w; wait $t"#
        return (Command("sh", ["-c", script, "sh", executable, sandbox.name, path], environment: environment), PodmanLogDecoder())
    }

    public func remove(_ sandbox: SandboxRef) throws {
        try removeContainer(id: sandbox.name)
    }

    /// Removes one container by id or name (the caller has checked it carries ccdeck's labels);
    /// one already gone is not an error.
    func removeContainer(id: String) throws {
        if let answer = try api("DELETE", "/containers/\(UnixHTTP.escape(id))?force=1", what: "docker rm") {
            guard answer.succeeded || answer.status == 404 else {
                throw BackendError.commandFailed("docker rm \(InertText.line(String(id.prefix(40))))", Self.message(answer))
            }
            return
        }
        var args = ["rm", "-f"]
        if engine == .podman { args += ["--time", "2"] }  // podman waits 10 s for SIGTERM first; docker kills at once
        let out = try query(args + [id], what: "\(executable) rm")
        if !out.status.succeeded && !out.stderrSummary.localizedCaseInsensitiveContains("no such") {
            throw BackendError.commandFailed("\(executable) rm \(InertText.line(String(id.prefix(40))))", out.stderrSummary)
        }
    }

    public func resources(store: String) throws -> [SandboxResource] {
        try containers(labelled: [Mark.store: store]).map {
            SandboxResource(id: $0.id, name: $0.name, backend: kind, runID: $0.labels[Mark.run], state: $0.state,
                            createdAt: $0.createdAt)
        }
    }

    public func foreignResources(store: String) throws -> [SandboxResource] {
        try containers(labelled: [:]).filter { $0.labels[Mark.store] != store }.map {
            SandboxResource(id: $0.id, name: $0.name, backend: kind, runID: nil, state: $0.state, createdAt: $0.createdAt)
        }
    }

    /// Containers carrying all of `labels` (ccdeck's own, never anyone else's).
    public func containers(labelled labels: [String: String]) throws -> [EngineOutput.Container] {
        let filters = labels.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }
        if let filterJSON = try? JSONEncoder().encode(["label": filters]),
           let answer = try api("GET", "/containers/json?all=1&filters="
                                + (String(decoding: filterJSON, as: UTF8.self).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""),
                                what: "docker ps") {
            guard answer.succeeded else { throw BackendError.commandFailed("docker ps", Self.message(answer)) }
            // The API names a container with a leading "/".
            return EngineOutput.parseContainers(answer.text).map { c in
                var c = c
                if c.name.hasPrefix("/") { c.name.removeFirst() }
                return c
            }
        }
        var args = ["ps", "-a", "--no-trunc"]
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) { args += ["--filter", "label=\(k)=\(v)"] }
        args += engine == .docker ? ["--format", "{{json .}}"] : ["--format", "json"]
        let out = try query(args, what: "\(executable) ps")
        guard out.status.succeeded else { throw BackendError.commandFailed("\(executable) ps", out.stderrSummary) }
        return EngineOutput.parseContainers(out.stdout)
    }

    public func attachCommand(_ sandbox: SandboxRef) -> Command? {
        Command(executable, ["exec", "-it", "-w", "/workspace", sandbox.name, "sh", "-c",
                             "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"],
                environment: environment)
    }

    public func eventsCommand(store: String) -> Command? {
        let filter = "label=\(Mark.store)=\(store)"
        let args = engine == .docker
            ? ["events", "--filter", filter, "--filter", "type=container", "--format", "{{json .}}"]
            : ["events", "--filter", filter, "--format", "json"]
        return Command(executable, args, environment: environment)
    }

    /// Exit 125 is the engine's own: it refused the arguments or could not create the container.
    /// Its real error is the line it printed, not the "--help" hint that follows it.
    public func startFailure(exitCode: Int32, stderr: [String]) -> String? {
        guard exitCode == 125 else { return nil }
        let line = RunJudgement.meaningfulLine(stderr) ?? "exit status 125"
        if Self.isDaemonDown(line) || line.contains("did not answer within") {
            return "\(executable) could not start the container, its daemon is down or not answering: \(line)"
        }
        if stderr.contains(where: { $0.localizedCaseInsensitiveContains("runtime") && $0.contains("runsc") }),
           let problem = gvisorProblem() {
            return problem
        }
        if imageMissing(exitCode: exitCode, stderr: stderr) {
            return "\(executable) does not have the image (\(line)): build it with `ccdeck image build` or pick another with --image"
        }
        return "\(executable) refused to start the container: \(line)"
    }

    /// `logs -f`: the container's whole stdout from its start, then what follows, until it ends.
    public func outputCommand(_ sandbox: SandboxRef) -> Command? {
        Command(executable, ["logs", "-f", sandbox.name], environment: environment)
    }

    /// dockerd's answer over its socket, or nil when the CLI should be asked instead (not docker,
    /// no local socket, or nothing answering there: the CLI then says why in its own words).
    private func api(_ method: String, _ path: String, what: String) throws -> UnixHTTP.Response? {
        guard let socket = apiSocket else { return nil }
        do {
            return try UnixHTTP(socketPath: socket, timeout: queryTimeout).request(method, path)
        } catch UnixHTTP.Failure.timedOut {
            throw BackendError.timedOut(what, queryTimeout)
        } catch {
            return nil
        }
    }

    /// The daemon's error message from an API answer (`{"message": "…"}`), made inert.
    static func message(_ answer: UnixHTTP.Response) -> String {
        let text = JSONValue.parse(answer.body)?["message"]?.stringValue ?? "HTTP \(answer.status)"
        return InertText.line(text)
    }

    private func query(_ args: [String], what: String) throws -> ProcessRunner.Output {
        let out: ProcessRunner.Output
        do {
            out = try ProcessRunner.run(Command(executable, args, environment: environment), timeout: queryTimeout)
        } catch ProcessError.notFound {
            throw BackendError.unavailable(kind, "\(executable) is not installed")
        }
        if out.timedOut { throw BackendError.timedOut(what, queryTimeout) }
        if !out.status.succeeded, Self.isDaemonDown(out.stderrSummary) {
            throw BackendError.unavailable(kind, out.stderrSummary)
        }
        return out
    }

    static func isDaemonDown(_ message: String) -> Bool {
        ["cannot connect", "is the docker daemon running", "connection refused", "permission denied while trying to connect",
         "unable to connect to podman"].contains { message.localizedCaseInsensitiveContains($0) }
    }
}
