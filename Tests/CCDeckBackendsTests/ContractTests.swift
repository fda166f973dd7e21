@testable import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// What ccdeck hands the engines, pinned against backends.md's contract.
@Suite struct ContractTests {
    let secret = "sk-ant-oat01-" + "CANARY-CONTRACT-0123456789" + "abcdefghijklmnopqrstuvwxyz"

    func spec(_ engine: ContainerBackend.Engine, owner: FileOwner = FileOwner(uid: 1000, gid: 1000))
        -> (ContainerBackend, RunSpec) {
        let store = RunStore(root: "/tmp/ccdeck-contract")
        let token = Token(value: secret, kind: .setupToken, source: .environment(variable: "CLAUDE_CODE_OAUTH_TOKEN"))
        let backend = ContainerBackend(engine, environment: [:])
        let driver = RunDriver(backend: backend, store: store, token: token,
                               environment: ["PATH": "/usr/bin", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
                                             "ANTHROPIC_API_KEY": "sk-ant-api03-host-key", "EXTRA": "1"]) { _ in }
        var record = RunRecord(id: "r1", mode: backend.kind, image: "img", sandbox: "ccdeck-r1", workspace: "/ws",
                               workspaceIsTemporary: true, prompt: "- do it", keep: false, createdAt: Date(), driverPID: 1,
                               host: "h", tokenSource: nil)
        record.state = .running
        let request = RunRequest(prompt: "- do it", runtimeArguments: ["--network=host"], passEnvironment: ["EXTRA", "UNSET"])
        return (backend, driver.makeSpec(record: record, request: request, owner: owner))
    }

    @Test(arguments: ContainerBackend.Engine.allCases)
    func tokenTravelsByNameOnly(engine: ContainerBackend.Engine) {
        let (backend, spec) = spec(engine)
        let args = backend.runArguments(spec, preparation: Preparation())
        #expect(!args.joined(separator: " ").contains("CANARY"))
        #expect(args.contains("CLAUDE_CODE_OAUTH_TOKEN"))
        #expect(!args.contains { $0.hasPrefix("CLAUDE_CODE_OAUTH_TOKEN=") })
        // The value is nowhere in the spec's shared environment: only the backend puts it in its client's.
        #expect(spec.environment["CLAUDE_CODE_OAUTH_TOKEN"] == nil)
        #expect(spec.token?.value == secret && spec.token?.name == "CLAUDE_CODE_OAUTH_TOKEN")
        #expect(!"\(spec.token!)".contains("CANARY"))
        // The host's API key must not ride along and win over the OAuth token inside.
        #expect(spec.environment["ANTHROPIC_API_KEY"] == nil)
        #expect(!spec.passEnvironment.contains("ANTHROPIC_API_KEY"))
    }

    @Test func runArgumentsHaveLabelsMountAndStreamJSONAndNoPrompt() throws {
        let (backend, spec) = spec(.docker)
        let args = backend.runArguments(spec, preparation: Preparation())
        #expect(Array(args.prefix(4)) == ["run", "-i", "--name", "ccdeck-r1"])
        #expect(args.contains("ccdeck.run=r1"))
        #expect(args.contains("ccdeck.mode=docker"))
        #expect(args.contains { $0.hasPrefix("ccdeck.store=") })
        #expect(args.contains("/ws:/workspace"))
        #expect(spec.passEnvironment == ["ANTHROPIC_BASE_URL", "EXTRA"])  // UNSET is not set here: not passed
        let imageIndex = try #require(args.firstIndex(of: RunnerImage.defaultTag))
        #expect(args[imageIndex - 1] == "--network=host")
        // The prompt ("- do it", which would read as an option) is not in argv: it goes to stdin.
        #expect(Array(args[(imageIndex + 1)...]) == ["--output-format", "stream-json", "--verbose"])
        #expect(!args.contains("- do it"))
        #expect(!args.contains("--rm"))  // the container outlives a crashed ccdeck and is found again by label
    }

