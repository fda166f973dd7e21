import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// What a run changed, with the real Claude Code CLI in a real container: in a plain folder
/// (against ccdeck's snapshot) and in a git repository (against HEAD, whose HEAD, index and
/// object store stay as they were).
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct ChangesEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-changes")

    func project(git: Bool) throws -> String {
        let ws = home.path + "/project-\(git ? "git" : "plain")"
        try FileManager.default.createDirectory(atPath: ws, withIntermediateDirectories: true)
        try "kept\n".write(toFile: ws + "/keep.txt", atomically: true, encoding: .utf8)
        try "going\n".write(toFile: ws + "/gone.txt", atomically: true, encoding: .utf8)
        if git {
            for args in [["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start"]] {
                let r = try ProcessRunner.run(Command("git", ["-C", ws] + args, environment: EngineEnvironment.host), timeout: 30)
                #expect(r.status.succeeded, "\(r.stderr)")
            }
        }
        _ = ws.withCString { chown($0, 1000, 1000) }
        for f in try FileManager.default.subpathsOfDirectory(atPath: ws) { _ = (ws + "/" + f).withCString { chown($0, 1000, 1000) } }
        return ws
    }

    func runChanges(_ ws: String) throws -> (CCDeckInvocation, [String: String]) {
        let model = try ModelServer(scenario: "changes", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker", extra: ["--workspace", ws]), environment: env)
        return (r, env)
    }

    func expectTheChanges(_ env: [String: String], baseline: String) throws {
        let stat = try CCDeckInvocation.run(["runs", "diff", "latest", "--stat"], environment: env)
        #expect(stat.status == .exited(0), "\(stat.output)")
        let lines = stat.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("A added.txt  +1 −0 10 B"), "\(stat.stdout)")
        #expect(lines.contains("M keep.txt  +1 −0 13 B"), "\(stat.stdout)")
        #expect(lines.contains("D gone.txt  +0 −1 6 B"), "\(stat.stdout)")
        #expect(lines.contains("A sub/blob.bin  binary 3 B"), "\(stat.stdout)")
        #expect(lines.last == "2 added, 1 modified, 1 deleted (+2 −1) against \(baseline)", "\(stat.stdout)")
        let diff = try CCDeckInvocation.run(["runs", "diff", "latest"], environment: env)
        #expect(diff.stdout.contains("+changed") && diff.stdout.contains("-going") && diff.stdout.contains("+brand new"), "\(diff.stdout)")
        let json = try CCDeckInvocation.run(["runs", "diff", "latest", "--json"], environment: env)
        let changes = try RunStore.decoder.decode(WorkspaceChanges.self, from: Data(json.stdout.utf8))
        #expect(changes.summary == WorkspaceChanges.Summary(added: 2, modified: 1, deleted: 1, additions: 2, deletions: 1))
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.changes == changes.summary)
        #expect(!FileManager.default.fileExists(atPath: RunStore(environment: env).directory(for: record.id) + "/changes.git"))
    }

    @Test func aPlainFolderAgainstItsSnapshot() throws {
        let ws = try project(git: false)
        let (r, env) = try runChanges(ws)
        #expect(r.status == .exited(0), "\(r.output)")
        try expectTheChanges(env, baseline: "the snapshot taken at its start")

        // The dashboard shows them too: `c` on the finished run.
        var tenv = env
        tenv["TERM"] = "xterm-256color"
        tenv["LANG"] = "C.UTF-8"
        let tmux = try TmuxSession(width: 120, height: 40, environment: tenv,
                                   script: "\"\(TestPaths.ccdeckBinary)\" dashboard\necho \"EXIT:$?\"\nexec sleep 600")
        #expect(tmux.waitFor("Runs (1)") != nil)
        try tmux.send("c")
        let shown = tmux.waitFor("the changes") { $0.contains("Changes ") && $0.contains("D gone.txt") && $0.contains("+changed") }
        #expect(shown != nil, "\(tmux.capture())")
        try tmux.send("Escape")
        #expect(tmux.waitFor("closed") { !$0.contains("D gone.txt") } != nil)
        try tmux.send("q")
        #expect(tmux.waitFor("EXIT:0", timeout: 20, history: true) != nil)
    }

    /// A big folder's snapshot takes seconds, and Claude Code waits only ~3 s for the first
    /// bytes of its prompt on stdin before it exits ("Input must be provided either through
    /// stdin…"). The snapshot is read while the sandbox starts, the prompt already written, its
    /// end held until the snapshot is whole: the agent neither gives up nor acts before it.
    /// Here git takes 4 s for the snapshot (a wrapper first on PATH), as a 59 MB folder did.
    @Test func aSlowSnapshotNeverKeepsThePromptFromTheAgent() throws {
        let ws = try project(git: false)
        let slow = home.path + "/slow-git"
        try FileManager.default.createDirectory(atPath: slow, withIntermediateDirectories: true)
        let real = try #require(ChildProcess.resolve("git", environment: EngineEnvironment.host))
        // The first `add` (the snapshot) is slow, and notes when it ended.
        try """
            #!/bin/sh
            for a in "$@"; do
              if [ "$a" = add ] && mkdir "\(slow)/first-add" 2>/dev/null; then
                \(real) "$@"; s=$?; sleep 4; date -u +%s.%N > "\(slow)/snapshot-ended"; exit $s
              fi
            done
            exec \(real) "$@"

            """.write(toFile: slow + "/git", atomically: true, encoding: .utf8)
        chmod(slow + "/git", 0o755)
        let model = try ModelServer(scenario: "changes", logDirectory: home.path)
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        env["PATH"] = slow + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker", extra: ["--workspace", ws]), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        try expectTheChanges(env, baseline: "the snapshot taken at its start")
        // The container was up before the snapshot was whole: the start did not wait for it.
        let ended = try #require(Double(String(contentsOfFile: slow + "/snapshot-ended", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        let record = try #require(RunStore(environment: env).list().first)
        let started = try #require(record.phases.containerStarted)
        #expect(started.timeIntervalSince1970 < ended, "container started \(started), snapshot ended \(ended)")
    }

    @Test func aGitRepositoryAgainstItsHeadLeftUntouched() throws {
        let ws = try project(git: true)
        func git(_ args: String...) throws -> String {
            // (the folder is the agent's uid's: git would refuse a "dubious" owner)
            try ProcessRunner.run(Command("git", ["-c", "safe.directory=*", "-C", ws] + args, environment: EngineEnvironment.host),
                                  timeout: 30).stdout
        }
        let head = try git("rev-parse", "HEAD")
        #expect(head.count == 41, "\(head)")
        let index = try Data(contentsOf: URL(fileURLWithPath: ws + "/.git/index"))
        let objects = try FileManager.default.subpathsOfDirectory(atPath: ws + "/.git/objects").sorted()
        let (r, env) = try runChanges(ws)
        #expect(r.status == .exited(0), "\(r.output)")
        try expectTheChanges(env, baseline: "git HEAD")
        #expect(try git("rev-parse", "HEAD") == head)
        #expect(try Data(contentsOf: URL(fileURLWithPath: ws + "/.git/index")) == index, "the index was touched")
        #expect(try FileManager.default.subpathsOfDirectory(atPath: ws + "/.git/objects").sorted() == objects, "objects were written")
        // Nothing was staged for the user: git sees the agent's work as unstaged and untracked.
        let status = try git("status", "--porcelain")
        #expect(status.contains(" M keep.txt") && status.contains(" D gone.txt") && status.contains("?? added.txt"), "\(status)")
    }

    @Test func aSuccessThatChangedNothingSaysSo() throws {
        let ws = try project(git: false)
        let model = try ModelServer(scenario: "text_only", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker", extra: ["--workspace", ws]), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .succeeded && record.changes?.isEmpty == true)
        let shown = try CCDeckInvocation.run(["runs", "show", "latest"], environment: env)
        #expect(shown.stdout.contains("changes:      no changes"), "\(shown.stdout)")
    }
}
