import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run Claude Code headless in a sandbox and stream what the agent does.",
        discussion: """
            The token reaches the sandbox as its backend delivers it (for containers: by name, \
            `-e CLAUDE_CODE_OAUTH_TOKEN`), never as a value in any argv; the prompt reaches the agent on its stdin. \
            ANTHROPIC_BASE_URL, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC and the proxy variables are passed \
            through when set. The run is judged by the agent's final `result` event, not by its exit code.
            Exit status: 0 the run succeeded, 1 it failed (or was stopped from elsewhere), 2 usage or setup error, \
            130/143/129 stopped by a signal.
            """
    )

    @Option(help: ArgumentHelp("Where to run: a backend from `ccdeck backends` that can run (docker, podman, sandbox, fly, "
                               + "incus, local), or auto: the first of those that is ready.", valueName: "mode"))
    var mode: String = "auto"

    @Option(help: "The task for the agent.")
    var prompt: String?

    @Option(help: "Read the task from this file.")
    var promptFile: String?

    @Option(help: "Host folder the agent works in (default: a fresh one kept with the run).")
    var workspace: String?

    @Option(help: "Runner image (built from ccdeck's Dockerfile when it is the default and missing).")
    var image = RunnerImage.defaultTag

    @Option(name: .customLong("runtime-arg"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Extra argument for the engine's `run` (repeatable), e.g. --runtime-arg=--network=host.",
                               valueName: "arg"))
    var runtimeArgs: [String] = []

    @Option(name: .customLong("pass-env"), help: ArgumentHelp("Pass this host variable into the sandbox by name (repeatable).",
                                                              valueName: "name"))
    var passEnv: [String] = []

    @OptionGroup var backendOptions: BackendOptions

    @OptionGroup var egressOptions: EgressOptions

    @OptionGroup var timeoutOption: TimeoutOption

    @Flag(help: "Keep the sandbox after the run (it shows up as an orphan until removed).")
    var keep = false

    @Flag(help: "Print the agent's events as JSON lines, then a summary object.")
    var json = false

    func validate() throws {
        if prompt != nil && promptFile != nil { throw ValidationError("give --prompt or --prompt-file, not both") }
        if let p = prompt, p.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw ValidationError("--prompt is empty")
        }
        if let p = prompt, let problem = RunRequest.problem(with: p) { throw ValidationError("--prompt: \(problem)") }
        for name in passEnv where name.isEmpty || name.contains("=") {
            throw ValidationError("--pass-env takes a variable name, not NAME=value: the value would appear in argv")
        }
    }

    func run() throws {
        let env = backendOptions.environment(ProcessInfo.processInfo.environment)
        let store = RunStore(environment: env)
        store.openIndexAhead()
        let request = try makeRequest(env: env)
        let backend = try chooseBackend(env: env)
        // A backend whose proxy holds the credential gets no token from ccdeck at all.
        var token: Token?
        if backend.traits.tokenDelivery != .hostProxy {
            let resolved = try TokenResolver(environment: env).resolve()
            TokenStatus(token: resolved, now: Date()).warnings.forEach(Terminal.warning)
            token = resolved
        }
        for name in passEnv where env[name] == nil {
            Terminal.warning("--pass-env \(name): not set here, so not passed")
        }

        PhaseTrace.shared.mark("request, backend, token")
        let wakeFD = SignalPipe.install()
        let renderer = EventRenderer()
        // The handler runs on the driver's own thread, so it may ask that driver to stop.
        final class DriverBox { var driver: RunDriver?; var deniedShown = Set<String>(); var leftoversAsked = false }
        let box = DriverBox()
        let driver = RunDriver(backend: backend, store: store, token: token, environment: env) { update in
            defer {
                // Nowhere left to show the run (`| head`, a full disk): stop it, clean up, record it.
                if let failure = Terminal.outputFailure {
                    box.driver?.requestStop("stopped: ccdeck could not write to its standard output (\(failure))")
                }
            }
            switch update {
            case .notice(let text):
                Terminal.err("ccdeck: " + InertText.line(text))
            case .created:
                break
            case .started(let record):
                if !box.leftoversAsked {
                    // Once the run's own sandbox is on its way: the listing never holds it up.
                    box.leftoversAsked = true
                    Self.mentionLeftovers(of: backend, env: env)
                }
                if !json {
                    let image = record.image.isEmpty ? "" : ", image \(InertText.line(record.image))"
                    Terminal.err("ccdeck: run \(record.id) in \(record.mode.displayName)\(image)")
                    Terminal.err("ccdeck: workspace \(InertText.line(record.workspace))"
                                 + (record.agentUser.map { ", agent runs as \($0)" } ?? ""))
                }
                if let egress = record.egress, egress.enforcement != .allowlist, record.adoptedAt == nil {
                    Terminal.err("ccdeck: egress " + egress.enforcementText)
                }
            case .event(let event, let raw):
                if json {
                    if case .invalid = event {
                        Terminal.out((try? Terminal.json(["type": "ccdeck.unparsed_line",
                                                          "text": String(decoding: raw, as: UTF8.self)], pretty: false)) ?? "")
                    } else {
                        Terminal.out(InertText.jsonLine(raw))
                    }
                } else {
                    renderer.render(event).forEach { Terminal.out($0.text) }
                }
            case .stderr(let line):
                Terminal.err("  stderr: " + line)
            case .egress(let decision):
                // Each refused host once; the record counts them all.
                if !decision.allowed, box.deniedShown.insert("\(decision.host):\(decision.port)").inserted {
                    Terminal.err("ccdeck: egress denied: \(InertText.line(decision.host)):\(decision.port) "
                                 + "(\(InertText.line(decision.reason ?? "refused")))")
                }
            }
        }

        box.driver = driver
        let record: RunRecord
        do {
            record = try driver.run(request, wakeFD: wakeFD)
        } catch let failure as RunDriver.Failure {
            throw CLIError.setup(failure.description)
        }
        if record.keep || record.reason?.contains("listed as a leftover") == true {
            unlink(Self.leftoverStamp(backend.kind, env: env))
        }
        if let failure = Terminal.outputFailure {
            throw CLIError.setup("cannot write to standard output: \(failure); run \(record.id) \(record.state.rawValue), "
                                 + "see `ccdeck runs show \(record.id)`")
        }
        if json {
            Terminal.out(try Terminal.json(SummaryJSON(record), pretty: false))
        } else {
            RunSummary.lines(for: record).forEach(Terminal.out)
            Terminal.out("  details: ccdeck runs show \(record.id)")
        }
        PhaseTrace.shared.mark("summary")
        if let trace = PhaseTrace.shared.take() { Terminal.err("ccdeck: trace: " + trace) }
        if let failure = Terminal.outputFailure {
            throw CLIError.setup("cannot write to standard output: \(failure); run \(record.id) \(record.state.rawValue)")
        }
        switch record.state {
        case .succeeded: return
        case .stopped:
            // 128+N for a signal; a stop asked some other way (another ccdeck) is not a success either.
            let sig = SignalPipe.received
            throw ExitCode(sig > 0 ? 128 + sig : 1)
        default: throw ExitCode(1)
        }
    }

    func makeRequest(env: [String: String]) throws -> RunRequest {
        var text = prompt ?? RunRequest.defaultPrompt
        if let promptFile {
            guard let data = FileManager.default.contents(atPath: promptFile) else {
                throw CLIError.usage("cannot read --prompt-file \(InertText.line(promptFile))")
            }
            text = String(decoding: data, as: UTF8.self)
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw CLIError.usage("\(InertText.line(promptFile)) is empty")
            }
            if let problem = RunRequest.problem(with: text) { throw CLIError.usage("\(InertText.line(promptFile)): \(problem)") }
        }
        var ws: String?
        if let workspace {
            // The same check the dashboard's launch form makes: ~ expanded, relative made absolute,
            // a folder you can write, a path the engine can mount.
            switch WorkspaceCheck.resolve(workspace, environment: env) {
            case .success(let path): ws = path
            case .failure(let problem): throw CLIError.usage("--workspace \(problem)")
            }
        }
        var request = RunRequest(prompt: text, workspace: ws, image: image,
                                 buildIfMissing: image == RunnerImage.defaultTag ? ImageBuild(dockerfile: RunnerImage.dockerfile) : nil,
                                 runtimeArguments: runtimeArgs, passEnvironment: passEnv, keep: keep)
        // Backend options go by name; the backend refuses the ones it does not take.
        request.egress = try egressOptions.policy(environment: env)
        request.timeout = timeoutOption.seconds
        request.options = backendOptions.byName
        return request
    }

    /// How often a run looks for leftovers: an engine's listing takes its locks and CPU beside
    /// the run (a `podman ps` is 30 ms of CPU and the storage lock as the container is made), so
    /// an autonomous runner's hundreds of runs an hour ask once.
    static let leftoverCheckInterval: TimeInterval = 3600

    /// When a backend's leftovers were last looked for; gone once a run leaves one (kept, or
    /// not removed), so the next run looks again.
    static func leftoverStamp(_ kind: BackendKind, env: [String: String]) -> String {
        RunStore(environment: env).root + "/leftovers-checked-" + kind.rawValue
    }

    /// Says, beside the run and without holding it up, how many leftovers earlier runs left on
    /// this backend and how to remove them (at most once per `leftoverCheckInterval` a backend).
    static func mentionLeftovers(of backend: any SandboxBackend, env: [String: String]) {
        let stamp = leftoverStamp(backend.kind, env: env)
        if let checked = (try? FileManager.default.attributesOfItem(atPath: stamp))?[.modificationDate] as? Date,
           Date().timeIntervalSince(checked) < leftoverCheckInterval, Date() >= checked {
            return
        }
        FileManager.default.createFile(atPath: stamp, contents: nil)
        let thread = Thread {
            // Beside the run, never in its way: the engine's listing yields the CPU to it.
            Command.lowerThisThread()
            let store = RunStore(environment: env)
            guard let found = try? backend.resources(store: store.storeID), !found.isEmpty else { return }
            let live = Set(store.liveRecords().filter { !store.driverLost($0) }.map(\.id))
            let leftovers = found.filter { !$0.persistent && !($0.runID.map(live.contains) ?? false) }
            guard !leftovers.isEmpty else { return }
            Terminal.warning("\(leftovers.count) leftover \(backend.traits.resourceNoun)\(leftovers.count == 1 ? "" : "s") of earlier runs on "
                             + "\(backend.kind.displayName): see `ccdeck sandboxes ls`, remove with `ccdeck sandboxes prune`")
        }
        thread.start()
    }

    /// The backend `--mode` names, or for `auto` the first runnable one that is ready, local and
    /// cheap first: docker, podman, incus, sandbox, fly (each backend's `autoRank`). It says which, and why.
    func chooseBackend(env: [String: String]) throws -> any SandboxBackend {
        let registry = CLIContext.registry
        guard mode == "auto" else {
            let backend = try registry.require(BackendKind(mode), environment: env)
            guard backend.traits.canRun else { throw BackendError.notImplemented(backend.kind) }
            return backend
        }
        let candidates = registry.runnable(environment: env).sorted { $0.traits.autoRank < $1.traits.autoRank }
        let statuses = BackendRegistry.probeAll(candidates, timeout: 3)
        if let ready = statuses.firstIndex(where: { $0.state == .ready }) {
            let order = candidates.map(\.kind.rawValue).joined(separator: ", ")
            Terminal.err("ccdeck: --mode auto: \(candidates[ready].kind.displayName), the first ready of \(order)"
                         + (ready > 0 ? " (\(statuses[..<ready].map { "\($0.kind.displayName) \($0.state.label)" }.joined(separator: ", ")))" : ""))
            return candidates[ready]
        }
        let why = statuses.map { "\($0.kind.displayName): \($0.state.label)" + ($0.detail.isEmpty ? "" : " (\($0.detail))") }
        throw CLIError.setup("no backend that can run is ready: " + why.joined(separator: "; "))
    }

    struct SummaryJSON: Encodable {
        var type = "ccdeck.summary"
        var run: RunRecord
        var phases: [String: Double]

        init(_ record: RunRecord) {
            run = record
            phases = Dictionary(uniqueKeysWithValues: record.phases.offsets(from: record.createdAt).map { ($0.name, $0.seconds) })
        }
    }
}