    @Test func apiKeysGoInAsAnthropicAPIKey() {
        let token = Token(value: "sk-ant-api03-abcdefghijklmnop", kind: .apiKey, source: .environment(variable: "X"))
        let driver = RunDriver(backend: ContainerBackend(.docker, environment: [:]), store: RunStore(root: "/tmp/x"),
                               token: token, environment: ["CLAUDE_CODE_OAUTH_TOKEN": "stale"]) { _ in }
        let record = RunRecord(id: "r", mode: .docker, image: "i", sandbox: "c", workspace: "/w", workspaceIsTemporary: true,
                               prompt: "p", keep: false, createdAt: Date(), driverPID: 1, host: "h", tokenSource: nil)
        let spec = driver.makeSpec(record: record, request: RunRequest(), owner: FileOwner(uid: 0, gid: 0))
        #expect(spec.token?.name == "ANTHROPIC_API_KEY")
        #expect(spec.environment["CLAUDE_CODE_OAUTH_TOKEN"] == nil)
        let args = ContainerBackend(.docker, environment: [:]).runArguments(spec, preparation: Preparation())
        #expect(args.contains("ANTHROPIC_API_KEY") && !args.contains("CLAUDE_CODE_OAUTH_TOKEN"))
    }

    /// Who the agent runs as, so it can write the user's folder and its files come back owned by the folder's owner.
    @Test func theAgentRunsAsTheWorkspaceOwner() throws {
        let root = FileOwner(uid: 0, gid: 0)
        func plan(_ e: ContainerBackend.Engine, rootless: Bool, owner: FileOwner, invoker: FileOwner = root) throws -> Preparation {
            try ContainerBackend.userPlan(engine: e, rootless: rootless, owner: owner, invoker: invoker, workspace: "/ws")
        }
        for engine in ContainerBackend.Engine.allCases {
            #expect(try plan(engine, rootless: false, owner: FileOwner(uid: 1000, gid: 1000)).userArguments == [])
            let asRoot = try plan(engine, rootless: false, owner: FileOwner(uid: 0, gid: 0))
            #expect(asRoot.userArguments == ["--user", "0:0", "-e", "IS_SANDBOX=1", "-e", "HOME=/root"])
            let other = try plan(engine, rootless: false, owner: FileOwner(uid: 4242, gid: 4343))
            #expect(other.userArguments == ["--user", "4242:4343", "-e", "HOME=/tmp"])
            #expect(other.agentUser?.contains("4242") == true)
        }
        let me = FileOwner(uid: 1001, gid: 1001)
        #expect(try plan(.podman, rootless: true, owner: me, invoker: me).userArguments == ["--userns=keep-id:uid=1000,gid=1000"])
        #expect(try plan(.docker, rootless: true, owner: me, invoker: me).userArguments.starts(with: ["--user", "0:0"]))
        // Rootless engines write as the user running them: someone else's folder is refused before anything starts.
        #expect(throws: BackendError.self) { try plan(.podman, rootless: true, owner: FileOwner(uid: 0, gid: 0), invoker: me) }
        do {
            _ = try plan(.docker, rootless: true, owner: FileOwner(uid: 4242, gid: 4242), invoker: me)
        } catch {
            #expect("\(error)".contains("belongs to uid 4242") && "\(error)".contains("chown"))
        }
    }

    @Test func userArgumentsGoBeforeTheImage() throws {
        let (backend, spec) = spec(.podman, owner: FileOwner(uid: 4242, gid: 4242))
        let prep = Preparation(agentUser: "x", userArguments: ["--user", "4242:4242", "-e", "HOME=/tmp"])
        let args = backend.runArguments(spec, preparation: prep)
        let user = try #require(args.firstIndex(of: "--user"))
        #expect(user < args.firstIndex(of: RunnerImage.defaultTag)!)
        #expect(args[user + 1] == "4242:4242")
    }

