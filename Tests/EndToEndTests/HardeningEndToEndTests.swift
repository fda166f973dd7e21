import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What a hostile afternoon broke, each class with cases beyond the first example: the prompt
/// arrives whole, a stop is never lost, ccdeck never dies on its own output, nothing is lost on a
/// full disk, nothing from outside reaches the terminal raw, the reason names the real error.
/// Real engines, the real Claude Code CLI and the scripted model.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct HardeningEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-hard")

    func containers(_ engine: String, run id: String) throws -> String {
        let out = try ProcessRunner.run(Command(engine, ["ps", "-a", "-q", "--filter", "label=ccdeck.run=\(id)"],
                                                environment: EngineEnvironment.host), timeout: 30)
        return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func hasNoEscape(_ text: String) -> Bool {
        !text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || (0x80...0x9F).contains($0.value) }
    }

    // MARK: the prompt

    /// Bigger than one argv entry may be, starting with a dash, with front matter: it arrives whole,
    /// and the record keeps only its beginning (the whole of it beside the record).
    @Test(arguments: ["docker", "podman"])
    func aLargeMarkdownPromptArrivesWhole(engine: String) throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        var prompt = "---\ntitle: big task\n---\n- fix bug\n- add tests\n--model=nope\n"
        while prompt.utf8.count < 200 * 1024 { prompt += "- item \(prompt.utf8.count): keep going\n" }
        let file = home.write("task-\(engine).md", prompt)
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: engine, extra: ["--prompt-file", file]),
                                         environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(model.received(prompt: prompt), "the agent did not receive the prompt whole")
        let store = RunStore(environment: env)
        let record = try #require(store.list().first)
        #expect(record.promptBytes == prompt.utf8.count)
        #expect(record.prompt.count <= RunRecord.promptPreviewLength + 1)
        #expect(try String(contentsOfFile: store.promptPath(for: record.id), encoding: .utf8) == prompt)
        let recordSize = try FileManager.default.attributesOfItem(atPath: store.recordPath(for: record.id))[.size] as? Int ?? 0
        #expect(recordSize < 16 * 1024, "record.json holds \(recordSize) bytes")
    }

    // MARK: a stop is never lost

    /// A SIGTERM that arrives while the engine is still creating the container: the first `kill`
    /// finds nothing, so it is asked again until the container is down. The run ends promptly.
    @Test(arguments: [("docker", SIGTERM), ("podman", SIGTERM), ("docker", SIGINT), ("podman", SIGHUP)])
    func aSignalDuringCreationStillStopsTheRun(engine: String, signal: Int32) throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 30)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let child = try ChildProcess.spawn(Command(TestPaths.ccdeckBinary, EngineEnvironment.runArguments(engine: engine),
                                                   environment: env))
        var sent = false
        var errText = ""
        let status = ProcessRunner.stream(child, onStdoutLine: { _ in }, onStderrLine: { line in
            errText += String(decoding: line, as: UTF8.self) + "\n"
            // `run … in ENGINE` is printed the moment the engine's client is started.
            if !sent && errText.contains("ccdeck: run ") {
                sent = true
                kill(child.pid, signal)
            }
        })
        #expect(sent)
        #expect(status == .exited(128 + signal), "\(errText)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .stopped, "\(record.reason ?? "")")
        #expect(record.wallTime.map { $0 < 25 } == true, "the run went on: \(record.wallTime ?? -1)s")
        #expect(try containers(engine, run: record.id).isEmpty)
        #expect(model.requests.filter { $0["kind"] as? String == "main" }.count <= 1)
    }

    /// An engine whose `kill` hangs: the stop is asked again, then after the deadline ccdeck ends
    /// the client and removes the container, and the record says exactly that. The daemon is
    /// named by a docker context, which ccdeck leaves to the CLI (it asks a socket itself only
    /// where the CLI would connect to a local one): the CLI path, hung.
    @Test func anEngineWhoseKillHangsStillGetsTheRunStopped() throws {
        let bin = TemporaryDirectory("ccdeck-hung-kill")
        let real = try #require(ChildProcess.resolve("docker", environment: EngineEnvironment.host))
        bin.write("docker", """
            #!/bin/sh
            if [ "$1" = kill ]; then sleep 60; exit 1; fi
            exec "\(real)" "$@"
            """, mode: 0o755)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 60)
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let daemon = try #require(env["DOCKER_HOST"])
        let context = try ProcessRunner.run(Command(real, ["context", "create", "ccdeck-hung", "--docker", "host=" + daemon],
                                                    environment: env), timeout: 30)
        #expect(context.status.succeeded, "\(context.stderr)")
        env["DOCKER_HOST"] = nil
        env["DOCKER_CONTEXT"] = "ccdeck-hung"
        env["PATH"] = bin.path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let r = try CCDeckInterrupted.run(EngineEnvironment.runArguments(engine: "docker"), environment: env,
                                          when: "session started") { kill($0.pid, SIGTERM) }
        #expect(r.status == .exited(143), "\(r.stdout)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .stopped)
        #expect(record.reason?.contains("did not stop the container within 10s") == true, "\(record.reason ?? "")")
        #expect(try containers("docker", run: record.id).isEmpty)
        #expect(record.phases.containerStarted != nil, "asked of the CLI beside the run")
    }

    /// A stop asked from a second ccdeck (a dashboard that does not drive the run) is recorded by
    /// the driving one as a stop, not a failure.
    @Test func aStopFromAnotherCcdeckIsRecordedAsAStop() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 30)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let child = try ChildProcess.spawn(Command(TestPaths.ccdeckBinary, EngineEnvironment.runArguments(engine: "docker"),
                                                   environment: env))
        var out = ""
        var stopped = false
        let status = ProcessRunner.stream(child, onStdoutLine: { line in
            out += String(decoding: line, as: UTF8.self) + "\n"
            if !stopped && out.contains("session started") {
                stopped = true
                // What the dashboard's `s` does for a run it does not drive.
                let store = RunStore(environment: env)
                if let record = store.list().first {
                    store.recordStopRequest(record.id, by: "another ccdeck (a test)")
                    _ = ContainerBackend(.docker, environment: EngineEnvironment.host).stop(SandboxRef(record))
                }
            }
        })
        #expect(stopped && status == .exited(1), "\(out)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .stopped && record.reason == "stopped from another ccdeck (a test)", "\(record.reason ?? "")")
    }

    // MARK: ccdeck never dies on its own output

    /// A reader that goes away (`| head -c 10`) or a full device: one error line, exit 2, and the
    /// run is still stopped, cleaned up and recorded.
    @Test(arguments: ["pipe", "full"])
    func aClosedOrFullStdoutStopsAndRecordsTheRun(kind: String) throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 1)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let args = EngineEnvironment.runArguments(engine: "docker").map { "'\($0)'" }.joined(separator: " ")
        let script = kind == "pipe"
            ? "\"$0\" \(args) | head -c 10 >/dev/null; echo \"STATUS ${PIPESTATUS[0]}\" >&2"
            : "\"$0\" \(args) >/dev/full; echo \"STATUS $?\" >&2"
        let out = try ProcessRunner.run(Command("bash", ["-c", script, TestPaths.ccdeckBinary], environment: env), timeout: 300)
        #expect(out.stderr.contains("STATUS 2"), "\(out.stderr)")
        #expect(out.stderr.contains("cannot write to standard output"), "\(out.stderr)")
        #expect(!out.stderr.contains("Fatal error") && !out.stderr.contains("Stack dump"))
        let record = try #require(RunStore(environment: env).list().first)
        #expect(!record.state.isLive, "the record stayed \(record.state)")
        #expect(try containers("docker", run: record.id).isEmpty)
    }

    // MARK: nothing is lost when the disk is full

    /// The state folder on a small tmpfs that fills up mid-run: the run is stopped, the record
    /// says which folder is full, and nothing is left running.
    @Test func aDiskThatFillsMidRunStopsTheRunAndSaysWhere() throws {
        let mount = home.path + "/small"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let mounted = try ProcessRunner.run(Command("mount", ["-t", "tmpfs", "-o", "size=20m", "tmpfs", mount],
                                                    environment: EngineEnvironment.host), timeout: 30)
        try #require(mounted.status.succeeded, "mount: \(mounted.stderr)")
        defer { _ = try? ProcessRunner.run(Command("umount", [mount], environment: EngineEnvironment.host), timeout: 30) }
        let model = try ModelServer(scenario: "big_text", logDirectory: home.path, delay: 3)
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        env["XDG_STATE_HOME"] = mount
        // Take every byte left, after the run has started.
        let r = try CCDeckInterrupted.run(EngineEnvironment.runArguments(engine: "docker"), environment: env,
                                          when: "session started") { _ in
            _ = try? ProcessRunner.run(Command("sh", ["-c", "cat /dev/zero > '\(mount)/filler' 2>/dev/null; true"],
                                               environment: EngineEnvironment.host), timeout: 60)
        }
        #expect(r.acted)
        #expect(r.status != .exited(0), "\(r.stdout)")
        let record = try #require(RunStore(root: mount + "/ccdeck").list().first)
        #expect(!record.state.isLive)
        #expect(record.reason?.contains("is full") == true && record.reason?.contains(mount) == true, "\(record.reason ?? "")")
        #expect(try containers("docker", run: record.id).isEmpty)

        // And a store with no room at all refuses to start, saying where.
        let again = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker"), environment: env)
        #expect(again.status == .exited(2))
        #expect(again.stderr.contains("the disk holding it is full"), "\(again.stderr)")
    }

    /// The run's folder deleted under a live run: the run is stopped and nothing is left running.
    @Test func aRunFolderDeletedMidRunStopsTheRun() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 2)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let child = try ChildProcess.spawn(Command(TestPaths.ccdeckBinary, EngineEnvironment.runArguments(engine: "docker"),
                                                   environment: env))
        var out = ""
        var err = ""
        var removed: String?
        let status = ProcessRunner.stream(child, onStdoutLine: { line in
            out += String(decoding: line, as: UTF8.self) + "\n"
            if removed == nil && out.contains("session started"), let record = RunStore(environment: env).list().first {
                removed = record.id
                try? FileManager.default.removeItem(atPath: RunStore(environment: env).directory(for: record.id))
            }
        }, onStderrLine: { err += String(decoding: $0, as: UTF8.self) + "\n" })
        let id = try #require(removed)
        #expect(status != .exited(0), "\(out)")
        #expect(out.contains("was deleted") || err.contains("was deleted"), "\(out)\n\(err)")
        #expect(try containers("docker", run: id).isEmpty)
    }

    // MARK: nothing from outside reaches the terminal raw

    /// A workspace whose name carries a title change and a clear-screen, and a prompt with C1
    /// controls: `run`, `runs ls`, `runs show` and every `--json` print them inert.
    @Test func hostileNamesArePrintedInertEverywhere() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let workspace = home.path + "/ws-\u{1B}]0;pwned\u{07}\u{1B}[2J-end"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o777])
        let prompt = "write hello \u{9B}31m and \u{1B}[5m blink"
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker",
                                                                         extra: ["--workspace", workspace, "--prompt", prompt]),
                                         environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(hasNoEscape(r.output), "raw escape in run's output")
        #expect(r.stderr.contains("␛]0;pwned␇"), "\(r.stderr)")
        for args in [["runs", "ls"], ["runs", "show", "latest"], ["runs", "ls", "--json"], ["runs", "show", "latest", "--json"]] {
            let out = try CCDeckInvocation.run(args, environment: env)
            #expect(out.status == .exited(0))
            #expect(hasNoEscape(out.output), "raw escape in \(args.joined(separator: " "))")
        }
        let json = try CCDeckInvocation.run(["runs", "show", "latest", "--json"], environment: env)
        #expect(json.stdout.contains("\\u009b") && json.stdout.contains("\\u001b"), "\(json.stdout)")
    }

    /// A folder whose name holds `:` (which `-v` would split) is mounted whole, in both engines.
    @Test(arguments: ["docker", "podman"])
    func aFolderNameWithAColonIsMounted(engine: String) throws {
        let workspace = home.path + "/proj:\(engine):v2"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o777])
        chown(workspace, 1000, 1000)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: engine, extra: ["--workspace", workspace]),
                                         environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(FileManager.default.fileExists(atPath: workspace + "/hello.txt"))
    }

    // MARK: the reason names the real error

    /// The engine refusing its arguments (exit 125) is a setup error with the engine's own line,
    /// not "Run 'docker run --help' for more information".
    @Test(arguments: ["docker", "podman"])
    func anEngineRefusingItsArgumentsIsASetupErrorInItsOwnWords(engine: String) throws {
        let env = EngineEnvironment.runEnvironment(home: home.path, model: nil, token: EngineEnvironment.canaryToken())
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: engine, extra: ["--runtime-arg=--no-such-flag"]),
                                         environment: env)
        #expect(r.status == .exited(2), "\(r.output)")
        #expect(r.stderr.contains("refused to start the container") && r.stderr.contains("no-such-flag"), "\(r.stderr)")
        let errorLine = r.stderr.split(separator: "\n").first { $0.hasPrefix("ccdeck: error:") } ?? ""
        #expect(errorLine.contains("no-such-flag") && !errorLine.contains("--help"), "\(errorLine)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .failed && record.reason?.contains("no-such-flag") == true)
        #expect(try containers(engine, run: record.id).isEmpty)
    }

    /// A stop asked while the runner image builds ends the build at once.
    @Test func aStopDuringAnImageBuildEndsItAtOnce() throws {
        let tag = "ccdeck-e2e-slowbuild:1"
        let backend = ContainerBackend(.docker, environment: EngineEnvironment.host)
        defer { _ = try? ProcessRunner.run(Command("docker", ["rmi", "-f", tag], environment: EngineEnvironment.host), timeout: 60) }
        let fds = try #require(Pipe2.make())
        defer { close(fds.read); close(fds.write) }
        let cancel = Cancellation(fd: fds.read)
        let started = Date()
        let writer = Thread {
            usleep(1_500_000)
            var byte: UInt8 = 1
            _ = write(fds.write, &byte, 1)
        }
        writer.start()
        let build = ImageBuild(dockerfile: "FROM \(EngineEnvironment.testImage)\nUSER root\nRUN sleep 120\n")
        #expect(throws: BackendError.cancelled) {
            _ = try backend.ensureImage(tag, buildIfMissing: build, cancel: cancel) { _ in }
        }
        #expect(Date().timeIntervalSince(started) < 60, "the build was not interrupted")
    }
}

