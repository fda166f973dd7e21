import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// `ccdeck run` against real Docker and real Podman, the real Claude Code CLI 2.1.332 in the
/// test image, and the scripted model server. Started by `scripts/test` (CCDECK_E2E=1).
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct RunEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e")

    struct Outcome {
        var invocation: CCDeckInvocation
        var record: RunRecord?
        var store: RunStore
        var model: ModelServer
        var argvHits: [String]
        var argvScans: Int
    }

    /// Runs `ccdeck run` on `engine` with the scripted `scenario`, watching every argv for the canary.
    func run(_ engine: String, scenario: String, canary: String, extra: [String] = []) throws -> Outcome {
        let model = try ModelServer(scenario: scenario, logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: canary)
        let watcher = ArgvWatcher(needle: canary)
        let invocation = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: engine, extra: extra), environment: env)
        let (hits, scans) = watcher.stop()
        let store = RunStore(environment: env)
        return Outcome(invocation: invocation, record: store.list().first, store: store, model: model, argvHits: hits, argvScans: scans)
    }

    /// The canary must be nowhere: not in any argv while live, not printed, not stored.
    func expectNoLeak(_ o: Outcome, canary: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(o.argvHits.isEmpty, "token in argv: \(o.argvHits)", sourceLocation: sourceLocation)
        #expect(o.argvScans > 0, sourceLocation: sourceLocation)
        #expect(!o.invocation.output.contains(canary), sourceLocation: sourceLocation)
        let files = FileManager.default.enumerator(atPath: o.store.root)?.allObjects as? [String] ?? []
        for file in files {
            let path = o.store.root + "/" + file
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
                  let data = FileManager.default.contents(atPath: path) else { continue }
            #expect(!String(decoding: data, as: UTF8.self).contains(canary), "token in \(file)", sourceLocation: sourceLocation)
        }
    }

    func containers(_ engine: String, run id: String) throws -> String {
        let out = try ProcessRunner.run(Command(engine, ["ps", "-a", "-q", "--filter", "label=ccdeck.run=\(id)"],
                                                environment: EngineEnvironment.host), timeout: 30)
        return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(arguments: ["docker", "podman"])
    func agentWritesAFileAndRunsBash(engine: String) throws {
        let canary = EngineEnvironment.canaryToken()
        let o = try run(engine, scenario: "write_and_bash", canary: canary)
        #expect(o.invocation.status == .exited(0), "\(o.invocation.output)")
        let record = try #require(o.record)
        #expect(record.mode.rawValue == engine)
        #expect(record.state == .succeeded)
        #expect(record.turns == 3)
        // The agent's work is in the workspace, written through the mount by the real CLI's tools.
        #expect(try String(contentsOfFile: record.workspace + "/hello.txt", encoding: .utf8) == "hello from ccdeck\n")
        #expect(try String(contentsOfFile: record.workspace + "/bash-ran.txt", encoding: .utf8) == "bash-ran\n")
        #expect(FileManager.default.fileExists(atPath: record.workspace + "/package.json"))
        // Readable events and the summary with turns, cost and phases.
        let out = o.invocation.stdout
        #expect(out.contains("→ Write /workspace/hello.txt"))
        #expect(out.contains("→ Bash cat /workspace/hello.txt"))
        #expect(out.contains("All done."))
        #expect(out.contains("✓ run \(record.id) succeeded in "))
        #expect(out.contains(": 3 turns, $"))
        #expect(out.contains("phases: image ready +"))
        #expect(out.contains("container started +") && out.contains("first agent event +") && out.contains("cleanup +"))
        // The token reached the CLI inside: every request carried `Bearer <canary>` (by length: the log never holds it).
        #expect(!o.model.requests.isEmpty)
        #expect(o.model.requests.allSatisfy {
            ($0["authorization"] as? [String: Any])?["length"] as? Int == "Bearer ".count + canary.count
        })
        #expect(try containers(engine, run: record.id).isEmpty)
        try expectNoLeak(o, canary: canary)

        let show = try CCDeckInvocation.run(["runs", "show", String(record.id.prefix(17))],
                                            environment: EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil))
        #expect(show.status == .exited(0))
        #expect(show.stdout.contains("→ Write /workspace/hello.txt"))
        #expect(show.stdout.contains("state:        succeeded"))
    }

    /// A run's fixed cost (issue 15): beside `run` itself, the engine's CLI is asked nothing on
    /// the run's way (no image look, no inspect, no removal): docker is asked over its socket,
    /// podman removes its own container and keeps its log beside the record (gone at the end),
    /// and how the agent ended comes from the client. What the record promises is all there.
    @Test(arguments: ["docker", "podman"])
    func theEnginesCLIIsAskedNothingButTheRunItself(engine: String) throws {
        let shims = home.path + "/shims"
        try FileManager.default.createDirectory(atPath: shims, withIntermediateDirectories: true)
        let real = try #require(ChildProcess.resolve(engine, environment: EngineEnvironment.host))
        home.write("shims/\(engine)", "#!/bin/sh\necho \"$*\" >> \(home.path)/\(engine).calls\nexec \(real) \"$@\"\n")
        chmod(shims + "/" + engine, 0o755)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        env["PATH"] = shims + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env["CCDECK_TRACE"] = "1"
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: engine), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        // The trace the overhead benchmarks read: the process's steps, then the engine's share.
        let trace = try #require(r.stderr.split(separator: "\n").first { $0.hasPrefix("ccdeck: trace: parse ") }, "\(r.stderr)")
        #expect(trace.contains(" · summary ") && trace.contains(" | engine "), "\(trace)")
        #expect(trace.hasSuffix(engine == "podman" ? " in 1 calls" : " in 3 calls"),
                "the client; docker: whether dockerd answers, the client (its create is the image check), the removal: \(trace)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .succeeded && record.exitStatus == 0 && record.phases.containerStarted != nil, "\(record)")
        #expect(record.changes?.added == 2, "\(String(describing: record.changes))")
        let calls = (try? String(contentsOfFile: home.path + "/\(engine).calls", encoding: .utf8)) ?? ""
        let verbs = calls.split(separator: "\n").map { line in
            // podman's gVisor flags come before the verb; here there are none.
            String(line.split(separator: " ").first ?? "")
        }
        #expect(!verbs.contains("rm") && !verbs.contains("image"), "\(calls)")
        if engine == "docker" {
            #expect(verbs == [], "the run itself and everything else go over dockerd's socket: \(calls)")
        } else {
            #expect(verbs.filter { $0 == "run" }.count == 1, "\(calls)")
            // Beside the run, at low priority, the leftover check; when the container started is
            // the time podman wrote its pid file, so nothing is asked beside the agent.
            #expect(Set(verbs).isSubset(of: ["run", "ps"]), "\(calls)")
            #expect(calls.contains("--rm") && calls.contains("--pull=never") && calls.contains("--pidfile"))
            let started = try #require(record.phases.containerStarted)
            #expect(started > record.createdAt && started < (record.phases.firstEvent ?? .distantFuture))
        }
        #expect(try containers(engine, run: record.id).isEmpty)
        let folder = RunStore(environment: env).directory(for: record.id)
        #expect(!FileManager.default.fileExists(atPath: folder + "/" + RunSpec.keptOutputName))
        #expect(!FileManager.default.fileExists(atPath: folder + "/" + RunSpec.startStampName))
        #expect(!FileManager.default.fileExists(atPath: folder + "/changes.git"), "the private repository is gone")
    }

    @Test(arguments: [("docker", "http401"), ("podman", "http401"), ("docker", "overloaded529"),
                      ("podman", "overloaded529"), ("docker", "cut_stream"), ("podman", "cut_stream")])
    func modelFailuresEndTheRunCleanly(engine: String, scenario: String) throws {
        let canary = EngineEnvironment.canaryToken()
        let o = try run(engine, scenario: scenario, canary: canary)
        #expect(o.invocation.status == .exited(1), "\(o.invocation.output)")
        let record = try #require(o.record)
        #expect(record.state == .failed)
        let reason = try #require(record.reason)
        #expect(!reason.isEmpty)
        #expect(o.invocation.stdout.contains("✗ run \(record.id) failed"))
        #expect(o.invocation.stdout.contains("reason: \(reason)"))
        #expect(!o.invocation.output.contains("Fatal error"))
        switch scenario {
        case "http401": #expect(reason.contains("api_error") || reason.contains("401"), "\(reason)")
        case "overloaded529": #expect(reason.contains("api_error") || reason.lowercased().contains("overloaded"), "\(reason)")
        default: break
        }
        #expect(try containers(engine, run: record.id).isEmpty)
        try expectNoLeak(o, canary: canary)
    }

    @Test func escapeSequencesFromTheAgentAreRenderedInert() throws {
        let o = try run("docker", scenario: "ansi_text", canary: EngineEnvironment.canaryToken())
        #expect(o.invocation.status == .exited(0), "\(o.invocation.output)")
        let out = o.invocation.output
        #expect(!out.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x9B })
        #expect(out.contains("␛]0;pwned-title␇"))
        #expect(out.contains("␛]52;c;"))
    }

    @Test func jsonModePrintsOneObjectPerLineAndASummary() throws {
        let o = try run("podman", scenario: "write_and_bash", canary: EngineEnvironment.canaryToken(), extra: ["--json"])
        #expect(o.invocation.status == .exited(0), "\(o.invocation.output)")
        let objects = try o.invocation.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.first?["type"] as? String == "system")
        #expect(objects.contains { $0["type"] as? String == "result" })
        let summary = try #require(objects.last)
        #expect(summary["type"] as? String == "ccdeck.summary")
        #expect((summary["run"] as? [String: Any])?["state"] as? String == "succeeded")
    }

    @Test func keepAndAGivenWorkspace() throws {
        let workspace = home.path + "/my-project"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o777])
        let o = try run("docker", scenario: "write_and_bash", canary: EngineEnvironment.canaryToken(),
                        extra: ["--keep", "--workspace", workspace, "--prompt", "write hello.txt"])
        #expect(o.invocation.status == .exited(0), "\(o.invocation.output)")
        let record = try #require(o.record)
        #expect(record.workspace == workspace && !record.workspaceIsTemporary && record.prompt == "write hello.txt")
        #expect(FileManager.default.fileExists(atPath: workspace + "/hello.txt"))
        let kept = try containers("docker", run: record.id)
        #expect(!kept.isEmpty)
        _ = try ProcessRunner.run(Command("docker", ["rm", "-f", record.sandbox], environment: EngineEnvironment.host), timeout: 30)
    }

    /// Users give ccdeck their own project folder, whoever owns it: the agent must be able to
    /// change it, and what it writes must come back owned by the folder's owner.
    @Test(arguments: [("docker", UInt32(0)), ("docker", UInt32(4242)), ("podman", UInt32(0)), ("podman", UInt32(4242))])
    func theAgentWritesAFolderOfAnyOwnerAndFilesComeBackTheirs(engine: String, uid: UInt32) throws {
        let workspace = home.path + "/project-\(engine)-\(uid)"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        #expect(chown(workspace, uid, uid) == 0)
        let o = try run(engine, scenario: "write_and_bash", canary: EngineEnvironment.canaryToken(),
                        extra: ["--workspace", workspace])
        #expect(o.invocation.status == .exited(0), "\(o.invocation.output)")
        let record = try #require(o.record)
        #expect(record.state == .succeeded)
        #expect(record.agentUser?.contains("uid \(uid)") == true, "\(record.agentUser ?? "-")")
        for name in ["hello.txt", "bash-ran.txt"] {
            let path = workspace + "/" + name
            #expect(FileManager.default.fileExists(atPath: path), "the agent did not write \(name)")
            let owner = FileOwner.of(path)
            #expect(owner == FileOwner(uid: uid, gid: uid), "\(name) is owned by \(String(describing: owner))")
        }
        #expect(try containers(engine, run: record.id).isEmpty)
    }

    /// Rootless podman, as a plain user (set up by scripts/testenv): the user's own folder is
    /// written and the files come back theirs; a folder of someone else's that the user may write
    /// (a sticky shared folder of root's) is refused before anything starts, as is one they cannot write.
    @Test func rootlessPodmanWritesTheUsersOwnFolderAndRefusesOthers() throws {
        let user = try #require(EngineEnvironment.host["CCDECK_ROOTLESS_USER"], "scripts/testenv sets up the rootless user")
        let pw = try #require(getpwnam(user))
        let (uid, gid) = (pw.pointee.pw_uid, pw.pointee.pw_gid)
        let userHome = String(cString: pw.pointee.pw_dir)
        let base = userHome + "/ccdeck-e2e-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let own = base + "/project"
        try FileManager.default.createDirectory(atPath: own, withIntermediateDirectories: true)
        for path in [base, own] { chown(path, uid, gid) }
        // The build folder may sit where the user cannot reach it (a CI clone under a private folder).
        let binary = base + "/ccdeck"
        // Copied by `install`, whose descriptor on the new file dies with it: a copy written from
        // this process could be inherited by a child another test spawns meanwhile, and running
        // the copy would then fail "Text file busy".
        func install(_ source: String, _ target: String) throws {
            let out = try ProcessRunner.run(Command("install", ["-m", "755", source, target]), timeout: 60)
            #expect(out.status.succeeded, "\(out.stderr)")
        }
        try install(TestPaths.ccdeckBinary, binary)
        // Its egress bridge beside it: the run is held to the allowlist (no --network=host), so the
        // agent reaches the model through the proxy's socket from inside the user namespace.
        try install((TestPaths.ccdeckBinary as NSString).deletingLastPathComponent + "/ccdeck-netbridge", base + "/ccdeck-netbridge")
        let shared = home.path + "/shared-\(UUID().uuidString.prefix(8))"  // root's, mode 1777
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        chmod(shared, 0o1777)
        chmod(home.path, 0o755)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let canary = EngineEnvironment.canaryToken()
        // runuser keeps the environment given here (not a login): the token travels in it, never in argv.
        var env = EngineEnvironment.runEnvironment(home: userHome, model: model, token: canary)
        env["XDG_STATE_HOME"] = base + "/state"
        env["DOCKER_HOST"] = nil
        env["CONTAINERS_CONF"] = nil
        func asUser(_ workspace: String) throws -> CCDeckInvocation {
            let args = ["-u", user, "--", binary, "run", "--mode", "podman", "--image", EngineEnvironment.testImage]
                + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] } + ["--workspace", workspace]
            let out = try ProcessRunner.run(Command("runuser", args, environment: env), timeout: 300)
            return CCDeckInvocation(status: out.status, stdout: out.stdout, stderr: out.stderr)
        }
        let watcher = ArgvWatcher(needle: canary)
        let ok = try asUser(own)
        let (hits, _) = watcher.stop()
        #expect(hits.isEmpty, "token in argv: \(hits)")
        #expect(ok.status == .exited(0), "\(ok.output)")
        #expect(ok.stderr.contains("you (uid \(uid)) outside"), "\(ok.stderr)")
        for name in ["hello.txt", "bash-ran.txt"] {
            #expect(FileOwner.of(own + "/" + name) == FileOwner(uid: uid, gid: gid), "\(name) owned by the wrong user")
        }
        let record = try #require(RunStore(root: base + "/state/ccdeck").list().first)
        #expect(record.egress?.enforcement == .allowlist && (record.egress?.allowedConnections ?? 0) >= 3, "\(String(describing: record.egress))")
        let refused = try asUser(shared)
        #expect(refused.status == .exited(2), "\(refused.output)")
        #expect(refused.stderr.contains("rootless podman writes files as you (uid \(uid)), but \(shared) belongs to uid 0"))
        let cannot = try asUser("/root")
        #expect(cannot.status == .exited(2) && cannot.stderr.contains("/root is not writable by you (uid \(uid))"),
                "\(cannot.output)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: shared))?.isEmpty == true)
    }

    /// `--timeout`: a model that holds its answer past the deadline; the run is stopped, failed
    /// with that reason, and its container removed.
    @Test func aRunPastItsTimeoutIsStoppedAndFailed() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 6)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let started = Date()
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker", extra: ["--timeout", "2s"]), environment: env)
        #expect(r.status == .exited(1), "\(r.output)")
        #expect(Date().timeIntervalSince(started) < 30)
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .failed && record.timeout == 2, "\(record)")
        #expect(record.reason?.hasPrefix("timed out: no result within its --timeout of 2s") == true, "\(record.reason ?? "-")")
        #expect(try containers("docker", run: record.id).isEmpty)
        let bad = try CCDeckInvocation.run(["run", "--mode", "docker", "--timeout", "soon"], environment: env)
        #expect(bad.status == .exited(2) && bad.stderr.contains("--timeout takes a duration like 90s"), "\(bad.output)")
    }

    @Test(arguments: ["docker", "podman"])
    func ctrlCStopsTheRunAndRemovesItsContainer(engine: String) throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 60)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let r = try CCDeckInterrupted.run(EngineEnvironment.runArguments(engine: engine), environment: env,
                                          when: "session started") { kill($0.pid, SIGINT) }
        let out = r.stdout
        #expect(r.acted)
        #expect(r.status == .exited(130), "\(out)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .stopped)
        #expect(out.contains("■ run \(record.id) stopped"))
        #expect(try containers(engine, run: record.id).isEmpty)
    }
}