    @Test func aWorkspacePathWithAColonIsMountedWithMount() throws {
        var (backend, spec) = spec(.docker)
        spec.workspace = "/home/me/proj:v2"
        let args = backend.runArguments(spec, preparation: Preparation())
        #expect(args.contains("type=bind,source=/home/me/proj:v2,target=/workspace"))
        #expect(!args.contains("-v"))
        spec.workspace = "/home/me/a,b:c"
        #expect(throws: BackendError.self) {
            _ = try backend.prepare(spec, build: nil, cancel: Cancellation(fd: nil)) { _ in }
        }
    }

    @Test func theRealErrorLineIsPickedFromAnEnginesStderr() {
        let docker = ["unknown flag: --no-such-flag", "", "Usage:  docker run [OPTIONS] IMAGE [COMMAND] [ARG...]", "",
                      "Run 'docker run --help' for more information"]
        #expect(RunJudgement.meaningfulLine(docker) == "unknown flag: --no-such-flag")
        #expect(ContainerBackend(.docker, environment: [:]).startFailure(exitCode: 125, stderr: docker)?
            .hasSuffix("unknown flag: --no-such-flag") == true)
        #expect(ContainerBackend(.docker, environment: [:]).startFailure(exitCode: 1, stderr: docker) == nil)
        #expect(RunJudgement.meaningfulLine(["Error: no such image: x", "See 'podman run --help'."]) == "Error: no such image: x")
        #expect(RunJudgement.meaningfulLine(["", "  "]) == nil)
    }

    @Test func promptsThatCannotArriveWholeAreRefused() {
        #expect(RunRequest.problem(with: "- fix bug\n- add tests\n") == nil)
        #expect(RunRequest.problem(with: "---\ntitle: x\n---\n") == nil)
        #expect(RunRequest.problem(with: "a\u{0}b")?.contains("NUL") == true)
        #expect(RunRequest.problem(with: " \n") != nil)
    }

    @Test func whatTheSandboxHoldsFollowsTheDeliveryAndTheToken() {
        let access = Token(value: "v", kind: .oauthAccessToken, source: .credentialsFile(path: "/c"))
        let setup = Token(value: "sk-ant-oat01-x", kind: .setupToken, source: .dotenv(path: "/e"))
        #expect(CredentialExposure.of(access, delivery: .environmentByName) == .shortLivedAccessToken)
        #expect(CredentialExposure.of(access, delivery: .hostProxy) == .nothing)
        #expect(CredentialExposure.of(Token(value: "sk-ant-api03-x", kind: .apiKey, source: .dotenv(path: "/e")),
                                      delivery: .file) == .longLivedToken)
        #expect([CredentialExposure.longLivedToken, .unknownToken].contains(CredentialExposure.of(setup, delivery: .appSecret)))
    }

    @Test func repositoryDockerfileIsTheOneCompiledIn() throws {
        let text = try String(contentsOfFile: TestPaths.repositoryRoot + "/Dockerfile", encoding: .utf8)
        #expect(text == RunnerImage.dockerfile)
        let instructions = text.lineSlices.filter { !$0.hasPrefix("#") && !$0.isEmpty }
        #expect(instructions.first == "FROM node:22-slim")
        #expect(instructions.contains("USER agent"))
        #expect(text.contains(#"{"hasCompletedOnboarding": true}"#) && text.contains("/home/agent/.claude.json"))
        #expect(instructions.last == #"ENTRYPOINT ["claude", "-p", "--dangerously-skip-permissions"]"#)
        #expect(text.contains("npm install -g @anthropic-ai/claude-code"))
        // The last USER before the entrypoint is the non-root agent.
        #expect(instructions.last { $0.hasPrefix("USER ") } == "USER agent")
    }
}

/// Mode B's argv for both CLIs, and their `ls --json` as recorded, drift included.
@Suite struct SandboxContractTests {
    func spec() -> RunSpec {
        var s = RunSpec(id: "20261129-074700-ab12", sandboxName: "x", image: "", workspace: "/home/me/proj",
                        workspaceOwner: FileOwner(uid: 1000, gid: 1000), prompt: "- task", mark: [Mark.store: "0a1b2c3d4e5f"],
                        token: Secret(name: "CLAUDE_CODE_OAUTH_TOKEN", value: "sk-ant-oat01-" + "SECRET-CONTRACT"),
                        passEnvironment: ["ANTHROPIC_BASE_URL", "CLAUDE_CODE_OAUTH_TOKEN"],
                        environment: ["ANTHROPIC_BASE_URL": "http://127.0.0.1:9"], runtimeArguments: [])
        s.options["sandbox-cli"] = ["sbx"]
        return s
    }

