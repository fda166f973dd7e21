@testable import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Mode D against a real Incus daemon (started by scripts/testenv: Debian backports, a `dir`
/// pool, no network bridge, the test image imported from a local root filesystem holding the
/// real Claude Code CLI), the scripted model reached through a `proxy` device.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs incusd from scripts/testenv (run scripts/test)"))
struct IncusEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-incus")

    func incus(_ args: [String]) throws -> ProcessRunner.Output {
        var env = EngineEnvironment.host
        env["LC_ALL"] = "C"
        return try ProcessRunner.run(Command("incus", args, environment: env), timeout: 60)
    }

    func instances(store: RunStore) throws -> [String] {
        try incus(["list", "user.ccdeck.store=\(store.storeID)", "--format", "csv", "-c", "n"]).stdout
            .split(separator: "\n").map(String.init)
    }

    func project(_ name: String, owner: UInt32) throws -> String {
        let path = home.path + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        chown(path, owner, owner)
        return path
    }

    /// Writes the file, owned by the folder's owner; the instance stays for the next run on the
    /// workspace, which reuses it; the token is in no argv, no instance config, no record or output.
    @Test func aRunWritesTheWorkspaceAndTheNextRunReusesTheInstance() throws {
        let workspace = try project("project", owner: 4242)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let canary = EngineEnvironment.canaryToken()
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: canary)
        let store = RunStore(environment: env)
        defer { for name in (try? instances(store: store)) ?? [] { _ = try? incus(["delete", "-f", name]) } }

        let watcher = ArgvWatcher(needle: canary)
        let first = try CCDeckInvocation.run(EngineEnvironment.incusArguments(model: model, extra: ["--workspace", workspace]),
                                             environment: env)
        let (hits, scans) = watcher.stop()
        #expect(first.status == .exited(0), "\(first.output)")
        #expect(hits.isEmpty && scans > 0, "token in argv: \(hits)")
        for name in ["hello.txt", "bash-ran.txt"] {
            #expect(FileOwner.of(workspace + "/" + name) == FileOwner(uid: 4242, gid: 4242), "\(name)")
        }
        let record = try #require(store.list().first)
        #expect(record.state == .succeeded && record.mode == .incus && record.isolation == .systemContainer)
        #expect(record.credentials?.delivery == .stdin)
        let names = try instances(store: store)
        #expect(names == [record.sandbox], "the workspace's instance stays: \(names)")
        let config = try incus(["config", "show", record.sandbox]).stdout
        #expect(!config.contains(canary) && config.contains("user.ccdeck.persistent: \"true\""))
        // Nothing inside holds it either: it came on stdin, into the agent's environment only.
        let grep = try incus(["exec", record.sandbox, "--", "grep", "-rl", canary, "/tmp", "/home", "/root", "/run", "/workspace"])
        #expect(grep.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "token in \(grep.stdout)")
        for file in FileManager.default.enumerator(atPath: store.root)?.allObjects as? [String] ?? [] {
            let data = FileManager.default.contents(atPath: store.root + "/" + file) ?? Data()
            #expect(!String(decoding: data, as: UTF8.self).contains(canary), "token in \(file)")
        }
        #expect(!first.output.contains(canary))

        let second = try CCDeckInvocation.run(EngineEnvironment.incusArguments(model: model, extra: ["--workspace", workspace]),
                                              environment: env)
        #expect(second.status == .exited(0), "\(second.output)")
        #expect(second.stderr.contains("reusing instance \(record.sandbox)"))
        let again = try #require(store.list().first)
        #expect(again.sandbox == record.sandbox && again.id != record.id)
        #expect(try instances(store: store) == [record.sandbox])
        // Listed as persistent, not as a leftover, and removable.
        let resources = try IncusBackend(environment: EngineEnvironment.host).resources(store: store.storeID)
        #expect(resources.count == 1 && resources[0].persistent && resources[0].state.contains("persistent"))
    }

    @Test func anEphemeralRunLeavesNothingAndAFailingRunSaysWhy() throws {
        let workspace = try project("ephemeral", owner: 1000)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let store = RunStore(environment: env)
        let r = try CCDeckInvocation.run(EngineEnvironment.incusArguments(model: model, extra: ["--workspace", workspace, "--ephemeral"]),
                                         environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(FileOwner.of(workspace + "/hello.txt") == FileOwner(uid: 1000, gid: 1000))
        #expect(try instances(store: store).isEmpty)

        let failing = try ModelServer(scenario: "http401", logDirectory: home.path)
        let env401 = EngineEnvironment.runEnvironment(home: home.path, model: failing, token: EngineEnvironment.canaryToken())
        let f = try CCDeckInvocation.run(EngineEnvironment.incusArguments(model: failing, extra: ["--ephemeral"]), environment: env401)
        #expect(f.status == .exited(1), "\(f.output)")
        let record = try #require(RunStore(environment: env401).list().first)
        #expect(record.state == .failed && (record.reason ?? "").contains("401"), "\(record.reason ?? "")")
        #expect(try instances(store: store).isEmpty)
    }

    /// A run in a fresh workspace (no `--workspace`) can never be resumed there, so its instance
    /// is ephemeral even unasked: nothing is left per run.
    @Test func aFreshWorkspaceRunLeavesNoInstance() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let store = RunStore(environment: env)
        let r = try CCDeckInvocation.run(EngineEnvironment.incusArguments(model: model), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        let record = try #require(store.list().first)
        #expect(record.workspaceIsTemporary && FileManager.default.fileExists(atPath: record.workspace + "/hello.txt"))
        #expect(record.agentUser?.contains("an ephemeral instance") == true, "\(record.agentUser ?? "")")
        #expect(try instances(store: store).isEmpty)
    }

    @Test func setupErrorsAreOneLine() throws {
        let env = EngineEnvironment.runEnvironment(home: home.path, model: nil, token: EngineEnvironment.canaryToken())
        let missing = try CCDeckInvocation.run(["run", "--mode", "incus", "--image", "ccdeck-no-such-alias"], environment: env)
        #expect(missing.status == .exited(2))
        #expect(missing.stderr.contains("the incus image ccdeck-no-such-alias is missing: build it with `ccdeck image build --runtime incus"),
                "\(missing.stderr)")
        let runtimeArg = try CCDeckInvocation.run(["run", "--mode", "incus", "--runtime-arg=--network=host"], environment: env)
        #expect(runtimeArg.status == .exited(2) && runtimeArg.stderr.contains("incus does not take --runtime-arg"))
        let dockerDevice = try CCDeckInvocation.run(["run", "--mode", "docker", "--device", "a,proxy"], environment: env)
        #expect(dockerDevice.status == .exited(2) && dockerDevice.stderr.contains("docker does not take --device"))
        var down = env
        down["INCUS_SOCKET"] = home.path + "/no-incusd.socket"
        let b = try CCDeckInvocation.run(["backends", "--json"], environment: down)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as? [[String: Any]])
        let incus = try #require(list.first { $0["backend"] as? String == "incus" })
        #expect(incus["state"] as? String == "daemon-down", "\(incus)")
        let ready = try CCDeckInvocation.run(["backends", "--json"], environment: env)
        let readyList = try #require(try JSONSerialization.jsonObject(with: Data(ready.stdout.utf8)) as? [[String: Any]])
        let readyIncus = try #require(readyList.first { $0["backend"] as? String == "incus" })
        #expect(readyIncus["state"] as? String == "ready" && (readyIncus["detail"] as? String ?? "").contains("pool"))
    }

    /// A ccdeck killed mid-run: its run is lost-driver at once and its instance is found as ccdeck's.
    @Test func aKilledRunsInstanceIsFoundAsCcdecks() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 5)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let store = RunStore(environment: env)
        defer { for name in (try? instances(store: store)) ?? [] { _ = try? incus(["delete", "-f", name]) } }
        let killed = try CCDeckInterrupted.run(EngineEnvironment.incusArguments(model: model, extra: ["--ephemeral"]),
                                               environment: env, when: "session started") { kill($0.pid, SIGKILL) }
        #expect(killed.acted)
        let record = try #require(store.list().first)
        #expect(store.driverLost(record))
        let found = try IncusBackend(environment: EngineEnvironment.host).resources(store: store.storeID)
        #expect(found.map(\.runID) == [record.id], "\(found)")
        try IncusBackend(environment: EngineEnvironment.host).remove(SandboxRef(record))
        #expect(try instances(store: store).isEmpty)
    }

    /// The dashboard launches an Incus run from its launch form and streams it; the workspace's
    /// instance then shows in Orphans as persistent, and goes from there.
    @Test func theDashboardLaunchesStreamsAndRemovesAnIncusInstance() throws {
        let workspace = try project("dash", owner: 1000)
        // Each model turn takes 3 s: room to attach to the live run.
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 3)
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        env["TERM"] = "xterm-256color"
        let store = RunStore(environment: env)
        defer { for name in (try? instances(store: store)) ?? [] { _ = try? incus(["delete", "-f", name]) } }
        let pass = EngineEnvironment.passThrough.map { "--pass-env \($0)" }.joined(separator: " ")
        let tmux = try TmuxSession(width: 140, height: 40, environment: env, script: """
            "\(TestPaths.ccdeckBinary)" dashboard --image \(EngineEnvironment.incusImage) --device '\(EngineEnvironment.incusProxy(model))' \(pass)
            echo "EXIT:$?"
            exec sleep 600
            """)
        #expect(tmux.waitFor("incus ready") { $0.contains("✓ incus") && $0.contains("q quit") } != nil)
        try tmux.send("n")
        #expect(tmux.waitFor("Launch a run") != nil)
        try tmux.send("BTab")
        for _ in 0..<8 {
            if tmux.capture().contains("< incus >") { break }
            try tmux.send("Right")
            usleep(150_000)
        }
        #expect(tmux.waitFor("< incus >") != nil)
        try tmux.send("Tab", "Tab")
        try tmux.send(workspace, literal: true)
        try tmux.send("Enter")
        // Attach: a shell in the instance, in the workspace, as the agent's user; then back.
        #expect(tmux.waitFor("session started", timeout: 60) != nil)
        let attach = try tmux.attachRoundTrip(run: "echo inside-$((6*7)) $(id -u) $(pwd)", expect: "inside-42 1000 /workspace", back: "back from ccdeck-ws-")
        #expect(attach == nil, "\(attach ?? "")")
        #expect(tmux.waitFor("streamed and succeeded", timeout: 60) {
            $0.contains("→ Write /workspace/hello.txt") && $0.contains("succeeded")
        } != nil)
        #expect(FileOwner.of(workspace + "/hello.txt") == FileOwner(uid: 1000, gid: 1000))
        #expect(tmux.waitFor("persistent instance listed") { $0.contains("Orphans (1)") && $0.contains("persistent") } != nil)
        try tmux.send("BTab")  // runs → orphans
        try tmux.send("d")
        #expect(tmux.waitFor("Remove this orphan?") != nil)
        try tmux.send("y")
        #expect(tmux.waitFor("removed incus instance") != nil)
        #expect(tmux.waitFor("Orphans (0)") != nil)
        try tmux.send("q")
        #expect(tmux.waitFor("EXIT:0") != nil)
        #expect(try instances(store: store).isEmpty)
    }

    /// `ccdeck sandboxes ls` lists the instance with why it is there; `sandboxes rm` removes it,
    /// and refuses a name that is not ccdeck's.
    @Test func sandboxesListsAndRemovesFromTheCommandLine() throws {
        let workspace = try project("cli-rm", owner: 1000)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let store = RunStore(environment: env)
        defer { for name in (try? instances(store: store)) ?? [] { _ = try? incus(["delete", "-f", name]) } }
        let r = try CCDeckInvocation.run(EngineEnvironment.incusArguments(model: model, extra: ["--workspace", workspace]),
                                         environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        let name = try #require(store.list().first?.sandbox)
        let ls = try CCDeckInvocation.run(["sandboxes", "ls"], environment: env)
        #expect(ls.stdout.contains(name) && ls.stdout.contains("persistent"), "\(ls.output)")
        _ = try incus(["launch", EngineEnvironment.incusImage, "not-ccdecks-\(UUID().uuidString.prefix(6).lowercased())", "--ephemeral",
                       "-c", "raw.lxc=lxc.init.cmd=/ccdeck-init"])
        let foreign = try incus(["list", "not-ccdecks-", "--format", "csv", "-c", "n"]).stdout.split(separator: "\n").map(String.init)
        defer { for f in foreign { _ = try? incus(["delete", "-f", f]) } }
        let refused = try CCDeckInvocation.run(["sandboxes", "rm"] + foreign, environment: env)
        #expect(refused.status == .exited(1) && refused.stderr.contains("is not a sandbox of ccdeck's"), "\(refused.output)")
        #expect(try incus(["list", "not-ccdecks-", "--format", "csv", "-c", "n"]).stdout.split(separator: "\n").count == foreign.count)
        let rm = try CCDeckInvocation.run(["sandboxes", "rm", name], environment: env)
        #expect(rm.status == .exited(0) && rm.stdout.contains("removed incus instance \(name)"), "\(rm.output)")
        #expect(try instances(store: store).isEmpty)
    }

    /// An ephemeral instance is launched, run in and removed over incusd's socket, not by three
    /// CLI calls (each ~16 ms of client start, issue 15): the agent's exec by ccdeck-incusexec.
    /// So is `sandboxes rm` of a running persistent instance (stopped, then deleted).
    @Test func anEphemeralRunIsLaunchedAndRemovedOverTheSocket() throws {
        let workspace = try project("over-socket", owner: 1000)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let noted = try #require(NotedCommands("incus", in: home, environment: EngineEnvironment.runEnvironment(
            home: home.path, model: model, token: EngineEnvironment.canaryToken())))
        let env = noted.environment
        let store = RunStore(environment: env)
        defer { for name in (try? instances(store: store)) ?? [] { _ = try? incus(["delete", "-f", name]) } }
        let r = try CCDeckInvocation.run(EngineEnvironment.incusArguments(model: model, extra: ["--workspace", workspace, "--ephemeral"]),
                                         environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(noted.commands.isEmpty, "\(noted.commands)")
        let record = try #require(store.list().first)
        #expect(record.state == .succeeded && record.turns == 3)
        #expect(FileOwner.of(workspace + "/hello.txt") == FileOwner(uid: 1000, gid: 1000))
        #expect(try instances(store: store).isEmpty)
        #expect(try incus(["list", record.sandbox, "--format", "csv", "-c", "n"]).stdout.isEmpty)

        // A persistent instance, running after its run: `sandboxes rm` stops it and deletes it.
        let kept = try CCDeckInvocation.run(EngineEnvironment.incusArguments(model: model, extra: ["--workspace", workspace]),
                                            environment: env)
        #expect(kept.status == .exited(0), "\(kept.output)")
        let name = try #require(try instances(store: store).first)
        #expect(try incus(["list", name, "--format", "csv", "-c", "s"]).stdout.contains("RUNNING"))
        noted.clear()
        let rm = try CCDeckInvocation.run(["sandboxes", "rm", name], environment: env)
        #expect(rm.status == .exited(0) && rm.stdout.contains("removed incus instance \(name)"), "\(rm.output)")
        #expect(!noted.commands.contains("delete"), "\(noted.commands)")
        #expect(try instances(store: store).isEmpty)
        // Gone already: a second removal is no error (as `incus delete -f` of a missing one is not for ccdeck).
        #expect(try IncusBackend(environment: env).removeByAPI(name))
    }

    /// ccdeck-incusexec against a real incusd, as `incus exec -T` behaves: stdin of any size
    /// arrives whole and its end is seen, stdout and stderr come back apart, the exit status is
    /// the command's, SIGTERM reaches the command, and incusd's refusal is one line, status 1.
    @Test func theExecClientBehavesAsTheCLIDoes() throws {
        let name = "ccdeck-exec-\(UUID().uuidString.prefix(6).lowercased())"
        let launched = try incus(["launch", EngineEnvironment.incusImage, name, "--ephemeral", "-c", "raw.lxc=lxc.init.cmd=/ccdeck-init"])
        try #require(launched.status.succeeded, "\(launched.stderr)")
        defer { _ = try? incus(["delete", "-f", name]) }
        let client = (TestPaths.ccdeckBinary as NSString).deletingLastPathComponent + "/ccdeck-incusexec"
        /// The exec request for `script`, with its length first, as ccdeck writes it.
        func request(_ script: String) -> String {
            let body = #"{"command":["/bin/sh","-c",\#(DockerDirectRun.quote(script))],"wait-for-websocket":true,"interactive":false,"#
                + #""environment":{},"user":1000,"group":1000,"cwd":"/"}"#
            return "\(body.utf8.count)\n" + body
        }
        func exec(_ script: String, input: Data, instance: String? = nil) throws -> ProcessRunner.Output {
            try ProcessRunner.run(Command(client, ["/var/lib/incus/unix.socket", instance ?? name, "30"], environment: EngineEnvironment.host),
                                  input: Data(request(script).utf8) + input, timeout: 60)
        }
        let big = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let counted = try exec("wc -c; echo to-stderr >&2; exit 3", input: big)
        #expect(counted.status == .exited(3) && counted.stdout == "3000000\n" && counted.stderr == "to-stderr\n", "\(counted)")
        // A command that never reads its stdin still ends, its output whole.
        let unread = try exec("head -c 2000000 /dev/zero | wc -c", input: big)
        #expect(unread.status == .exited(0) && unread.stdout == "2000000\n", "\(unread)")

        // SIGTERM to the client reaches the command, once it runs (as the CLI forwards it).
        var env = EngineEnvironment.host
        env["PREFIX"] = request("trap 'echo got-term; exit 7' TERM; echo ready; sleep 30 & wait")
        env["CLIENT"] = client
        env["NAME"] = name
        let signalled = try ProcessRunner.run(Command("/bin/sh", ["-c", """
            d=$(mktemp -d); mkfifo "$d/in"; exec 4<>"$d/in"
            "$CLIENT" /var/lib/incus/unix.socket "$NAME" 30 < "$d/in" > "$d/out" & c=$!
            printf '%s' "$PREFIX" >&4
            i=0; until grep -q ready "$d/out" || [ $i -ge 300 ]; do sleep 0.1; i=$((i+1)); done
            kill -TERM $c; wait $c; echo "rc=$?"; cat "$d/out"; exec 4>&-; rm -rf "$d"
            """], environment: env), timeout: 90)
        #expect(signalled.stdout == "rc=7\nready\ngot-term\n", "\(signalled)")

        let refused = try exec("true", input: Data(), instance: "ccdeck-no-such-instance")
        #expect(refused.status == .exited(1) && refused.stderr.hasPrefix("Error: ") && refused.stderr.contains("not found")
                && refused.stderr.split(separator: "\n").count == 1, "\(refused)")
    }

    /// When incusd's socket is not ccdeck's to use (here: the default remote is another name, as
    /// it is for a remote daemon), the run launches and removes with the CLI, as before.
    @Test func withoutTheSocketTheCLILaunchesAndRemoves() throws {
        let conf = home.path + "/incus-conf"
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        home.write("incus-conf/config.yml", "default-remote: viaunix\nremotes:\n  viaunix:\n"
                   + "    addr: unix:///var/lib/incus/unix.socket\n    protocol: incus\n")
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let noted = try #require(NotedCommands("incus", in: home, environment: EngineEnvironment.runEnvironment(
            home: home.path, model: model, token: EngineEnvironment.canaryToken())))
        var env = noted.environment
        env["INCUS_CONF"] = conf
        #expect(IncusBackend(environment: env).apiSocket == nil)
        let store = RunStore(environment: env)
        defer { for name in (try? instances(store: store)) ?? [] { _ = try? incus(["delete", "-f", name]) } }
        let r = try CCDeckInvocation.run(EngineEnvironment.incusArguments(model: model, extra: ["--ephemeral"]), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(noted.commands.contains("launch") && noted.commands.contains("exec") && noted.commands.contains("delete"),
                "\(noted.commands)")
        #expect(try instances(store: store).isEmpty)
        let missing = try CCDeckInvocation.run(["run", "--mode", "incus", "--image", "ccdeck-no-such-alias"], environment: env)
        #expect(missing.status == .exited(2)
                && missing.stderr.contains("the incus image ccdeck-no-such-alias is missing: build it with `ccdeck image build --runtime incus"),
                "\(missing.output)")
    }

    /// `ccdeck image build --runtime incus` makes an image alias from a Dockerfile (built with docker,
    /// exported, given ccdeck's init), and a run uses it.
    @Test func imageBuildMakesAnIncusImageARunCanUse() throws {
        let alias = "ccdeck-e2e-built"
        _ = try? incus(["image", "delete", alias])
        defer { _ = try? incus(["image", "delete", alias]) }
        let dockerfile = home.write("ctx/Dockerfile", "FROM \(EngineEnvironment.testImage)\nLABEL ccdeck.e2e=incus\n")
        let env = EngineEnvironment.runEnvironment(home: home.path, model: nil, token: nil)
        let built = try CCDeckInvocation.run(["image", "build", "--runtime", "incus", "--file", dockerfile, "--tag", alias],
                                             environment: env)
        #expect(built.status == .exited(0), "\(built.output)")
        #expect(try incus(["image", "info", alias]).status.succeeded)
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let runEnv = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        var args = EngineEnvironment.incusArguments(model: model, extra: ["--ephemeral"])
        args[args.firstIndex(of: EngineEnvironment.incusImage)!] = alias
        let r = try CCDeckInvocation.run(args, environment: runEnv)
        #expect(r.status == .exited(0), "\(r.output)")
    }
}
