import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Mode C through a stand-in `fly` (Fly.io cannot be reached from here) that follows flyctl's
/// flags and outputs: machines are containers on the real test dockerd, secrets are given to
/// them at start. The real Claude Code CLI runs inside; the scripted model is on loopback.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct FlyEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-fly")

    func ccdeck(_ args: [String], _ env: [String: String], input: Data? = nil) throws -> CCDeckInvocation {
        try CCDeckInvocation.run(args, environment: env, input: input)
    }

    /// Pushed token, built image: ready to run.
    func ready(_ fly: FlyStandIn, model: ModelServer?, token: String) throws -> [String: String] {
        let env = fly.environment(EngineEnvironment.runEnvironment(home: home.path, model: model, token: token))
        let dockerfile = home.write("fly-ctx/Dockerfile", "FROM \(EngineEnvironment.testImage)\n")
        let build = try ccdeck(["fly", "build", "--file", dockerfile, "--tag", "t1"], env)
        #expect(build.status == .exited(0) && build.stdout.contains("pushed registry.fly.io/\(fly.app):t1"), "\(build.output)")
        let push = try ccdeck(["fly", "push-token"], env)
        #expect(push.status == .exited(0) && push.stdout.contains("fly app \(fly.app)"), "\(push.output)")
        return env
    }

    func workspace(_ name: String) throws -> String {
        let ws = home.path + "/" + name
        try FileManager.default.createDirectory(atPath: ws, withIntermediateDirectories: true)
        try "kept\n".write(toFile: ws + "/notes.txt", atomically: true, encoding: .utf8)
        return ws
    }

    @Test func aRunOnAMachineBringsTheChangesBack() throws {
        let fly = try FlyStandIn()
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let canary = EngineEnvironment.canaryToken()
        let env = try ready(fly, model: model, token: canary)
        let ws = try workspace("project")
        let watcher = ArgvWatcher(needle: canary)
        let r = try ccdeck(["run", "--mode", "fly", "--workspace", ws] + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] }, env)
        let (hits, scans) = watcher.stop()
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(hits.isEmpty && scans > 0, "token in argv: \(hits)")
        #expect(!fly.argvLog.contains(canary), "token in an argv fly got")
        #expect(try String(contentsOfFile: ws + "/hello.txt", encoding: .utf8) == "hello from ccdeck\n")
        #expect(try String(contentsOfFile: ws + "/notes.txt", encoding: .utf8) == "kept\n")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.mode == .fly && record.state == .succeeded && record.isolation == .remoteMachine && record.exitStatus == 0)
        #expect(record.credentials?.delivery == .appSecret && record.workspaceTransport == .uploadAndDownload)
        #expect(model.requests.allSatisfy {
            ($0["authorization"] as? [String: Any])?["length"] as? Int == "Bearer ".count + canary.count
        })
        #expect(try fly.machines().isEmpty, "the machine was not destroyed")
        for file in FileManager.default.enumerator(atPath: RunStore(environment: env).root)?.allObjects as? [String] ?? [] {
            let data = FileManager.default.contents(atPath: RunStore(environment: env).root + "/" + file) ?? Data()
            #expect(!String(decoding: data, as: UTF8.self).contains(canary), "token in \(file)")
        }
        let show = try ccdeck(["token", "show"], env)
        #expect(show.stdout.contains("fly app \(fly.app): pushed") && show.stdout.contains("the same token as here"), "\(show.stdout)")
    }

    @Test func aFailingTaskEndsWithItsReason() throws {
        let fly = try FlyStandIn()
        let model = try ModelServer(scenario: "http401", logDirectory: home.path)
        let env = try ready(fly, model: model, token: EngineEnvironment.canaryToken())
        let r = try ccdeck(["run", "--mode", "fly"] + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] }, env)
        #expect(r.status == .exited(1), "\(r.output)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .failed && (record.reason ?? "").contains("401"), "\(record.reason ?? "")")
        #expect(try fly.machines().isEmpty)
    }

    /// Fly holds another token than the one here: nothing starts, and the message says what to do.
    @Test func aStaleSecretIsRefusedBeforeAnyMachine() throws {
        let fly = try FlyStandIn()
        var env = try ready(fly, model: nil, token: EngineEnvironment.canaryToken())
        env["CLAUDE_CODE_OAUTH_TOKEN"] = EngineEnvironment.canaryToken()  // logged in again since
        let r = try ccdeck(["run", "--mode", "fly"], env)
        #expect(r.status == .exited(2), "\(r.output)")
        #expect(r.stderr.contains("holds another token") && r.stderr.contains("ccdeck fly push-token"), "\(r.stderr)")
        #expect(try fly.machines().isEmpty)
        #expect(!fly.argvLog.contains("\"machine\", \"run\""))
        let show = try ccdeck(["token", "show"], env)
        #expect(show.stdout.contains("ANOTHER token than here"), "\(show.stdout)")
    }

    @Test func aCapacityErrorClearsOnRetry() throws {
        let fly = try FlyStandIn()
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        var env = try ready(fly, model: model, token: EngineEnvironment.canaryToken())
        env["STANDIN_FLY_CAPACITY_FAILS"] = "2"
        let r = try ccdeck(["run", "--mode", "fly"] + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] }, env)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(fly.argvLog.components(separatedBy: "\"machine\", \"run\"").count - 1 == 3)
        env["STANDIN_FLY_CAPACITY_FAILS"] = "99"
        let never = try ccdeck(["run", "--mode", "fly"], env)
        #expect(never.status == .exited(2) && never.stderr.contains("no capacity after 4 tries"), "\(never.output)")
    }

    /// A machine left by a killed ccdeck is found as a leftover and removed; the dashboard's
    /// re-push key pushes the token to the app.
    @Test func aKilledRunsMachineIsALeftoverAndTheDashboardRepushes() throws {
        let fly = try FlyStandIn()
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 30)
        var env = try ready(fly, model: model, token: EngineEnvironment.canaryToken())
        let killed = try CCDeckInterrupted.run(["run", "--mode", "fly"] + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] },
                                               environment: env, when: "session started") { kill($0.pid, SIGKILL) }
        #expect(killed.acted, "\(killed.output)")
        let ls = try ccdeck(["sandboxes", "ls"], env)
        #expect(ls.stdout.contains("fly") && ls.stdout.contains("driver gone"), "\(ls.output)")
        let prune = try ccdeck(["sandboxes", "prune", "--yes"], env)
        #expect(prune.status == .exited(0) && prune.stdout.contains("removed 1 leftover(s)"), "\(prune.output)")
        #expect(try fly.machines().isEmpty)

        env["TERM"] = "xterm-256color"
        env["CLAUDE_CODE_OAUTH_TOKEN"] = EngineEnvironment.canaryToken()
        let tmux = try TmuxSession(width: 140, height: 40, environment: env, script: """
            "\(TestPaths.ccdeckBinary)" dashboard
            echo "EXIT:$?"
            exec sleep 600
            """)
        // The Token pane says Fly holds another token than this one, until it is pushed again.
        #expect(tmux.waitFor("fly ready, stale secret shown") {
            $0.contains("✓ fly") && $0.contains("ANOTHER token: press t")
        } != nil)
        try tmux.send("t")
        #expect(tmux.waitFor("pushed to: fly app \(fly.app)") != nil)
        #expect(tmux.waitFor("same, pushed") != nil)
        try tmux.send("q")
        #expect(tmux.waitFor("EXIT:0") != nil)
        let show = try ccdeck(["token", "show"], env)
        #expect(show.stdout.contains("the same token as here"), "\(show.stdout)")
    }
}
