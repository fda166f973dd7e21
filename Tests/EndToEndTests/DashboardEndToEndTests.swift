import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// The dashboard as a person uses it: in tmux, with keys, against real Docker and Podman,
/// the real Claude Code CLI and the scripted model.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct DashboardEndToEndTests: DashboardHarness {
    let home = TemporaryDirectory("ccdeck-e2e-dash")

    @Test(arguments: ["docker", "podman"])
    func launchWatchScrollAttachStopRemoveQuit(engine: String) throws {
        // Each model turn takes 3 s: room to attach to, and to stop, a live run on a loaded machine.
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 3)
        let tmux = try start(model: model)
        #expect(tmux.waitFor("ready to launch", timeout: 20) { $0.contains("q quit") && $0.contains("✓ \(engine)") } != nil)

        // Launch with keys: n, pick the engine, enter.
        try tmux.send("n")
        #expect(tmux.waitFor("Launch a run") != nil)
        if engine == "podman" {
            try tmux.send("BTab")   // prompt → mode
            // Right until the mode says podman: under load a probe may briefly count a backend as
            // not ready, and the modes on offer (ready ones only) are then fewer.
            usleep(300_000)
            for _ in 0..<6 where !tmux.capture().contains("< podman >") {
                try tmux.send("Right")
                usleep(300_000)
            }
            #expect(tmux.capture().contains("< podman >"), "\(tmux.capture())")
        }
        try tmux.send("Enter")
        // Its events stream in, rendered.
        #expect(tmux.waitFor("session started") != nil)
        #expect(tmux.waitFor("→ Write /workspace/hello.txt") != nil)
        #expect(tmux.capture().contains(" \(engine) "))

        // Attach: a shell in the container's workspace, then back to an intact dashboard.
        let attach = try tmux.attachRoundTrip(run: "echo inside-$((6*7)) $(pwd)", expect: "inside-42 /workspace")
        #expect(attach == nil, "\(attach ?? "")")
        #expect(tmux.waitFor("dashboard redrawn") { $0.contains("q quit") && $0.contains("Backends") && !$0.contains("inside-42") } != nil)

        // The run ends with the agent's verdict.
        #expect(tmux.waitFor("succeeded", timeout: 60) { $0.contains("succeeded") && $0.contains("✓ success: All done.") } != nil)

        // Scroll over the stored output: top, then follow again.
        try tmux.send("Tab")
        try tmux.send("g")
        #expect(tmux.waitFor("event 1/") != nil)
        try tmux.send("G")
        #expect(tmux.waitFor("(end)") != nil)
        try tmux.send("BTab")

        // A second run, stopped while live, then removed.
        try tmux.send("n")
        #expect(tmux.waitFor("Launch a run") != nil)
        if engine == "podman" { try tmux.send("BTab"); try tmux.send("Right") }
        try tmux.send("Enter")
        #expect(tmux.waitFor("running") { $0.contains("running") && $0.contains("session started") } != nil)
        try tmux.send("s")
        #expect(tmux.waitFor("stopped", timeout: 60) { $0.contains(" stopped ") } != nil)
        try tmux.send("d")
        #expect(tmux.waitFor("Remove this run?") != nil)
        try tmux.send("y")
        #expect(tmux.waitFor("removed run") != nil)
        #expect(tmux.waitFor("Runs (1)") != nil)

        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
    }

    /// A dashboard killed mid-run leaves its run to the next dashboard, which takes it over:
    /// the output after the kill is captured, the run is judged and its container removed.
    @Test func aRunWhoseDashboardWasKilledIsAdoptedByTheNext() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 4)
        let first = try start(model: model)
        #expect(first.waitFor("docker ready") { $0.contains("q quit") && $0.contains("✓ docker") } != nil)
        try first.send("n")
        try first.send("Enter")
        #expect(first.waitFor("session started") != nil)
        kill(try dashboardPID(), SIGKILL)
        #expect(first.waitFor("EXIT:137") != nil)
        let storeRoot = home.path + "/state/ccdeck"
        // Its event watchers died with it.
        let store = RunStore(root: storeRoot).storeID
        var watchers = "?"
        for _ in 0..<50 {
            watchers = (try ProcessRunner.run(Command("pgrep", ["-f", "events --filter label=ccdeck.store=\(store)"],
                                                      environment: EngineEnvironment.host), timeout: 10)).stdout
            if watchers.isEmpty { break }
            usleep(200_000)
        }
        #expect(watchers.isEmpty, "event watchers outlived the killed dashboard: \(watchers)")
        let lost = try #require(RunStore(root: storeRoot).list().first)
        #expect(RunStore(root: storeRoot).driverLost(lost))

        // A new dashboard finds the run again and drives it to the end.
        let second = try start(model: model)
        #expect(second.waitFor("adopted and finished") { $0.contains("succeeded") && $0.contains("adopted") } != nil)
        let record = try RunStore(root: storeRoot).load(lost.id)
        #expect(record.state == .succeeded && record.adoptedAt != nil && record.turns == 3, "\(record)")
        let output = try String(contentsOfFile: RunStore(root: storeRoot).outputPath(for: lost.id), encoding: .utf8)
        #expect(output.components(separatedBy: "\"type\":\"system\"").count == 2, "the first line is stored once")
        #expect(output.contains("\"type\":\"result\""))
        #expect(try String(contentsOfFile: record.workspace + "/hello.txt", encoding: .utf8) == "hello from ccdeck\n")
        try second.send("q")
        expectTerminalRestored(second, exit: "0")
        let left = try ProcessRunner.run(Command("docker", ["ps", "-aq", "--filter", "label=ccdeck.store=" + store],
                                                 environment: EngineEnvironment.host), timeout: 30)
        #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    /// `ccdeck run` killed outright (SIGKILL) mid-run: `runs ls` says lost-driver at once (the
    /// killed process is still an unreaped zombie, so its pid alone would say alive), and the
    /// dashboard adopts the run: the rest of its output, its verdict and its cleanup.
    @Test(arguments: ["docker", "podman"])
    func aKilledRunIsLostAtOnceThenAdoptedByTheDashboard(engine: String) throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 3)
        let canary = EngineEnvironment.canaryToken()
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: canary)
        // Killed outright when the session starts, and listed while it is a zombie not yet reaped.
        var ls: CCDeckInvocation?
        var zombie = false
        let killed = try CCDeckInterrupted.run(EngineEnvironment.runArguments(engine: engine), environment: env,
                                               when: "session started") { child in
            kill(child.pid, SIGKILL)
            // A zombie whose threads have all gone: the leader turns zombie before its other
            // threads have run their exit, and the file table (the driver's lock) goes with the
            // last of them; on a loaded machine that can be a while after the leader.
            for _ in 0..<100 where !zombie {
                let stat = (try? String(contentsOfFile: "/proc/\(child.pid)/stat", encoding: .utf8)) ?? ""
                let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(child.pid)/task"))?.count ?? 0
                zombie = stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") == true && threads == 1
                if !zombie { usleep(50_000) }
            }
            ls = try? CCDeckInvocation.run(["runs", "ls"], environment: env)
        }
        #expect(killed.acted && zombie, "\(killed.stdout)")
        let storeRoot = home.path + "/state/ccdeck"
        #expect(ls?.stdout.contains("lost-driver") == true, "\(ls?.stdout ?? "-")")
        let lost = try #require(RunStore(root: storeRoot).list().first)

        let tmux = try start(model: model)
        let record = try expectAdoptedWhole(tmux, run: lost.id, storeRoot: storeRoot, canary: canary)
        #expect(try String(contentsOfFile: record.workspace + "/hello.txt", encoding: .utf8) == "hello from ccdeck\n")
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
        let left = try ProcessRunner.run(Command(engine, ["ps", "-aq", "--filter", "label=ccdeck.run=" + lost.id],
                                                 environment: EngineEnvironment.host), timeout: 30)
        #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    /// podman removes its own container (`--rm`) as the agent ends: a run whose ccdeck was
    /// killed, and whose container then finished and went before any ccdeck came back, is read
    /// whole from the log conmon kept in the run's folder. Nothing of it is lost.
    @Test func aPodmanRunThatEndedWithNoCcdeckIsReadFromItsKeptLog() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 2)
        let canary = EngineEnvironment.canaryToken()
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: canary)
        let killed = try CCDeckInterrupted.run(EngineEnvironment.runArguments(engine: "podman"), environment: env,
                                               when: "session started") { kill($0.pid, SIGKILL) }
        #expect(killed.acted)
        let storeRoot = home.path + "/state/ccdeck"
        let lost = try #require(RunStore(root: storeRoot).list().first)
        // The engine finishes the run and removes its container with no ccdeck there.
        var left = "?"
        for _ in 0..<300 where !left.isEmpty {
            left = (try ProcessRunner.run(Command("podman", ["ps", "-aq", "--filter", "label=ccdeck.run=" + lost.id],
                                                  environment: EngineEnvironment.host), timeout: 30)).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if !left.isEmpty { usleep(200_000) }
        }
        #expect(left.isEmpty, "the container was not removed by its engine")
        let kept = RunStore(root: storeRoot).directory(for: lost.id) + "/" + RunSpec.keptOutputName
        #expect(FileManager.default.fileExists(atPath: kept))

        let tmux = try start(model: model)
        _ = try expectAdoptedWhole(tmux, run: lost.id, storeRoot: storeRoot, canary: canary)
        #expect(!FileManager.default.fileExists(atPath: kept), "the raw log outlived the adoption")
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
    }

    /// `s` pressed the moment a run is launched (while its container is still being created):
    /// the stop is not lost, the run ends stopped, nothing is left.
    @Test func aStopPressedRightAfterLaunchIsNotLost() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 30)
        let tmux = try start(model: model)
        #expect(tmux.waitFor("docker ready") { $0.contains("q quit") && $0.contains("✓ docker") } != nil)
        try tmux.send("n")
        #expect(tmux.waitFor("Launch a run") != nil)
        try tmux.send("Enter")
        try tmux.send("s")
        let storeRoot = home.path + "/state/ccdeck"
        #expect(tmux.waitFor("stopped", timeout: 40) { $0.contains("stopped") && !$0.contains("running ") } != nil)
        let record = try #require(RunStore(root: storeRoot).list().first)
        #expect(record.state == .stopped, "\(record.reason ?? "")")
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
        let left = try ProcessRunner.run(Command("docker", ["ps", "-aq", "--filter", "label=ccdeck.run=" + record.id],
                                                 environment: EngineEnvironment.host), timeout: 30)
        #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    /// A dashboard already open when another ccdeck's run loses its driver hears of it at once
    /// (it waits on the run's lock) and adopts the run.
    @Test func anOpenDashboardAdoptsARunTheMomentItsDriverDies() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 3)
        let tmux = try start(model: model)
        #expect(tmux.waitFor("docker ready") { $0.contains("q quit") && $0.contains("✓ docker") } != nil)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let killed = try CCDeckInterrupted.run(EngineEnvironment.runArguments(engine: "docker"), environment: env,
                                               when: "session started") { kill($0.pid, SIGKILL) }
        #expect(killed.acted)
        #expect(tmux.waitFor("adopted and finished", timeout: 60) { $0.contains("adopted") && $0.contains("succeeded") } != nil)
        let record = try #require(RunStore(root: home.path + "/state/ccdeck").list().first)
        #expect(record.state == .succeeded && record.adoptedAt != nil)
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
    }

    /// A container kept after its run is a leftover: listed in Orphans, removed from there.
    /// The launch form's last mode choice: the same prompt on every ready mode at once, the runs
    /// marked as one comparison, and its table over the panes when the last one finishes.
    /// A real run whose tool goes quiet past `--stall-after`: Runs says stalled, the output says
    /// what is in flight; the stall ends when the agent speaks again and the run succeeds.
    @Test func aQuietRunShowsAsStalledWithItsToolInFlight() throws {
        let model = try ModelServer(scenario: "slow_tool", logDirectory: home.path)
        let tmux = try start(model: model, extra: "--stall-after 2s")
        #expect(tmux.waitFor("docker ready") { $0.contains("q quit") && $0.contains("✓ docker") } != nil)
        try tmux.send("n")
        try tmux.send("Enter")
        let stalled = tmux.waitFor("the stall", timeout: 30) {
            $0.contains(" stalled ") && $0.contains("stalled: nothing from the agent for") && $0.contains("Bash in flight: sleep 12")
        }
        #expect(stalled != nil)
        let done = tmux.waitFor("succeeded", timeout: 60) { $0.contains("succeeded") && $0.contains("Slept.") }
        #expect(done != nil)
        #expect(!(done ?? "").contains("stalled:"))
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
    }

    /// A run launched here ends while another is selected: the bell rings, the Runs title and the
    /// window's title count it until it is looked at, and on quit the window's title is given back.
    @Test func aRunThatEndsElsewhereCallsForAttention() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 1)
        let tmux = try start(model: model)
        #expect(tmux.waitFor("docker ready") { $0.contains("q quit") && $0.contains("✓ docker") } != nil)
        #expect(tmux.display("#{pane_title}") == "ccdeck")
        try tmux.send("n")
        try tmux.send("Enter")
        #expect(tmux.waitFor("Runs (1)") != nil)
        try tmux.send("n")
        try tmux.send("BTab")
        try tmux.send("Right")  // podman, slower to start: the docker run ends first
        try tmux.send("Enter")
        #expect(tmux.waitFor("Runs (2)") != nil)
        let called = tmux.waitFor("attention", timeout: 60) { $0.contains("Runs (2) · 1 needs you") }
        #expect(called != nil, "\(tmux.capture())")
        #expect(tmux.display("#{pane_title}") == "ccdeck: 1 run needs you")
        #expect(tmux.display("#{window_bell_flag}") == "1")
        try tmux.send("j")  // select it: seen (the podman run may end meanwhile, and be counted while not selected)
        #expect(tmux.waitFor("both done", timeout: 60) { $0.contains("0 live · today 2 finished, 0 failed") } != nil)
        try tmux.send("k")  // and the podman run: every run seen
        #expect(tmux.waitFor("seen") { !$0.contains("needs you") } != nil, "\(tmux.capture())")
        #expect(tmux.display("#{pane_title}") == "ccdeck")
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
        let after = tmux.display("#{pane_title}")
        #expect(!after.hasPrefix("ccdeck"), "the window's title was not given back: \(after)")
    }

    @Test func compareEveryReadyModeFromTheLaunchForm() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let tmux = try start(model: model)
        #expect(tmux.waitFor("every mode probed", timeout: 30) {
            $0.contains("✓ docker") && $0.contains("✓ podman") && $0.contains("✓ incus")
        } != nil)
        try tmux.send("n")
        #expect(tmux.waitFor("Launch a run") != nil)
        try tmux.send("BTab")
        try tmux.send("Left")  // docker → the last choice: all of them
        #expect(tmux.waitFor("< all ready modes >") != nil)
        try tmux.send("Enter")
        #expect(tmux.waitFor("comparing docker, podman, incus") != nil)
        let table = tmux.waitFor("the comparison table", timeout: 240) { $0.contains("Comparison") && $0.contains("fastest overall") }
        #expect(table != nil)
        let rows = (table ?? "").split(separator: "\n")
        for mode in ["docker", "podman"] {
            #expect(rows.contains { $0.range(of: "│ \(mode) +1 +0 +0 ", options: .regularExpression) != nil }, "\(table ?? "")")
        }
        // incus has no image by the test image's name here: its row says it failed, with why.
        #expect(rows.contains { $0.contains("│ incus ") }, "\(table ?? "")")
        try tmux.send("x")
        #expect(tmux.waitFor("table closed") { !$0.contains("fastest overall") && $0.contains("part of a comparison") } != nil)
        try tmux.send("C")
        #expect(tmux.waitFor("fastest overall") != nil)
        try tmux.send("Escape")
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")

        // One group in the records; the work is really there in each mode's own fresh workspace.
        let store = RunStore(root: home.path + "/state/ccdeck")
        let runs = store.list()
        #expect(Set(runs.map(\.mode)) == [.docker, .podman, .incus])
        #expect(Set(runs.compactMap(\.group)).count == 1 && runs.allSatisfy { $0.group != nil })
        for run in runs where run.mode != .incus {
            #expect(run.state == .succeeded, "\(run.mode): \(run.reason ?? "")")
            #expect(FileManager.default.fileExists(atPath: run.workspace + "/hello.txt"), "\(run.mode)")
        }
        #expect(Set(runs.map(\.workspace)).count == 3)
    }

    @Test func aKeptContainerIsAnOrphanAndCanBeRemoved() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        for _ in 0..<2 {
            let kept = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker", extra: ["--keep"]), environment: env)
            #expect(kept.status == .exited(0), "\(kept.output)")
        }
        // The next run says what earlier runs left, and how to clean it.
        let next = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker"), environment: env)
        #expect(next.stderr.contains("2 leftover containers of earlier runs on docker") && next.stderr.contains("sandboxes prune"),
                "\(next.stderr)")
        let tmux = try start(model: model)
        #expect(tmux.waitFor("orphans listed and said") { $0.contains("Orphans (2)") && $0.contains("2 leftovers from earlier runs") } != nil)
        try tmux.send("BTab")  // runs → orphans
        try tmux.send("d")
        #expect(tmux.waitFor("Remove this orphan?") != nil)
        try tmux.send("y")
        #expect(tmux.waitFor("removed docker container") != nil)
        #expect(tmux.waitFor("Orphans (1)") != nil)
        // Make another, then prune them all from the pane, asked first.
        let kept = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker", extra: ["--keep"]), environment: env)
        #expect(kept.status == .exited(0))
        #expect(tmux.waitFor("Orphans (2)") != nil)
        try tmux.send("P")
        #expect(tmux.waitFor("Remove 2 leftovers?") != nil)
        try tmux.send("y")
        #expect(tmux.waitFor("removed 2 leftovers") != nil)
        #expect(tmux.waitFor("Orphans (0)") != nil)
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
        // The pane, `sandboxes ls` and the engine agree.
        let ls = try CCDeckInvocation.run(["sandboxes", "ls"], environment: env)
        #expect(ls.stdout.contains("no sandboxes of ccdeck's"), "\(ls.output)")
        let store = RunStore(root: home.path + "/state/ccdeck").storeID
        let left = try ProcessRunner.run(Command("docker", ["ps", "-aq", "--filter", "label=ccdeck.store=" + store],
                                                 environment: EngineEnvironment.host), timeout: 30)
        #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }
}

