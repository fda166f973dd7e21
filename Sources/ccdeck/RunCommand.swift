import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run Claude Code headless in a sandbox and stream what the agent does.",
        discussion: """
            The token reaches the container by name only (`-e CLAUDE_CODE_OAUTH_TOKEN`), never as a value in any \
            argv. ANTHROPIC_BASE_URL, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC and the proxy variables are passed \
            through when set. The run is judged by the agent's final `result` event, not by its exit code.
            Exit status: 0 the run succeeded, 1 it failed, 2 usage or setup error, 130/143/129 stopped by a signal.
            """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case docker, podman, auto
    }

    @Option(help: "Where to run: docker, podman, or auto (the first ready of those).")
    var mode: Mode = .auto

    @Option(help: "The task for the agent.")
    var prompt: String?

    @Option(help: "Read the task from this file.")
    var promptFile: String?

    @Option(help: "Host folder mounted at /workspace (default: a fresh one kept with the run).")
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

    @Flag(help: "Keep the container after the run (it shows up as an orphan until removed).")
    var keep = false

    @Flag(help: "Print the agent's events as JSON lines, then a summary object.")
    var json = false

    func validate() throws {
        if prompt != nil && promptFile != nil { throw ValidationError("give --prompt or --prompt-file, not both") }
        if let p = prompt, p.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw ValidationError("--prompt is empty")
        }
        for name in passEnv where name.isEmpty || name.contains("=") {
            throw ValidationError("--pass-env takes a variable name, not NAME=value: the value would appear in argv")
        }
    }

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        let request = try makeRequest(env: env)
        let token = try TokenResolver(environment: env).resolve()
        let status = TokenStatus(token: token, now: Date())
        status.warnings.forEach(Terminal.warning)
        let backend = try chooseBackend(env: env)
        for name in passEnv where env[name] == nil {
            Terminal.warning("--pass-env \(name): not set here, so not passed")
        }

        let wakeFD = SignalPipe.install()
        let renderer = EventRenderer()
        let driver = RunDriver(backend: backend, store: RunStore(environment: env), token: token, environment: env) { update in
            switch update {
            case .notice(let text):
                Terminal.err("ccdeck: " + InertText.line(text))
            case .created:
                break
            case .started(let record):
                if !json {
                    Terminal.err("ccdeck: run \(record.id) in \(record.mode.displayName), image \(record.image)")
                    Terminal.err("ccdeck: workspace \(record.workspace)")
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
            }
        }

        let record: RunRecord
        do {
            record = try driver.run(request, wakeFD: wakeFD)
        } catch let failure as RunDriver.Failure {
            throw CLIError.setup(failure.description)
        }
        if json {
            Terminal.out(try Terminal.json(SummaryJSON(record), pretty: false))
        } else {
            RunSummary.lines(for: record).forEach(Terminal.out)
            Terminal.out("  details: ccdeck runs show \(record.id)")
        }
        switch record.state {
        case .succeeded: return
        case .stopped:
            let sig = SignalPipe.received
            throw ExitCode(sig > 0 ? 128 + sig : 130)
        default: throw ExitCode(1)
        }
    }

    func makeRequest(env: [String: String]) throws -> RunRequest {
        var text = prompt ?? RunRequest.defaultPrompt
        if let promptFile {
            guard let data = FileManager.default.contents(atPath: promptFile) else {
                throw CLIError.usage("cannot read --prompt-file \(promptFile)")
            }
            text = String(decoding: data, as: UTF8.self)
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw CLIError.usage("\(promptFile) is empty") }
        }
        var ws: String?
        if let workspace {
            let url = URL(fileURLWithPath: workspace).standardizedFileURL
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else {
                throw CLIError.usage("--workspace \(workspace) is not a folder")
            }
            ws = url.path
        }
        return RunRequest(prompt: text, workspace: ws, image: image,
                          buildIfMissing: image == RunnerImage.defaultTag ? ImageBuild(dockerfile: RunnerImage.dockerfile) : nil,
                          runtimeArguments: runtimeArgs, passEnvironment: passEnv, keep: keep)
    }

    func chooseBackend(env: [String: String]) throws -> ContainerBackend {
        switch mode {
        case .docker: return ContainerBackend(kind: .docker, environment: env)
        case .podman: return ContainerBackend(kind: .podman, environment: env)
        case .auto:
            let candidates = [ContainerBackend(kind: .docker, environment: env), ContainerBackend(kind: .podman, environment: env)]
            let statuses = BackendRegistry.probeAll(candidates, timeout: 3)
            if let ready = statuses.firstIndex(where: { $0.state == .ready }) { return candidates[ready] }
            let why = statuses.map { "\($0.kind.displayName): \($0.state.label)"
                + ($0.detail.isEmpty ? "" : " (\($0.detail))") }
            throw CLIError.setup("no container engine is ready: " + why.joined(separator: "; "))
        }
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