    @Test func namesCarryTheStoreAndTheRun() {
        let name = DockerSandboxBackend.sandboxName(store: "0a1b2c3d4e5f", runID: "20261129-074700-ab12")
        #expect(name == "ccdeck-0a1b2c3d4e5f-20261129-074700-ab12")
        #expect(name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" })  // what both CLIs accept
        #expect(DockerSandboxBackend.runID(in: name, store: "0a1b2c3d4e5f") == "20261129-074700-ab12")
        #expect(DockerSandboxBackend.runID(in: name, store: "another") == nil)
        #expect(DockerSandboxBackend.runID(in: "someone-else", store: "0a1b2c3d4e5f") == nil)
    }

    @Test(arguments: DockerSandboxBackend.CLI.allCases)
    func createAndExecArguments(cli: DockerSandboxBackend.CLI) {
        let prefix = cli == .docker ? ["sandbox"] : []
        #expect(DockerSandboxBackend.createArguments(cli, name: "n", workspace: "/home/me/proj")
                == prefix + ["create", "--name", "n", "claude", "/home/me/proj"])
        let exec = DockerSandboxBackend.execArguments(cli, spec(), name: "n")
        #expect(exec == prefix + ["exec", "-i", "-w", "/home/me/proj", "-e", "ANTHROPIC_BASE_URL=http://127.0.0.1:9", "n",
                                  "claude", "-p", "--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose"])
        // No token, and no prompt: the proxy holds one, stdin carries the other.
        #expect(!exec.joined(separator: " ").contains("SECRET") && !exec.contains("- task"))
    }

    @Test func listsAreReadAsRecordedDriftIncluded() {
        let docker = #"{"vms":[{"name":"ccdeck-s-r1","agent":"claude","status":"running","socket_path":"/x.sock","sandbox_count":1,"workspaces":["/w"]}]}"#
        #expect(DockerSandboxBackend.parseList(docker).map(\.name) == ["ccdeck-s-r1"])
        // sbx: daemon start-up lines first on stdout, no `id`, an unknown field.
        let sbx = """
            Starting sandboxd daemon...
            sandboxd is ready
            {"sandboxes":[{"name":"ccdeck-s-r2","agent":"claude","status":"stopped","workspaces":["/w"],"created_at":"2026-11-29T07:00:00Z","kits":[]},
             {"agent":"claude"}]}
            """
        let parsed = DockerSandboxBackend.parseList(sbx)
        #expect(parsed.map(\.name) == ["ccdeck-s-r2"] && parsed[0].status == "stopped" && parsed[0].createdAt != nil)
        // A release that says `state`, not `status`.
        #expect(DockerSandboxBackend.parseList(#"{"sandboxes":[{"name":"a","state":"running"}]}"#).first?.status == "running")
        #expect(DockerSandboxBackend.parseList("Error: daemon not running").isEmpty)
    }

    @Test func optionsOfOtherBackendsAreRefused() {
        var s = spec()
        s.options["device"] = ["a,proxy"]
        #expect(throws: BackendError.self) {
            _ = try DockerSandboxBackend(environment: [:]).prepare(s, build: nil, cancel: Cancellation(fd: nil)) { _ in }
        }
    }
}