/// Setup errors: a clear line, exit status 2, never a stack trace.
/// These need no engine: they run in every `swift test`.
@Suite(.serialized)
struct SetupErrorEndToEndTests: SetupErrorHarness {
    let home = TemporaryDirectory("ccdeck-e2e-setup")

    @Test func dockerDaemonDown() throws {
        var env = EngineEnvironment.runEnvironment(home: home.path, model: nil, token: EngineEnvironment.canaryToken())
        env["DOCKER_HOST"] = "unix://" + home.path + "/no-daemon.sock"
        let r = try ccdeck(EngineEnvironment.runArguments(engine: "docker"), env: env)
        expectCleanError(r, contains: "docker is not available")
        let auto = try ccdeck(["run", "--mode", "auto"], env: env.merging(["PATH": home.path + "/empty"]) { $1 })
        expectCleanError(auto, contains: "no backend that can run is ready")
    }

    @Test func noToken() throws {
        let r = try ccdeck(EngineEnvironment.runArguments(engine: "docker"),
                           env: EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil))
        expectCleanError(r, contains: "no Claude Code token found")
    }

    @Test func badArguments() throws {
        expectCleanError(try ccdeck(["run", "--mode", "nope"]), contains: "nope")
        expectCleanError(try ccdeck(["run", "--prompt", " "]), contains: "--prompt is empty")
        expectCleanError(try ccdeck(["run", "--pass-env", "A=b"]), contains: "variable name")
        expectCleanError(try ccdeck(["run", "--workspace", "/no/such/dir"]), contains: "/no/such/dir: no such folder")
        // The same checks as the dashboard's launch form: a file, a relative name that is no folder.
        let file = home.write("a-file", "x")
        expectCleanError(try ccdeck(["run", "--workspace", file]), contains: "is a file, not a folder")
        expectCleanError(try ccdeck(["run", "--workspace", "volume-name"]), contains: "volume-name")
        expectCleanError(try ccdeck(["run", "--workspace", "/tmp/a,b:c"]), contains: "cannot be mounted")
        expectCleanError(try ccdeck(["runs", "show", "no-such-run"]), contains: "no run with id no-such-run")
        expectCleanError(try ccdeck(["frobnicate"]), contains: "frobnicate")
    }

    @Test func unwritableStateAndMalformedKeyConfig() throws {
        var env = EngineEnvironment.runEnvironment(home: home.path, model: nil, token: EngineEnvironment.canaryToken())
        env["XDG_STATE_HOME"] = "/proc/ccdeck-nope"
        expectCleanError(try ccdeck(["run", "--mode", "podman"], env: env), contains: "cannot create the run under /proc/ccdeck-nope")
        let config = home.path + "/config/ccdeck"
        try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
        try "launch = n\nstop = n\n".write(toFile: config + "/keys.conf", atomically: true, encoding: .utf8)
        var env2 = EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil)
        env2["XDG_CONFIG_HOME"] = home.path + "/config"
        expectCleanError(try ccdeck(["dashboard"], env: env2), contains: "keys.conf: line 2: key n is already bound to launch")
        // Without a terminal the dashboard says so.
        expectCleanError(try ccdeck(["dashboard"]), contains: "the dashboard needs a terminal")
    }

    @Test func malformedDotenvInTheWorkingDirectory() throws {
        let dir = home.path + "/project"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "CLAUDE_CODE_OAUTH_TOKEN='sk-ant-oat01-SECRETSECRETSECRET\n".write(toFile: dir + "/.env", atomically: true, encoding: .utf8)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil)
        let out = try ProcessRunner.run(Command("sh", ["-c", "cd \"$1\" && exec \"$2\" token show", "sh", dir, TestPaths.ccdeckBinary],
                                                environment: env), timeout: 30)
        #expect(out.status == .exited(2))
        #expect(out.stderr.contains("malformed .env file") && out.stderr.contains("line 1: unterminated single quote"))
        #expect(!out.stderr.contains("SECRET"))
    }
}

