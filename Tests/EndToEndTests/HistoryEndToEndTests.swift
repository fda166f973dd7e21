import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The run history at scale (issue 16), from the outside: the real command line and dashboard
/// over a store's index, the `proc` test backend running the real Claude Code CLI against the
/// scripted model where a run is needed.
@Suite(.serialized, .enabled(if: TestPaths.claudeBinary != nil, "needs the real Claude Code CLI (scripts/testenv install)"))
struct HistoryEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-history")
    var storeRoot: String { home.path + "/state/ccdeck" }

    func environment(model: ModelServer? = nil) -> [String: String] {
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        env["CCDECK_PROC_ROOT"] = home.path + "/proc"
        env["CCDECK_PROC_AGENT"] = TestPaths.claudeBinary
        try? FileManager.default.createDirectory(atPath: home.path + "/proc", withIntermediateDirectories: true)
        return env
    }

    func testhost(_ args: [String], _ env: [String: String]) throws -> CCDeckInvocation {
        let out = try ProcessRunner.run(Command(TestPaths.testHostBinary, args, environment: env), timeout: 300)
        return CCDeckInvocation(status: out.status, stdout: out.stdout, stderr: out.stderr)
    }

    func procRun(_ env: [String: String]) throws -> CCDeckInvocation {
        try testhost(["run", "--mode", "proc"] + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] }, env)
    }

    /// Record files as a ccdeck from before the index wrote them.
    @discardableResult
    func writeOldStore(_ count: Int, daysAgo: Double = 0, state: (Int) -> RunState = { _ in .succeeded },
                       mode: (Int) -> String = { _ in "docker" }, prefix: String = "20261101") throws -> [RunRecord] {
        let base = Date().addingTimeInterval(-daysAgo * 86_400)
        return try (0..<count).map { n in
            let id = String(format: "\(prefix)-%06d-%04x", n, n & 0xffff)
            var r = RunRecord(id: id, mode: BackendKind(mode(n)), image: "img", sandbox: "ccdeck-\(id)",
                              workspace: storeRoot + "/runs/\(id)/workspace", workspaceIsTemporary: true,
                              prompt: n == 7 ? "Refactor the parser" : "task \(n)", keep: false,
                              createdAt: base.addingTimeInterval(Double(n - count) * 60), driverPID: 1, host: "elsewhere",
                              tokenSource: nil)
            r.state = state(n)
            r.endedAt = r.state.isLive ? nil : r.createdAt.addingTimeInterval(20)
            let dir = storeRoot + "/runs/" + id
            try FileManager.default.createDirectory(atPath: dir + "/workspace", withIntermediateDirectories: true)
            try RunStore.encoder.encode(r).write(to: URL(fileURLWithPath: dir + "/record.json"))
            return r
        }
    }

    func listedIDs(_ r: CCDeckInvocation) -> [String] {
        r.stdout.split(separator: "\n").compactMap { line in
            let first = line.split(separator: " ").first.map(String.init) ?? ""
            return first.count == 20 && first.contains("-") ? first : nil
        }
    }

    @Test func anOldStoreIsIndexedOnceSaidAndListedAsBefore() throws {
        let records = try writeOldStore(600, state: { $0 % 5 == 0 ? .failed : .succeeded },
                                        mode: { $0 % 2 == 0 ? "podman" : "docker" })
        let env = environment()
        let first = try CCDeckInvocation.run(["runs", "ls"], environment: env)
        #expect(first.status == .exited(0), "\(first.output)")
        #expect(first.stderr.contains("indexing the run history (first use): 600/600 runs"), "\(first.stderr)")
        #expect(FileManager.default.fileExists(atPath: storeRoot + "/runs.db"))
        let newestFirst = records.sorted { $0.createdAt > $1.createdAt }.map(\.id)
        #expect(listedIDs(first) == newestFirst, "piped: every run, newest first")
        // Once: the next listing reads the index alone.
        let second = try CCDeckInvocation.run(["runs", "ls", "--limit", "10"], environment: env)
        #expect(!second.stderr.contains("indexing"))
        #expect(listedIDs(second) == Array(newestFirst.prefix(10)))
        #expect(second.stdout.contains("older runs not shown"))
        // The filters.
        #expect(listedIDs(try CCDeckInvocation.run(["runs", "ls", "--state", "failed"], environment: env)).count == 120)
        // Failed: every fifth; podman: the even ones.
        #expect(listedIDs(try CCDeckInvocation.run(["runs", "ls", "--mode", "podman", "--state", "failed"], environment: env)).count == 60)
        #expect(listedIDs(try CCDeckInvocation.run(["runs", "ls", "--mode", "podman", "--mode", "docker", "--state", "failed",
                                                    "--state", "running"], environment: env)).count == 120)
        #expect(listedIDs(try CCDeckInvocation.run(["runs", "ls", "--mode", "incus"], environment: env)).isEmpty)
        #expect(listedIDs(try CCDeckInvocation.run(["runs", "ls", "--grep", "refactor THE"], environment: env)) == [records[7].id])
        // One a minute up to now: the last half hour holds 29 or 30 of them, as the clock moved on.
        #expect((29...30).contains(listedIDs(try CCDeckInvocation.run(["runs", "ls", "--since", "30m"], environment: env)).count))
        let json = try CCDeckInvocation.run(["runs", "ls", "--json", "--limit", "3"], environment: env)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let runs = try #require(object["runs"] as? [[String: Any]])
        #expect(runs.compactMap { $0["id"] as? String } == Array(newestFirst.prefix(3)))
        #expect((object["totals"] as? [String: Any])?["finishedToday"] != nil)
        let bad = try CCDeckInvocation.run(["runs", "ls", "--state", "done"], environment: env)
        #expect(bad.status == .exited(2) && bad.stderr.contains("--state takes one of"), "\(bad.output)")
    }

    /// A dashboard opened first on an older store indexes it without writing on the screen it
    /// draws (the progress is a notice), then lists the newest page of it.
    @Test func aDashboardIndexesAnOldStoreOnItsScreen() throws {
        try writeOldStore(600)
        var env = environment()
        env["TERM"] = "xterm-256color"
        let tmux = try TmuxSession(width: 120, height: 40, environment: env, script: """
            "\(TestPaths.ccdeckBinary)" dashboard
            echo "EXIT:$?"
            exec sleep 600
            """)
        let screen = tmux.waitFor("the newest page listed") { $0.contains("Runs (200 of 600)") && $0.contains("q quit") }
        #expect(screen != nil)
        #expect(screen?.contains("ccdeck: indexing") == false, "the progress line was written over the dashboard")
        #expect(screen?.hasPrefix(" ccdeck · 0 live") == true, "\(screen ?? "")")
        try tmux.send("q")
        #expect(tmux.waitFor("EXIT:0") != nil)
    }

    /// Two `ccdeck run` processes and a dashboard, all writing and reading the store at once:
    /// every run listed exactly once, in the state it ended in.
    @Test func twoRunsAndADashboardAtOnce() throws {
        let workspace = home.path + "/project"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, workspace: workspace)
        var env = environment(model: model)
        env["TERM"] = "xterm-256color"
        let tmux = try TmuxSession(width: 120, height: 40, environment: env, script: """
            "\(TestPaths.testHostBinary)" dashboard
            echo "EXIT:$?"
            exec sleep 600
            """)
        #expect(tmux.waitFor("dashboard up") { $0.contains("q quit") && $0.contains("Runs (0)") } != nil)
        final class Results: @unchecked Sendable { var out: [CCDeckInvocation?] = [nil, nil] }
        let results = Results()
        let group = DispatchGroup()
        let runEnv = env
        for i in 0..<2 {
            group.enter()
            Thread { [self] in
                results.out[i] = try? procRun(runEnv)
                group.leave()
            }.start()
        }
        group.wait()
        for r in results.out { #expect(r?.status == .exited(0), "\(r?.output ?? "-")") }
        #expect(tmux.waitFor("both runs listed, finished") { $0.contains("Runs (2)") && $0.contains(" 0 live ") } != nil)
        let json = try CCDeckInvocation.run(["runs", "ls", "--json"], environment: env)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let runs = try #require(object["runs"] as? [[String: Any]])
        #expect(runs.count == 2 && Set(runs.compactMap { $0["id"] as? String }).count == 2)
        #expect(runs.allSatisfy { $0["state"] as? String == "succeeded" })
        let screen = tmux.capture()
        for id in runs.compactMap({ $0["id"] as? String }) {
            #expect(screen.split(separator: "\n").filter { $0.contains(id + " proc") }.count == 1, "\(id) once in Runs")
        }
        try tmux.send("q")
        #expect(tmux.waitFor("EXIT:0") != nil)
    }

    /// A ccdeck killed (SIGKILL) between writing a run's record and indexing it: the next start
    /// finds the run, as its record file says it is (its driver gone).
    @Test func aRunKilledBetweenItsRecordAndItsIndexIsFound() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        var env = environment(model: model)
        env["CCDECK_FAULT"] = "after-record-write"
        let killed = try procRun(env)
        #expect(killed.status == .signaled(SIGKILL), "\(killed.output)")
        env["CCDECK_FAULT"] = nil
        let ids = try FileManager.default.contentsOfDirectory(atPath: storeRoot + "/runs")
        let id = try #require(ids.first)
        let ls = try CCDeckInvocation.run(["runs", "ls"], environment: env)
        #expect(ls.stdout.contains(id) && ls.stdout.contains("lost-driver"), "\(ls.output)")
    }

    @Test(arguments: ["truncated", "deleted"])
    func aDamagedOrDeletedIndexIsBuiltAgain(damage: String) throws {
        let records = try writeOldStore(40)
        let env = environment()
        #expect(listedIDs(try CCDeckInvocation.run(["runs", "ls"], environment: env)).count == 40)
        if damage == "truncated" { truncate(storeRoot + "/runs.db", 512) } else { unlink(storeRoot + "/runs.db") }
        unlink(storeRoot + "/runs.db-wal")
        unlink(storeRoot + "/runs.db-shm")
        let again = try CCDeckInvocation.run(["runs", "ls"], environment: env)
        #expect(again.status == .exited(0), "\(again.output)")
        #expect(listedIDs(again) == records.sorted { $0.createdAt > $1.createdAt }.map(\.id))

        let reindex = try CCDeckInvocation.run(["runs", "reindex"], environment: env)
        #expect(reindex.status == .exited(0) && reindex.stdout.contains("indexed 40 runs"), "\(reindex.output)")
    }

    /// `runs prune` deletes exactly the runs it lists, with their folders, and never a live run
    /// or a workspace ccdeck did not make.
    @Test func pruneDeletesOnlyWhatItSaysAndNothingLive() throws {
        let old = try writeOldStore(6, daysAgo: 40, state: { $0 < 2 ? .failed : .succeeded }, prefix: "20261001")
        let live = try writeOldStore(1, daysAgo: 40, state: { _ in .running }, prefix: "20261002")
        let recent = try writeOldStore(2, prefix: "20261128")
        // A finished old run whose workspace was the user's own folder.
        let own = home.path + "/their-project"
        try FileManager.default.createDirectory(atPath: own, withIntermediateDirectories: true)
        home.write("their-project/keep.txt", "mine\n")
        var users = old[5]
        users.workspace = own
        users.workspaceIsTemporary = false
        try RunStore.encoder.encode(users).write(to: URL(fileURLWithPath: storeRoot + "/runs/\(users.id)/record.json"))
        let env = environment()

        let dry = try CCDeckInvocation.run(["runs", "prune", "--older-than", "30d", "--dry-run"], environment: env)
        #expect(dry.status == .exited(0) && dry.stdout.contains("would delete 6 runs"), "\(dry.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: storeRoot + "/runs").count == 9)
        let unasked = try CCDeckInvocation.run(["runs", "prune", "--older-than", "30d"], environment: env)
        #expect(unasked.status == .exited(2) && unasked.stderr.contains("add --yes"), "\(unasked.output)")

        let keepFailed = try CCDeckInvocation.run(["runs", "prune", "--older-than", "30d", "--keep-failed", "--yes"], environment: env)
        #expect(keepFailed.stdout.contains("deleted 4 runs"), "\(keepFailed.output)")
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: storeRoot + "/runs"))
        #expect(left == Set([old[0].id, old[1].id, live[0].id] + recent.map(\.id)))
        #expect(FileManager.default.fileExists(atPath: own + "/keep.txt"), "a workspace ccdeck did not make stays")
        let all = try CCDeckInvocation.run(["runs", "prune", "--older-than", "30d", "--yes"], environment: env)
        #expect(all.stdout.contains("deleted 2 runs"), "\(all.output)")
        let ls = try CCDeckInvocation.run(["runs", "ls"], environment: env)
        #expect(Set(listedIDs(ls)) == Set([live[0].id] + recent.map(\.id)), "\(ls.stdout)")
        let nothing = try CCDeckInvocation.run(["runs", "prune", "--older-than", "30d", "--yes"], environment: env)
        #expect(nothing.stdout.contains("no runs ended more than 30d ago"))
    }
}
