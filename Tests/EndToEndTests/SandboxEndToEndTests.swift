import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Mode B through stand-ins for both CLIs (Docker Desktop cannot run here): `docker sandbox` as a
/// Docker CLI plugin and `sbx`, following the documented contract, whose sandboxes are
/// containers on the real test dockerd, and a stand-in credential proxy that holds the token.
/// The real Claude Code CLI runs inside; ccdeck gives it no token.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct SandboxEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-sandbox")

    func workspace(_ name: String) throws -> String {
        let path = home.path + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chown(path, 1000, 1000)
        return path
    }

    func arguments(_ cli: String, _ extra: [String] = []) -> [String] {
        ["run", "--mode", "sandbox", "--sandbox-cli", cli] + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] } + extra
    }

    @Test(arguments: ["docker", "sbx"])
    func aRunWritesTheWorkspaceWithNoTokenInside(cli: String) throws {
        let ws = try workspace("project-\(cli)")
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, workspace: ws)
        let canary = EngineEnvironment.canaryToken()
        let standIn = try SandboxStandIn(clis: [cli], model: model, token: canary)
        // ccdeck's own environment holds a token too: it must not be given to the sandbox.
        let env = standIn.environment(EngineEnvironment.runEnvironment(home: home.path, model: nil, token: canary))
        let watcher = ArgvWatcher(needle: canary)
        let r = try CCDeckInvocation.run(arguments(cli, ["--workspace", ws, "--keep"]), environment: env)
        let (hits, scans) = watcher.stop()
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(hits.isEmpty && scans > 0, "token in argv: \(hits)")
        #expect(try String(contentsOfFile: ws + "/hello.txt", encoding: .utf8) == "hello from ccdeck\n")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.mode == .sandbox && record.isolation == .microVM && record.sandboxID == cli)
        #expect(record.credentials == CredentialRecord(delivery: .hostProxy, exposure: .nothing) && record.tokenSource == nil)
        // The proxy put the token on every request; the sandbox itself held only the placeholder.
        #expect(model.requests.allSatisfy {
            ($0["authorization"] as? [String: Any])?["length"] as? Int == "Bearer ".count + canary.count
        })
        let inspect = try ProcessRunner.run(Command("docker", ["inspect", "standin-" + record.sandbox], environment: EngineEnvironment.host),
                                            timeout: 30)
        #expect(inspect.stdout.contains("CLAUDE_CODE_OAUTH_TOKEN=proxy-managed") && !inspect.stdout.contains(canary))
        let rm = try CCDeckInvocation.run(["sandboxes", "rm", record.sandbox], environment: env)
        #expect(rm.status == .exited(0) && rm.stdout.contains("removed sandbox sandbox \(record.sandbox)"), "\(rm.output)")
        #expect(try !SandboxStandIn.sandboxes().contains(record.sandbox))
    }

    @Test(arguments: ["docker", "sbx"])
    func aFailingRunSaysWhyAndLeavesNothing(cli: String) throws {
        let model = try ModelServer(scenario: "http401", logDirectory: home.path)
        let standIn = try SandboxStandIn(clis: [cli], model: model, token: EngineEnvironment.canaryToken())
        let env = standIn.environment(EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil))
        let r = try CCDeckInvocation.run(arguments(cli, ["--workspace", try workspace("fail-\(cli)")]), environment: env)
        #expect(r.status == .exited(1), "\(r.output)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .failed && (record.reason ?? "").contains("401"), "\(record.reason ?? "")")
        #expect(try !SandboxStandIn.sandboxes().contains(record.sandbox))
    }

    /// The sandbox removed behind ccdeck's back mid-run: the run ends with a reason and a record.
    @Test func aSandboxRemovedMidRunEndsTheRun() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 3)
        let standIn = try SandboxStandIn(clis: ["sbx"], model: model, token: EngineEnvironment.canaryToken())
        let env = standIn.environment(EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil))
        let r = try CCDeckInterrupted.run(arguments("sbx", ["--workspace", try workspace("gone")]), environment: env,
                                          when: "session started") { _ in
            for name in (try? SandboxStandIn.sandboxes()) ?? [] where name.hasPrefix("ccdeck-") {
                _ = try? ProcessRunner.run(Command("docker", ["rm", "-f", "standin-" + name], environment: EngineEnvironment.host),
                                           timeout: 30)
            }
        }
        #expect(r.acted && r.status == .exited(1), "\(r.stdout)\(r.stderr)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .failed && record.reason?.isEmpty == false, "\(record.reason ?? "")")
    }

    /// An exec that never starts the agent: past the deadline the run fails, saying so, and the
    /// sandbox goes.
    @Test func anExecThatHangsEndsTheRunPastItsDeadline() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let standIn = try SandboxStandIn(clis: ["sbx"], model: model, token: EngineEnvironment.canaryToken())
        var env = standIn.environment(EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil))
        env["STANDIN_SANDBOX_EXEC_HANGS"] = "1"
        env["CCDECK_FIRST_EVENT_TIMEOUT"] = "3"
        let r = try CCDeckInvocation.run(arguments("sbx", ["--workspace", try workspace("hang")]), environment: env)
        #expect(r.status == .exited(1), "\(r.output)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .failed && record.reason?.contains("printed nothing within 3s") == true, "\(record.reason ?? "")")
        #expect(try !SandboxStandIn.sandboxes().contains(record.sandbox))
    }

    /// Leftovers of runs whose ccdeck was killed are found by `sandboxes ls` and removed by
    /// `prune`, while a foreign sandbox, a foreign container and an unlabelled one survive.
    @Test func pruneRemovesLeftoversAndNothingThatIsNotCcdecks() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 30)
        let standIn = try SandboxStandIn(clis: ["docker", "sbx"], model: model, token: EngineEnvironment.canaryToken())
        let env = standIn.environment(EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil))
        let ws = try workspace("prune")
        for cli in ["docker", "sbx"] {
            let r = try CCDeckInterrupted.run(arguments(cli, ["--workspace", ws]), environment: env,
                                              when: "session started") { kill($0.pid, SIGKILL) }
            #expect(r.acted)
        }
        // Beside them: a sandbox that is not ccdeck's, a container with someone else's label, one with none.
        let foreignSandbox = "someone-else-\(UUID().uuidString.prefix(6).lowercased())"
        _ = try ProcessRunner.run(Command("sbx", ["create", "--name", foreignSandbox, "claude", ws], environment: env), timeout: 60)
        let foreign = try ProcessRunner.run(Command("docker", ["run", "-d", "--label", "ccdeck.store=another-store", "--label",
                                                               "ccdeck.run=x", "--entrypoint", "sleep", EngineEnvironment.testImage, "600"],
                                                    environment: EngineEnvironment.host), timeout: 60).stdout
        let plain = try ProcessRunner.run(Command("docker", ["run", "-d", "--entrypoint", "sleep", EngineEnvironment.testImage, "600"],
                                                  environment: EngineEnvironment.host), timeout: 60).stdout
        let others = [foreign, plain].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        defer {
            _ = try? ProcessRunner.run(Command("docker", ["rm", "-f"] + others + ["standin-" + foreignSandbox],
                                               environment: EngineEnvironment.host), timeout: 60)
        }

        let ls = try CCDeckInvocation.run(["sandboxes", "ls", "--json"], environment: env)
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(ls.stdout.utf8)) as? [[String: Any]])
        #expect(listed.count == 2 && listed.allSatisfy { $0["why"] as? String == "driver gone" }, "\(ls.stdout)")
        #expect(!ls.stdout.contains(foreignSandbox))
        let all = try CCDeckInvocation.run(["sandboxes", "ls", "--all"], environment: env)
        let foreignRow = all.stdout.split(separator: "\n").first { $0.contains(foreignSandbox) }
        #expect(foreignRow?.contains("not ccdeck's") == true, "\(all.stdout)")
        #expect(all.stdout.split(separator: "\n").contains { $0.contains(String(others[1].prefix(12))) || $0.contains("not ccdeck's") })
        let refused = try CCDeckInvocation.run(["sandboxes", "prune"], environment: env)
        #expect(refused.status == .exited(2) && refused.stderr.contains("--yes"))
        let prune = try CCDeckInvocation.run(["sandboxes", "prune", "--yes"], environment: env)
        #expect(prune.status == .exited(0) && prune.stdout.contains("removed 2 leftover(s)"), "\(prune.output)")
        let after = try CCDeckInvocation.run(["sandboxes", "ls", "--json"], environment: env)
        #expect(after.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]" || after.stdout.contains("[]"), "\(after.stdout)")
        #expect(try SandboxStandIn.sandboxes().contains(foreignSandbox))
        for id in others {
            let alive = try ProcessRunner.run(Command("docker", ["inspect", id], environment: EngineEnvironment.host), timeout: 30)
            #expect(alive.status.succeeded, "\(id) was removed")
        }
    }

    /// The dashboard launches a sandbox run from its form, streams it, attaches to it, stops it
    /// and removes it, like any other.
    @Test func theDashboardDrivesASandboxRun() throws {
        let ws = try workspace("dash")
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 3, workspace: ws)
        let standIn = try SandboxStandIn(clis: ["sbx"], model: model, token: EngineEnvironment.canaryToken())
        var env = standIn.environment(EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil))
        env["TERM"] = "xterm-256color"
        let pass = EngineEnvironment.passThrough.map { "--pass-env \($0)" }.joined(separator: " ")
        let tmux = try TmuxSession(width: 140, height: 40, environment: env, script: """
            "\(TestPaths.ccdeckBinary)" dashboard \(pass)
            echo "EXIT:$?"
            exec sleep 600
            """)
        #expect(tmux.waitFor("sandbox ready") { $0.contains("✓ sandbox") && $0.contains("q quit") } != nil)
        try tmux.send("n")
        #expect(tmux.waitFor("Launch a run") != nil)
        try tmux.send("BTab")
        for _ in 0..<8 {
            if tmux.capture().contains("< sandbox >") { break }
            try tmux.send("Right")
            usleep(150_000)
        }
        #expect(tmux.waitFor("< sandbox >") != nil)
        try tmux.send("Tab", "Tab")
        try tmux.send(ws, literal: true)
        try tmux.send("Enter")
        #expect(tmux.waitFor("streaming", timeout: 60) { $0.contains("session started") && $0.contains("running") } != nil)
        let attach = try tmux.attachRoundTrip(run: "echo inside-$((6*7))", expect: "inside-42")
        #expect(attach == nil, "\(attach ?? "")")
        // This dashboard's sandboxes, named while their run is still on record (removing it forgets it).
        let mine = Set(RunStore(environment: env).list().map(\.sandbox))
        #expect(!mine.isEmpty)
        try tmux.send("s")
        #expect(tmux.waitFor("stopped", timeout: 60) { $0.contains(" stopped ") } != nil)
        try tmux.send("d")
        #expect(tmux.waitFor("Remove this run?") != nil)
        try tmux.send("y")
        #expect(tmux.waitFor("removed run") != nil)
        try tmux.send("q")
        #expect(tmux.waitFor("EXIT:0") != nil)
        // Only this dashboard's sandboxes count: other suites' runs share the stand-in's engine.
        #expect(try SandboxStandIn.sandboxes().filter(mine.contains).isEmpty)
    }
}
