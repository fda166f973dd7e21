import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// The egress allowlist on docker and podman: no network but ccdeck's proxy (`--network none`,
/// the bridge as the container's first process), the real Claude Code CLI reaching the scripted
/// model only through it. (Local mode's own tests are in LocalEndToEndTests.)
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct EgressEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-egress")

    func arguments(_ engine: String, _ extra: [String]) -> [String] {
        ["run", "--mode", engine, "--image", EngineEnvironment.testImage]
            + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] } + extra
    }

    /// The agent's requests (raw HTTP through its proxy: the test image's busybox wget cannot
    /// resolve names) reach the host allowed by flag, is refused one off the list, and
    /// cannot reach the host's address directly; the model is reached through the proxy alone.
    @Test(arguments: ["docker", "podman"])
    func aContainerReachesOnlyItsAllowlist(engine: String) throws {
        let server = try TestHTTPServer(any: true)
        let address = try #require(HostAddress.firstNonLoopbackIPv4(), "this host has no address but loopback")
        let model = try ModelServer(scenario: "egress_nc", logDirectory: home.path)
        let canary = EngineEnvironment.canaryToken()
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: canary)
        env["CCDECK_PROBE_PORT"] = String(server.port)
        env["CCDECK_PROBE_ADDR"] = address
        let workspace = home.path + "/ws-\(engine)"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        chown(workspace, 1000, 1000)
        let watcher = ArgvWatcher(needle: canary)
        let r = try CCDeckInvocation.run(arguments(engine, ["--workspace", workspace, "--allow-host", "localhost",
                                                            "--pass-env", "CCDECK_PROBE_PORT", "--pass-env", "CCDECK_PROBE_ADDR"]),
                                         environment: env)
        let (hits, _) = watcher.stop()
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(hits.isEmpty, "token in argv: \(hits)")
        let report = try String(contentsOfFile: workspace + "/egress.txt", encoding: .utf8)
        #expect(report.contains("allowed HTTP/1.1 200 OK"), "\(report)")
        #expect(report.contains("denied HTTP/1.1 403 Forbidden"), "\(report)")
        #expect(report.contains("direct fail"), "\(report)")
        #expect(server.requests.map { $0.split(separator: " ").dropFirst().first.map(String.init) ?? "" } == ["/allowed"],
                "\(server.requests)")
        let store = RunStore(environment: env)
        let record = try #require(store.list().first)
        #expect(record.egress?.enforcement == .allowlist)
        #expect(record.egress?.denied.contains { $0.host == "denied.invalid" && $0.port == 80 } == true, "\(String(describing: record.egress))")
        #expect((record.egress?.allowedConnections ?? 0) >= 3)
        let log = try String(contentsOfFile: store.directory(for: record.id) + "/egress.jsonl", encoding: .utf8)
        #expect(!log.contains(canary) && log.contains("denied.invalid"))
    }

    /// Under gVisor too (runsc reaches the proxy's socket with --host-uds=open).
    @Test(arguments: ["docker", "podman"])
    func gVisorRunsReachTheModelThroughTheProxy(engine: String) throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let r = try CCDeckInvocation.run(arguments(engine, ["--isolation", "gvisor"]), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.isolation == .gvisor && record.egress?.enforcement == .allowlist)
        #expect((record.egress?.allowedConnections ?? 0) >= 3 && record.egress?.hosts == ["127.0.0.1"])
    }

    /// A run that picks its own network is not held to the list, and says so.
    @Test func aRunOnTheHostNetworkIsRecordedAsNotFiltered() throws {
        let model = try ModelServer(scenario: "text_only", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker"), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(r.stderr.contains("egress not filtered: the run chooses its own network (--network=host)"), "\(r.stderr)")
        #expect(RunStore(environment: env).list().first?.egress?.enforcement == .notEnforced)
    }

    /// A dashboard with no network option: what it launches is held to the list, and the hosts
    /// a run was refused stand above its output.
    @Test func theDashboardShowsARunsDeniedHosts() throws {
        let server = try TestHTTPServer(any: true)
        let model = try ModelServer(scenario: "egress_nc", logDirectory: home.path)
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        env["CCDECK_PROBE_PORT"] = String(server.port)
        env["CCDECK_PROBE_ADDR"] = HostAddress.firstNonLoopbackIPv4() ?? "192.0.2.1"
        let tmux = try dashboard(env, extra: "--allow-host localhost --pass-env CCDECK_PROBE_PORT --pass-env CCDECK_PROBE_ADDR")
        #expect(tmux.waitFor("docker ready") { $0.contains("q quit") && $0.contains("✓ docker") } != nil)
        try tmux.send("n")
        try tmux.send("Enter")
        let screen = tmux.waitFor("the denial shown", timeout: 60) { $0.contains("egress denied: denied.invalid:80") && $0.contains("succeeded") }
        #expect(screen != nil, "\(tmux.capture())")
        #expect(server.requests.count == 1)
        try tmux.send("q")
        #expect(tmux.waitFor("EXIT:0", timeout: 20, history: true) != nil)
    }

    /// `ccdeck run` killed outright: its container loses its way out with it, and the dashboard
    /// that adopts the run listens on the same socket folder again, so the agent (retrying, as
    /// Claude Code does) reaches the model and the run ends well.
    @Test func anAdoptedRunGetsItsWayOutBack() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 2)
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        env["CLAUDE_CODE_MAX_RETRIES"] = "8"
        let killed = try CCDeckInterrupted.run(arguments("docker", []), environment: env, when: "session started") { child in
            kill(child.pid, SIGKILL)
        }
        #expect(killed.acted, "\(killed.stdout)")
        let storeRoot = home.path + "/state/ccdeck"
        let lost = try #require(RunStore(root: storeRoot).list().first)
        #expect(lost.egress?.enforcement == .allowlist)
        let tmux = try dashboard(env, extra: "")
        #expect(tmux.waitFor("adopted and finished", timeout: 120) { $0.contains("adopted") && $0.contains("succeeded") } != nil,
                "\(tmux.capture())")
        let record = try RunStore(root: storeRoot).load(lost.id)
        #expect(record.state == .succeeded && record.adoptedAt != nil, "\(record)")
        #expect((record.egress?.allowedConnections ?? 0) >= 3, "\(String(describing: record.egress))")
        #expect(!FileManager.default.fileExists(atPath: RunStore(root: storeRoot).directory(for: lost.id) + "/egress"))
        try tmux.send("q")
        #expect(tmux.waitFor("EXIT:0", timeout: 20, history: true) != nil)
    }

    func dashboard(_ env: [String: String], extra: String) throws -> TmuxSession {
        var env = env
        env["TERM"] = "xterm-256color"
        env["LANG"] = "C.UTF-8"
        env["LC_ALL"] = "C.UTF-8"
        let pass = EngineEnvironment.passThrough.map { "--pass-env \($0)" }.joined(separator: " ")
        let script = """
            "\(TestPaths.ccdeckBinary)" dashboard --image \(EngineEnvironment.testImage) \(pass) \(extra)
            echo "EXIT:$?"
            exec sleep 600
            """
        return try TmuxSession(width: 160, height: 40, environment: env, script: script)
    }
}
