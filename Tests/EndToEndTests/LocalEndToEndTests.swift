import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// Local mode for real: bubblewrap around the real Claude Code CLI on the host, against the
/// scripted model, which the agent reaches only through ccdeck's egress proxy (its base URL's
/// host is the default allowlist). Proved here: the filesystem, process and network boundary,
/// the allowlist, and the token's path.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs bubblewrap and claude from scripts/testenv (run scripts/test)"))
struct LocalEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-local")

    func environment(_ model: ModelServer, token: String) throws -> [String: String] {
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: token)
        env["CCDECK_CLAUDE"] = try #require(TestPaths.claudeBinary)
        return env
    }

    func arguments(_ workspace: String, _ extra: [String] = []) -> [String] {
        ["run", "--mode", "local", "--workspace", workspace] + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] } + extra
    }

    @Test func aRunWritesItsWorkspaceAndTheTokenIsInNoArgv() throws {
        let workspace = home.path + "/project"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, workspace: workspace)
        let canary = EngineEnvironment.canaryToken()
        let env = try environment(model, token: canary)

        let backends = try CCDeckInvocation.run(["backends"], environment: env)
        #expect(backends.stdout.contains("local") && backends.stdout.contains("egress by allowlist"), "\(backends.output)")

        let watcher = ArgvWatcher(needle: canary)
        let r = try CCDeckInvocation.run(arguments(workspace), environment: env)
        let (hits, scans) = watcher.stop()
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(hits.isEmpty && scans > 0, "token in argv: \(hits)")
        #expect((try? String(contentsOfFile: workspace + "/hello.txt", encoding: .utf8))?.contains("hello") == true)
        #expect(FileManager.default.fileExists(atPath: workspace + "/bash-ran.txt"))
        let store = RunStore(environment: env)
        let record = try #require(store.list().first)
        #expect(record.state == .succeeded && record.mode == .local && record.isolation == .namespaces)
        #expect(record.credentials?.delivery == .environmentByName)
        // Nothing of the sandbox is left, and no output or record holds the token.
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: store.root + "/local")) ?? []).isEmpty)
        for file in [store.recordPath(for: record.id), store.outputPath(for: record.id), store.stderrPath(for: record.id)] {
            #expect(!((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").contains(canary), "\(file)")
        }
    }

    /// The agent tries to read the user's credentials file, write outside its workspace and look
    /// at the host's /run and /tmp: each is denied or empty, and says so in its workspace.
    @Test func theAgentCannotReachTheHostsHomeOrWriteOutsideItsWorkspace() throws {
        let workspace = home.path + "/project"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        let secret = home.write(".claude/.credentials.json", #"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET"}}"#)
        #expect(FileManager.default.fileExists(atPath: secret))
        let model = try ModelServer(scenario: "escape", logDirectory: home.path, workspace: workspace)
        var env = try environment(model, token: EngineEnvironment.canaryToken())
        env["CCDECK_PROBE_HOME"] = home.path
        let r = try CCDeckInvocation.run(arguments(workspace, ["--pass-env", "CCDECK_PROBE_HOME"]), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        let report = try String(contentsOfFile: workspace + "/escape.txt", encoding: .utf8)
        let lines = report.split(separator: "\n").map(String.init)
        #expect(lines.contains("no-read \(home.path)/.claude/.credentials.json"), "\(report)")
        #expect(!lines.contains { $0.hasPrefix("read ") }, "\(report)")
        for dir in ["/usr", "/etc", "/opt", "/var"] { #expect(lines.contains("no-write \(dir)"), "\(report)") }
        #expect(!FileManager.default.fileExists(atPath: "/usr/ccdeck-escape") && !FileManager.default.fileExists(atPath: "/etc/ccdeck-escape"))
        // /run holds only ccdeck's bind of claude: no engine socket; /tmp only the way to the workspace.
        #expect(lines.contains("run: ccdeck "), "\(report)")
        let parts = workspace.split(separator: "/").map(String.init)
        // (claude-N and cc-socks are the agent's own, made in the sandbox's empty /tmp.)
        let tmpSeen = lines.first { $0.hasPrefix("tmp: ") }?.split(separator: " ").dropFirst().map(String.init)
            .filter { !$0.hasPrefix("claude-") && $0 != "cc-socks" }
        #expect(tmpSeen == (parts.first == "tmp" ? [parts[1]] : []), "\(report)")
        #expect(!report.contains("ccdeck-testenv"), "the host's /tmp shows: \(report)")
        // And each denial is in the run's stored output (the tool's result), not only in the workspace.
        let record = try #require(RunStore(environment: env).list().first)
        let output = try String(contentsOfFile: RunStore(environment: env).outputPath(for: record.id), encoding: .utf8)
        #expect(output.contains("no-read \(home.path)/.claude/.credentials.json") && output.contains("no-write /usr"), "\(output)")
    }

    /// `--claude PATH` alone is enough (nothing on PATH, no CCDECK_CLAUDE); a wrong one is a
    /// clear setup error naming it.
    @Test func claudeGivenByFlag() throws {
        let workspace = home.path + "/project"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, workspace: workspace)
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        env["PATH"] = "/usr/bin:/bin"
        let claude = try #require(TestPaths.claudeBinary)
        let wrong = try CCDeckInvocation.run(arguments(workspace, ["--claude", "/nope/claude"]), environment: env)
        #expect(wrong.status == .exited(2) && wrong.stderr.contains("no claude to run: /nope/claude"), "\(wrong.output)")
        let r = try CCDeckInvocation.run(arguments(workspace, ["--claude", claude]), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(FileManager.default.fileExists(atPath: workspace + "/bash-ran.txt"))
    }

    /// The agent curls a host allowed by flag, hosts off the list (plain http, https, an IP
    /// literal, a redirect to one) and a host address directly: only the allowed one is reached,
    /// every refusal is in the record, the proxy's log and the run's stderr, and no token anywhere.
    @Test func theAgentReachesOnlyTheHostsOnItsAllowlist() throws {
        let workspace = home.path + "/project"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        let server = try TestHTTPServer(any: true, redirectTo: "http://denied.invalid/after-redirect")
        let address = try #require(HostAddress.firstNonLoopbackIPv4(), "this host has no address but loopback")
        let model = try ModelServer(scenario: "egress", logDirectory: home.path, workspace: workspace)
        let canary = EngineEnvironment.canaryToken()
        var env = try environment(model, token: canary)
        env["CCDECK_PROBE_PORT"] = String(server.port)
        env["CCDECK_PROBE_ADDR"] = address
        let watcher = ArgvWatcher(needle: canary)
        let r = try CCDeckInvocation.run(arguments(workspace, ["--pass-env", "CCDECK_PROBE_PORT", "--pass-env", "CCDECK_PROBE_ADDR",
                                                               "--allow-host", "localhost"]), environment: env)
        let (hits, _) = watcher.stop()
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(hits.isEmpty, "token in argv: \(hits)")

        let report = try String(contentsOfFile: workspace + "/egress.txt", encoding: .utf8)
        let lines = Dictionary(report.split(separator: "\n").map { line -> (String, String) in
            let parts = line.split(separator: " ", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }, uniquingKeysWith: { a, _ in a })
        #expect(lines["allowed"] == "200/000 0", "\(report)")
        #expect(lines["denied"]?.hasPrefix("403/") == true, "\(report)")
        #expect(lines["denied-tls"]?.hasPrefix("000/403 ") == true, "\(report)")
        #expect(lines["literal"]?.hasPrefix("403/") == true, "\(report)")
        #expect(lines["redirect"]?.hasPrefix("403/") == true, "\(report)")
        #expect(lines["direct"]?.hasPrefix("000/000 ") == true && lines["direct"] != "000/000 0", "\(report)")
        // The server saw the allowed request and the redirect's first leg, nothing else.
        let paths = server.requests.compactMap { $0.split(separator: " ").dropFirst().first.map(String.init) }
        #expect(paths.sorted() == ["/allowed", "/redirect"], "\(server.requests)")

        let store = RunStore(environment: env)
        let record = try #require(store.list().first)
        let egress = try #require(record.egress)
        #expect(egress.enforcement == .allowlist && egress.hosts.contains("localhost") && egress.hosts.contains("127.0.0.1"))
        let denied = Set(egress.denied.map { "\($0.host):\($0.port)" })
        #expect(denied.isSuperset(of: ["denied.invalid:80", "denied.invalid:443", "::1:\(server.port)"]), "\(denied)")
        #expect(egress.allowedConnections >= 3)  // the model, /allowed, /redirect
        let log = try String(contentsOfFile: store.directory(for: record.id) + "/egress.jsonl", encoding: .utf8)
        #expect(log.contains("\"host\":\"denied.invalid\"") && log.contains("\"allowed\":false"))
        #expect(!log.contains(canary) && !FileManager.default.fileExists(atPath: store.directory(for: record.id) + "/egress.sock"))
        #expect(r.stderr.contains("egress denied: denied.invalid:443"), "\(r.stderr)")
        let shown = try CCDeckInvocation.run(["runs", "show", record.id], environment: env)
        #expect(shown.stdout.contains("denied.invalid:443"), "\(shown.output)")
    }

    /// `--allow-all` shares the host's network and says so in the record.
    @Test func allowAllIsRecorded() throws {
        let workspace = home.path + "/project"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, workspace: workspace)
        let env = try environment(model, token: EngineEnvironment.canaryToken())
        let r = try CCDeckInvocation.run(arguments(workspace, ["--allow-all"]), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.egress?.enforcement == .allowAll)
        let bad = try CCDeckInvocation.run(arguments(workspace, ["--allow-host", "https://x.test/"]), environment: env)
        #expect(bad.status == .exited(2) && bad.stderr.contains("--allow-host takes a host name"), "\(bad.output)")
        home.write(".config/ccdeck/egress.conf", "ok.test\nnot a host\n")
        let badFile = try CCDeckInvocation.run(arguments(workspace), environment: env)
        #expect(badFile.status == .exited(2) && badFile.stderr.contains("egress.conf:2:"), "\(badFile.output)")
    }

    /// The run's first record, written before anything starts, already names its proxy (one
    /// write, not two, on the way to every allowlisted run's start): a ccdeck killed right after
    /// it leaves a record that says the sandbox would depend on ccdeck's egress proxy, and no
    /// sandbox.
    @Test func theFirstRecordNamesTheRunsProxy() throws {
        let workspace = home.path + "/project"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, workspace: workspace)
        var env = try environment(model, token: EngineEnvironment.canaryToken())
        env["CCDECK_FAULT"] = "after-record-write"
        let killed = try CCDeckInvocation.run(arguments(workspace), environment: env)
        #expect(killed.status == .signaled(SIGKILL), "\(killed.output)")
        env["CCDECK_FAULT"] = nil
        let store = RunStore(environment: env)
        let record = try #require(store.list().first)
        #expect(record.egress?.enforcement == .allowlist, "\(String(describing: record.egress))")
        #expect(record.egress?.hosts == ["127.0.0.1"], "\(String(describing: record.egress))")
        #expect(record.state != .running && record.state != .succeeded, "\(record.state)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: store.root + "/local")) ?? []).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: workspace + "/hello.txt"))
    }
}
