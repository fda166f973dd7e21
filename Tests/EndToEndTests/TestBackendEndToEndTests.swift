import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// The run contract proven from outside: `proc`, a backend that exists only in the tests
/// (Tests/TestBackend), registered in one line (Tests/TestHost), drives the real command line
/// and the real dashboard, with the real Claude Code CLI against the scripted model. Nothing
/// under Sources/ knows its name.
@Suite(.serialized, .enabled(if: TestPaths.claudeBinary != nil, "needs the real Claude Code CLI (scripts/testenv install)"))
struct TestBackendEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-proc")

    func environment(model: ModelServer?, token: String?) -> [String: String] {
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: token)
        env["CCDECK_PROC_ROOT"] = home.path + "/proc"
        env["CCDECK_PROC_AGENT"] = TestPaths.claudeBinary
        try? FileManager.default.createDirectory(atPath: home.path + "/proc", withIntermediateDirectories: true)
        return env
    }

    func procArguments(_ extra: [String]) -> [String] {
        ["run", "--mode", "proc"] + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] } + extra
    }

    func testhost(_ args: [String], _ env: [String: String]) throws -> CCDeckInvocation {
        let out = try ProcessRunner.run(Command(TestPaths.testHostBinary, args, environment: env), timeout: 300)
        return CCDeckInvocation(status: out.status, stdout: out.stdout, stderr: out.stderr)
    }

    @Test func theCommandLineRunsListsAndShowsARunOfABackendItDoesNotKnow() throws {
        let workspace = home.path + "/project"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, workspace: workspace)
        let canary = EngineEnvironment.canaryToken()
        let env = environment(model: model, token: canary)
        // A Markdown task file that begins with a dash: it must arrive as the prompt, whole.
        let prompt = "- write hello.txt\n- then run bash\n\n---\nnot: front matter\n"
        let promptFile = home.write("task.md", prompt)
        let watcher = ArgvWatcher(needle: canary)
        let r = try testhost(procArguments(["--workspace", workspace, "--prompt-file", promptFile]), env)
        let (hits, scans) = watcher.stop()
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(hits.isEmpty && scans > 0, "token in argv: \(hits)")
        #expect(!r.output.contains(canary))
        #expect(model.received(prompt: prompt), "the agent did not receive the prompt whole")
        #expect(try String(contentsOfFile: workspace + "/hello.txt", encoding: .utf8) == "hello from ccdeck\n")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.mode.rawValue == "proc" && record.state == .succeeded && record.isolation == Isolation.none)
        #expect(record.credentials?.delivery == .environmentByName)
        // No process of the run is left, and its folder is gone (not kept).
        #expect(try FileManager.default.contentsOfDirectory(atPath: home.path + "/proc").filter { $0.hasPrefix("ccdeck-") }.isEmpty)

        let ls = try testhost(["runs", "ls"], env)
        #expect(ls.stdout.contains(record.id) && ls.stdout.contains("proc") && ls.stdout.contains("succeeded"), "\(ls.stdout)")
        let show = try testhost(["runs", "show", record.id], env)
        #expect(show.stdout.contains("sandbox held:") && show.stdout.contains("(environment variable, passed by name)"))
        #expect(show.stdout.contains("→ Write \(workspace)/hello.txt"), "\(show.stdout)")

        // ccdeck itself has no `proc` backend: the run is listed as an unknown mode and still shows.
        let plainLs = try CCDeckInvocation.run(["runs", "ls"], environment: env)
        #expect(plainLs.stdout.contains("proc (unknown mode)"), "\(plainLs.stdout)")
        let plainShow = try CCDeckInvocation.run(["runs", "show", record.id], environment: env)
        #expect(plainShow.status == .exited(0) && plainShow.stdout.contains("All done."), "\(plainShow.output)")
        let plainRun = try CCDeckInvocation.run(procArguments([]), environment: env)
        #expect(plainRun.status == .exited(2) && plainRun.stderr.contains("mode proc is not known to this ccdeck"))
        try expectNoToken(canary, under: RunStore(environment: env).root)
    }

    @Test func aFailingRunEndsWithItsReasonAndLeavesNothing() throws {
        let model = try ModelServer(scenario: "http401", logDirectory: home.path)
        let env = environment(model: model, token: EngineEnvironment.canaryToken())
        let r = try testhost(procArguments([]), env)
        #expect(r.status == .exited(1), "\(r.output)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .failed && (record.reason ?? "").contains("401"), "\(record.reason ?? "")")
        #expect(try FileManager.default.contentsOfDirectory(atPath: home.path + "/proc").filter { $0.hasPrefix("ccdeck-") }.isEmpty)
    }

    /// Launch, stream, stop, remove, and a leftover in Orphans, all on a backend the dashboard never heard of.
    @Test func theDashboardLaunchesStreamsStopsAndRemovesOnIt() throws {
        let workspace = home.path + "/dash-project"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 3, workspace: workspace)
        var env = environment(model: model, token: EngineEnvironment.canaryToken())
        // A leftover first: a kept run's process folder, which Orphans must list and remove.
        let kept = try testhost(procArguments(["--keep", "--workspace", workspace]), env)
        #expect(kept.status == .exited(0), "\(kept.output)")
        env["TERM"] = "xterm-256color"
        let pass = EngineEnvironment.passThrough.map { "--pass-env \($0)" }.joined(separator: " ")
        let tmux = try TmuxSession(width: 120, height: 40, environment: env, script: """
            "\(TestPaths.testHostBinary)" dashboard \(pass)
            echo "EXIT:$?"
            exec sleep 600
            """)
        #expect(tmux.waitFor("proc ready and its leftover listed") {
            $0.contains("✓ proc") && $0.contains("Orphans (1)") && $0.contains("q quit")
        } != nil)

        // The leftover goes from the Orphans pane.
        try tmux.send("BTab")
        try tmux.send("d")
        #expect(tmux.waitFor("Remove this orphan?") != nil)
        try tmux.send("y")
        #expect(tmux.waitFor("removed proc process") != nil)
        #expect(tmux.waitFor("Orphans (0)") != nil)
        try tmux.send("Tab")  // back to runs

        // Launch on proc: pick it in the form, give the workspace, enter.
        try tmux.send("n")
        #expect(tmux.waitFor("Launch a run") != nil)
        try tmux.send("BTab")  // prompt → mode
        for _ in 0..<6 {
            if tmux.capture().contains("< proc >") { break }
            try tmux.send("Right")
            usleep(150_000)
        }
        #expect(tmux.waitFor("< proc >") != nil)
        try tmux.send("Tab", "Tab")  // mode → prompt → workspace
        try tmux.send(workspace, literal: true)
        try tmux.send("Enter")
        #expect(tmux.waitFor("streaming on proc") { $0.contains("session started") && $0.contains("running") } != nil)
        try tmux.send("s")
        #expect(tmux.waitFor("stopped") { $0.contains("stopped") && !$0.contains("running ") } != nil)
        let stopped = try #require(RunStore(environment: env).list().first)
        #expect(stopped.state == .stopped && stopped.mode.rawValue == "proc")

        try tmux.send("d")
        #expect(tmux.waitFor("Remove this run?") != nil)
        try tmux.send("y")
        #expect(tmux.waitFor("removed run \(stopped.id)") != nil)
        try tmux.send("q")
        #expect(tmux.waitFor("EXIT:0") != nil)
        #expect((try? RunStore(environment: env).load(stopped.id)) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: home.path + "/proc").filter { $0.hasPrefix("ccdeck-") }.isEmpty)
    }

    func expectNoToken(_ canary: String, under root: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for file in FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? [] {
            guard let data = FileManager.default.contents(atPath: root + "/" + file) else { continue }
            #expect(!String(decoding: data, as: UTF8.self).contains(canary), "token in \(file)", sourceLocation: sourceLocation)
        }
    }
}