/// Setup answers that need the engines: both ready, an image that is not there.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct EngineSetupEndToEndTests: SetupErrorHarness {
    let home = TemporaryDirectory("ccdeck-e2e-engine-setup")

    @Test func backendsSeeBothEnginesReady() throws {
        let r = try ccdeck(["backends", "--json"])
        #expect(r.status == .exited(0))
        let list = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: list.map { ($0["backend"] as! String, $0) })
        #expect(byName["docker"]?["state"] as? String == "ready")
        #expect(byName["podman"]?["state"] as? String == "ready")
        #expect(Set(byName.keys) == ["docker", "podman", "sandbox", "fly", "incus", "local"])
        let table = try ccdeck(["doctor"])
        #expect(table.stdout.hasPrefix("BACKEND"))
        // A bare `ccdeck` (until the dashboard) shows the same table and a hint.
        let bare = try ccdeck([])
        #expect(bare.status == .exited(0), "\(bare.output)")
        #expect(bare.stdout.hasPrefix("BACKEND") && bare.stdout.contains("ccdeck run --mode auto"))
    }


    @Test func missingImageIsASetupError() throws {
        let r = try ccdeck(["run", "--mode", "podman", "--image", "ccdeck-no-such-image:1"])
        expectCleanError(r, contains: "ccdeck-no-such-image:1")
    }
}