/// The same classes where no engine is needed: these run in every `swift test`.
@Suite(.serialized)
struct HardeningCommandLineTests {
    let home = TemporaryDirectory("ccdeck-hard-cli")

    func env(_ extra: [String: String] = [:]) -> [String: String] {
        CCDeckInvocation.baseEnvironment(home: home.path).merging(extra) { $1 }
    }

    @Test func listingsToAFullOrClosedStdoutSayOneLine() throws {
        let store = RunStore(environment: env())
        var record = RunRecord(id: "20261129-000000-aaaa", mode: .docker, image: "i", sandbox: "ccdeck-x", workspace: "/w",
                               workspaceIsTemporary: false, prompt: "p", keep: false, createdAt: Date(), driverPID: 1,
                               host: "h", tokenSource: nil)
        record.state = .succeeded
        try store.create(record).release()
        for command in ["runs ls", "runs ls --json", "runs show latest", "backends", "token show"] {
            let out = try ProcessRunner.run(Command("bash", ["-c", "\"$0\" \(command) >/dev/full; echo \"STATUS $?\" >&2",
                                                             TestPaths.ccdeckBinary],
                                                    environment: env(["CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-" + String(repeating: "z", count: 60)])),
                                            timeout: 60)
            #expect(out.stderr.contains("cannot write to standard output"), "\(command): \(out.stderr)")
            #expect(out.stderr.contains("STATUS 2") || out.stderr.contains("STATUS 1"), "\(command): \(out.stderr)")
            #expect(!out.stderr.contains("Fatal error"), "\(command): \(out.stderr)")
        }
    }

    @Test func aStateHomeThatIsAFileIsSaidInWords() throws {
        let file = home.write("state-file", "not a folder")
        let r = try CCDeckInvocation.run(["run", "--mode", "docker"],
                                         environment: env(["XDG_STATE_HOME": file,
                                                           "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-" + String(repeating: "z", count: 60)]))
        #expect(r.status == .exited(2), "\(r.output)")
        #expect(r.stderr.contains("it is a file, not a folder"), "\(r.stderr)")
        #expect(!r.stderr.contains("NSCocoaErrorDomain"))
    }

    @Test func aPromptWithANulByteIsRefused() throws {
        let file = home.write("nul.md", "before\u{0}after")
        let r = try CCDeckInvocation.run(["run", "--mode", "docker", "--prompt-file", file],
                                         environment: env(["CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-" + String(repeating: "z", count: 60)]))
        #expect(r.status == .exited(2))
        #expect(r.stderr.contains("NUL byte"), "\(r.stderr)")
    }
}