/// The dashboard's own behaviour, which needs no engine and no model: signals, resizing,
/// read-only and monochrome, a non-UTF-8 locale, and backends coming and going (a stand-in
/// docker). These run in every `swift test`, wherever tmux is installed.
@Suite(.serialized, .enabled(if: ChildProcess.resolve("tmux", environment: EngineEnvironment.host) != nil,
                             "needs tmux (scripts/testenv install)"))
struct DashboardTerminalTests: DashboardHarness {
    let home = TemporaryDirectory("ccdeck-e2e-term")

    /// SEGV stands for a crash in ccdeck's own code: the handler gives the terminal back, then dies.
    @Test(arguments: [("TERM", SIGTERM, "143"), ("HUP", SIGHUP, "129"), ("INT", SIGINT, "0"), ("SEGV", SIGSEGV, "139")])
    func terminalIsRestoredOnSignals(name: String, signal: Int32, exit: String) throws {
        let tmux = try start(model: nil)
        #expect(tmux.waitFor("q quit") != nil)
        kill(try dashboardPID(), signal)
        expectTerminalRestored(tmux, exit: exit)
    }

    @Test func resizingRelaysOutAndTooSmallStillQuits() throws {
        let tmux = try start(model: nil, width: 80, height: 24)
        #expect(tmux.waitFor("q quit") != nil)
        try tmux.resize(width: 250, height: 70)
        #expect(tmux.waitFor("wide layout") { $0.split(separator: "\n").dropFirst().first.map { $0.count > 200 } == true && $0.contains("q quit") } != nil)
        try tmux.resize(width: 50, height: 12)
        #expect(tmux.waitFor("terminal too small (need 60×18)") != nil)
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
    }