/// Mode C's argv and outputs, pinned.
@Suite struct FlyContractTests {
    @Test func machineRunArguments() {
        let args = FlyBackend.machineRunArguments(app: "a", region: "ams", name: "ccdeck-s-r", image: "registry.fly.io/a:t",
                                                  mark: [Mark.run: "r", Mark.store: "s"], variables: ["ANTHROPIC_BASE_URL": "http://x"],
                                                  workspaceTar: "/up/w.tar", promptFile: "/up/p")
        #expect(Array(args.prefix(3)) == ["machine", "run", "registry.fly.io/a:t"])
        for pair in [["-a", "a"], ["--restart", "no"], ["-r", "ams"], ["--metadata", "ccdeck_run=r"], ["--metadata", "ccdeck_store=s"],
                     ["-e", "ANTHROPIC_BASE_URL=http://x"], ["--file-local", "/run/ccdeck/workspace.tar=/up/w.tar"],
                     ["--file-local", "/run/ccdeck/prompt=/up/p"], ["--entrypoint", "/bin/sh"]] {
            #expect(args.indices.contains { i in i + 1 < args.count && args[i] == pair[0] && args[i + 1] == pair[1] }, "\(pair)")
        }
        #expect(!args.contains("--rm"))  // the exit is read, and the changes fetched, before the machine goes
        #expect(args.last?.contains("ccdeck-exit $code") == true && args.last?.contains("< /run/ccdeck/prompt") == true)
    }

    @Test func outputsAsFlyctlPrintsThem() {
        #expect(FlyBackend.machineID(in: "Success! A Machine has been successfully launched in app a\n Machine ID: 148e21ea7\n State: started\n")
                == "148e21ea7")
        let list = """
            [
              {
                "id": "148e21ea7",
                "name": "ccdeck-s-r",
                "state": "started",
                "created_at": "2026-11-29T07:00:00Z",
                "config": { "metadata": { "ccdeck_run": "r", "ccdeck_store": "s", "fly_platform_version": "v2" } },
                "events": [ { "type": "exit", "request": { "exit_event": { "exited_at": "2026-11-29T07:01:00Z" } } } ]
              }
            ]
            """
        let machines = FlyBackend.parseMachines(list)
        #expect(machines.count == 1 && machines[0].metadata["ccdeck_run"] == "r" && machines[0].createdAt != nil)
        #expect(FlyBackend.tomlValue("app", in: TestPaths.repositoryRoot + "/fly.toml") == "ccdeck-runner")
        #expect(FlyBackend.tomlValue("primary_region", in: TestPaths.repositoryRoot + "/fly.toml") == "ams")
    }

    /// `fly logs --json` entries are indented over several lines; the agent's line is the message.
    @Test func logEntriesDecodeIntoTheAgentsLines() {
        let decoder = FlyLogDecoder()
        var lines: [String] = []
        let stream = """
            {
              "timestamp": "2026-11-29T07:00:00Z",
              "message": "{\\"type\\":\\"system\\",\\"subtype\\":\\"init\\",\\"cwd\\":\\"/w {x}\\"}",
              "meta": { "event": { "provider": "app" } }
            }
            {
              "message": "ccdeck-exit 3"
            }
            """
        for line in stream.split(separator: "\n") {
            lines += decoder.decode(Data(line.utf8)).map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(lines == [#"{"type":"system","subtype":"init","cwd":"/w {x}"}"#])
        #expect(decoder.finished && decoder.exitCode == 3)
    }
}

/// What ccdeck notes about a Fly app is read back exactly as written (it used its own coders,
/// which dropped the milliseconds the store's keep).
@Suite struct FlyStateTests {
    @Test func appStateRoundTripsWithMilliseconds() throws {
        let tmp = TemporaryDirectory("ccdeck-fly-state")
        let store = RunStore(root: tmp.path)
        let fly = FlyBackend(environment: [:])
        var state = FlyBackend.AppState()
        let pushed = Date(timeIntervalSince1970: 1_795_920_000.123)
        state.token = KeptToken(place: "fly app demo", fingerprint: "abc", pushedAt: pushed, expiresAt: pushed.addingTimeInterval(3600))
        state.imageTag = "registry.fly.io/demo:ccdeck-1"
        state.imageBuiltAt = pushed
        try fly.saveState(state, store: store, app: "demo")
        let read = fly.loadState(store: store, app: "demo")
        #expect(read.token == state.token)
        #expect(read.imageTag == state.imageTag)
        #expect(abs((read.imageBuiltAt ?? .distantPast).timeIntervalSince(pushed)) < 0.001)
    }
}