/// Runs the real `ccdeck` and checks an error is one clear line with exit status 2.
protocol SetupErrorHarness {
    var home: TemporaryDirectory { get }
}

extension SetupErrorHarness {
    func ccdeck(_ args: [String], env: [String: String]? = nil) throws -> CCDeckInvocation {
        try CCDeckInvocation.run(args, environment: env ?? EngineEnvironment.runEnvironment(home: home.path, model: nil,
                                                                                               token: EngineEnvironment.canaryToken()))
    }

    func expectCleanError(_ r: CCDeckInvocation, contains text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == .exited(2), "\(r.output)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(text), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(!r.output.contains("Fatal error") && !r.output.contains("Stack dump") && !r.output.contains("0x0000"),
                sourceLocation: sourceLocation)
    }
}

/// Building images: the CLI from a Dockerfile, and the missing-image path `ccdeck run` takes.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct ImageEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-image")

    func removeImage(_ engine: String, _ tag: String) {
        _ = try? ProcessRunner.run(Command(engine, ["rmi", "-f", tag], environment: EngineEnvironment.host), timeout: 60)
    }

    @Test(arguments: ["docker", "podman"])
    func imageBuildFromAFile(engine: String) throws {
        let tag = "ccdeck-e2e-built:\(engine)"
        removeImage(engine, tag)
        defer { removeImage(engine, tag) }
        let dockerfile = home.write("ctx/Dockerfile", "FROM \(EngineEnvironment.testImage)\nCOPY note.txt /home/agent/note.txt\n")
        home.write("ctx/note.txt", "from the context folder\n")
        let r = try CCDeckInvocation.run(["image", "build", "--runtime", engine, "--file", dockerfile, "--tag", tag],
                                         environment: EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil))
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(r.stdout.contains("built \(tag)"))
        // Nothing was written into the user's context folder.
        #expect(try FileManager.default.contentsOfDirectory(atPath: home.path + "/ctx").sorted() == ["Dockerfile", "note.txt"])
        let inspect = try ProcessRunner.run(Command(engine, ["image", "inspect", tag], environment: EngineEnvironment.host), timeout: 30)
        #expect(inspect.status == .exited(0))
    }

    /// podman's start is its image check (`--pull=never`, no look beforehand): a missing image
    /// is built when the run may build it, and the run starts again and succeeds.
    @Test func aPodmanRunBuildsItsMissingImageThenRuns() throws {
        let tag = "ccdeck-e2e-startbuild:podman"
        removeImage("podman", tag)
        defer { removeImage("podman", tag) }
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let token = try TokenResolver(environment: env).resolve()
        var notices: [String] = []
        let driver = RunDriver(backend: ContainerBackend(.podman, environment: env), store: RunStore(environment: env),
                               token: token, environment: env) { update in
            if case .notice(let text) = update { notices.append(text) }
        }
        let request = RunRequest(prompt: "Write hello.txt and run bash.", image: tag,
                                 buildIfMissing: ImageBuild(dockerfile: "FROM \(EngineEnvironment.testImage)\nLABEL ccdeck.e2e=startbuild\n"),
                                 runtimeArguments: ["--network=host"], passEnvironment: EngineEnvironment.passThrough)
        let record = try driver.run(request)
        #expect(record.state == .succeeded, "\(record.reason ?? "") \(notices)")
        #expect(notices.contains { $0.contains("not found in podman: building it") })
        #expect(try String(contentsOfFile: record.workspace + "/hello.txt", encoding: .utf8) == "hello from ccdeck\n")
        // Without a way to build it, the refusal says what to do.
        let bare = RunDriver(backend: ContainerBackend(.podman, environment: env), store: RunStore(environment: env),
                             token: token, environment: env) { _ in }
        #expect {
            _ = try bare.run(RunRequest(prompt: "x", image: "ccdeck-e2e-none:podman", runtimeArguments: ["--network=host"]))
        } throws: { "\($0)".contains("ccdeck image build") }
    }

    @Test(arguments: [BackendKind.docker, .podman])
    func aMissingImageIsBuiltOnce(kind: BackendKind) throws {
        let tag = "ccdeck-e2e-autobuild:\(kind.rawValue)"
        let engine = kind.rawValue
        removeImage(engine, tag)
        defer { removeImage(engine, tag) }
        let backend = ContainerBackend(kind == .docker ? .docker : .podman, environment: EngineEnvironment.host)
        let build = ImageBuild(dockerfile: "FROM \(EngineEnvironment.testImage)\nLABEL ccdeck.e2e=autobuild\n")
        var lines: [String] = []
        #expect(try backend.ensureImage(tag, buildIfMissing: build) { lines.append($0) } == true)
        #expect(lines.contains { $0.contains("building it") })
        #expect(try backend.ensureImage(tag, buildIfMissing: build) { _ in } == false)
    }
}