    @Test func readonlyAndMonochrome() throws {
        let tmux = try start(model: nil, extra: "--readonly --no-color")
        let screen = tmux.waitFor("q quit")
        #expect(screen?.contains("[readonly]") == true)
        #expect(screen?.contains("launch") == false)
        try tmux.send("n")
        usleep(300_000)
        #expect(!tmux.capture().contains("Launch a run"))
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
    }

    @Test func asciiBordersUnderANonUTF8Locale() throws {
        let tmux = try start(model: nil, locale: "C")
        let screen = try #require(tmux.waitFor("q quit"))
        let lines = screen.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix(" ccdeck - 0 live - today 0 finished") == true, "\(screen)")  // the totals, in ASCII
        #expect(lines.dropFirst().first?.hasPrefix("+-") == true, "\(screen)")
        #expect(screen.contains("| Backends |") || screen.contains("+- Backends -"))
        #expect(!screen.contains("┌") && !screen.contains("│"))
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
    }

    /// Backends come and go without the user asking: a stand-in `docker` whose daemon is "up"
    /// while a flag file exists. Its event stream ends when the daemon goes away (as the real
    /// one does); the dashboard notices by push, then reconnects by itself.
    @Test func daemonsComingAndGoingShowUpUnasked() throws {
        let bin = TemporaryDirectory("ccdeck-fake-docker")
        let flag = bin.path + "/up"
        FileManager.default.createFile(atPath: flag, contents: nil)
        bin.write("docker", """
            #!/bin/sh
            case "$1" in
              version)
                if [ -f "\(flag)" ]; then echo '{"Client":{"Version":"99.0"},"Server":{"Version":"99.1"}}'; exit 0; fi
                echo '{"Client":{"Version":"99.0"},"Server":null}'
                echo 'Cannot connect to the Docker daemon at unix:///fake.sock. Is the docker daemon running?' >&2; exit 1 ;;
              events) while [ -f "\(flag)" ]; do sleep 0.2; done; echo 'error during connect: EOF' >&2; exit 1 ;;
              ps) exit 0 ;;
              sandbox) echo "docker: 'sandbox' is not a docker command." >&2; exit 1 ;;
              *) exit 1 ;;
            esac
            """, mode: 0o755)
        var env = EngineEnvironment.runEnvironment(home: home.path, model: nil, token: EngineEnvironment.canaryToken())
        env["PATH"] = bin.path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env["TERM"] = "xterm-256color"
        let tmux = try TmuxSession(width: 120, height: 40, environment: env, script: """
            "\(TestPaths.ccdeckBinary)" dashboard
            echo "EXIT:$?"; stty -a | tr '\\n' ' ' | sed 's/^/STTY: /'; echo; exec sleep 600
            """)
        func dockerRow(_ pattern: String) -> (String) -> Bool {
            { $0.range(of: pattern, options: .regularExpression) != nil }
        }
        #expect(tmux.waitFor("docker ready", dockerRow("✓ docker {5,}ready 99\\.1")) != nil)
        try FileManager.default.removeItem(atPath: flag)
        #expect(tmux.waitFor("docker down", dockerRow("✗ docker {5,}daemon down")) != nil)
        FileManager.default.createFile(atPath: flag, contents: nil)
        #expect(tmux.waitFor("docker back", timeout: 30, dockerRow("✓ docker {5,}ready 99\\.1")) != nil)
        try tmux.send("q")
        expectTerminalRestored(tmux, exit: "0")
    }
}

/// How the dashboard tests start a dashboard in tmux and read what it left behind.
protocol DashboardHarness {
    var home: TemporaryDirectory { get }
}

extension DashboardHarness {
    /// `ccdeck dashboard` wired to the test image and the model; after it exits, the exit
    /// status and the terminal's modes are printed so a test can read them.
    /// The dashboard in `tmux` adopts run `id` and drives it to success: its whole output stored
    /// (the first line once, the result last), and no token in it.
    func expectAdoptedWhole(_ tmux: TmuxSession, run id: String, storeRoot: String, canary: String,
                            sourceLocation: SourceLocation = #_sourceLocation) throws -> RunRecord {
        #expect(tmux.waitFor("adopted and finished", timeout: 90) { $0.contains("adopted") && $0.contains("succeeded") } != nil,
                sourceLocation: sourceLocation)
        let record = try RunStore(root: storeRoot).load(id)
        #expect(record.state == .succeeded && record.adoptedAt != nil && record.turns == 3, "\(record)", sourceLocation: sourceLocation)
        let output = try String(contentsOfFile: RunStore(root: storeRoot).outputPath(for: id), encoding: .utf8)
        let lines = output.split(separator: "\n")
        #expect(lines.filter { $0.contains("\"type\":\"system\"") && $0.contains("\"init\"") }.count == 1, sourceLocation: sourceLocation)
        #expect(lines.last?.contains("\"type\":\"result\"") == true, sourceLocation: sourceLocation)
        #expect(!output.contains(canary), sourceLocation: sourceLocation)
        return record
    }

    func start(model: ModelServer?, width: Int = 120, height: Int = 40, extra: String = "",
               locale: String = "C.UTF-8") throws -> TmuxSession {
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        env["TERM"] = "xterm-256color"
        env["LANG"] = locale
        env["LC_ALL"] = locale
        let pass = EngineEnvironment.passThrough.map { "--pass-env \($0)" }.joined(separator: " ")
        let script = """
            echo $$ > "\(home.path)/ccdeck.pid"
            "\(TestPaths.ccdeckBinary)" dashboard --image \(EngineEnvironment.testImage) --runtime-arg=--network=host \(pass) \(extra)
            echo "EXIT:$?"
            stty -a | tr '\\n' ' ' | sed 's/^/STTY: /'
            echo
            exec sleep 600
            """
        return try TmuxSession(width: width, height: height, environment: env, script: script)
    }

    /// The dashboard process's pid (the child of the launcher shell).
    func dashboardPID() throws -> Int32 {
        let shell = try String(contentsOfFile: home.path + "/ccdeck.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let out = try ProcessRunner.run(Command("pgrep", ["-P", shell, "-f", "dashboard"], environment: EngineEnvironment.host), timeout: 10)
        return try #require(Int32(out.stdout.split(separator: "\n").first ?? ""))
    }

    func expectTerminalRestored(_ tmux: TmuxSession, exit: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let screen = tmux.waitFor("STTY:", timeout: 20, history: true)
        #expect(screen != nil, "the dashboard did not exit", sourceLocation: sourceLocation)
        let text = (screen ?? "").replacingOccurrences(of: "\n", with: "")
        #expect(text.contains("EXIT:\(exit)"), "\(text)", sourceLocation: sourceLocation)
        let stty = text.components(separatedBy: "STTY:").last ?? ""
        #expect(stty.range(of: #"(^|\s)icanon(\s|$)"#, options: .regularExpression) != nil, "\(stty)", sourceLocation: sourceLocation)
        #expect(stty.range(of: #"(^|\s)echo(\s|$)"#, options: .regularExpression) != nil, "\(stty)", sourceLocation: sourceLocation)
    }
}
