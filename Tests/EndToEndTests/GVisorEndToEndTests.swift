import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// gVisor as an isolation choice for docker and podman, for real: scripts/testenv installs runsc
/// and registers it with the test dockerd; podman takes it per run. The check that a run really
/// was under gVisor comes from inside: the kernel the agent's Bash sees is gVisor's (4.4.0), not
/// the host's, so a silent fallback to runc fails the test.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct GVisorEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-gvisor")

    func kernel(after engine: String, isolation: String) throws -> (CCDeckInvocation, RunRecord?, String?) {
        let ws = home.path + "/\(engine)-\(isolation)"
        try FileManager.default.createDirectory(atPath: ws, withIntermediateDirectories: true)
        chown(ws, 1000, 1000)
        let model = try ModelServer(scenario: "kernel", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: engine, extra: ["--isolation", isolation, "--workspace", ws]),
                                         environment: env)
        let record = RunStore(environment: env).list().first
        return (r, record, try? String(contentsOfFile: ws + "/kernel.txt", encoding: .utf8))
    }

    @Test(arguments: ["docker", "podman"])
    func aRunUnderGVisorSeesGVisorsKernelAndWritesTheWorkspace(engine: String) throws {
        let (r, record, version) = try kernel(after: engine, isolation: "gvisor")
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(version?.contains("Linux version 4.4.0") == true, "the agent's kernel: \(version ?? "none")")
        #expect(record?.isolation == .gvisor && record?.state == .succeeded)
        let ls = try CCDeckInvocation.run(["runs", "ls"], environment: CCDeckInvocation.baseEnvironment(home: home.path))
        #expect(ls.stdout.contains("gVisor"), "\(ls.stdout)")
        // And runc, beside it, is the host's kernel.
        let (runc, runcRecord, hostVersion) = try kernel(after: engine, isolation: "runc")
        #expect(runc.status == .exited(0) && runcRecord?.isolation == .sharedKernel)
        #expect(hostVersion?.contains("4.4.0 #1 SMP Sun Jan 10") == false, "\(hostVersion ?? "none")")
    }

    @Test(arguments: ["docker", "podman"])
    func aFailingRunAndAStopUnderGVisor(engine: String) throws {
        let failing = try ModelServer(scenario: "http401", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: failing, token: EngineEnvironment.canaryToken())
        let f = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: engine, extra: ["--isolation", "gvisor"]), environment: env)
        #expect(f.status == .exited(1), "\(f.output)")
        #expect(RunStore(environment: env).list().first?.reason?.contains("401") == true)

        let slow = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 30)
        let env2 = EngineEnvironment.runEnvironment(home: home.path, model: slow, token: EngineEnvironment.canaryToken())
        let stopped = try CCDeckInterrupted.run(EngineEnvironment.runArguments(engine: engine, extra: ["--isolation", "gvisor"]),
                                                environment: env2, when: "session started") { kill($0.pid, SIGINT) }
        #expect(stopped.acted && stopped.status == .exited(130), "\(stopped.output)")
        let record = try #require(RunStore(environment: env2).list().first)
        #expect(record.state == .stopped && record.isolation == .gvisor)
        let left = try ProcessRunner.run(Command(engine, ["ps", "-aq", "--filter", "label=ccdeck.run=\(record.id)"],
                                                 environment: EngineEnvironment.host), timeout: 30)
        #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    /// Attach opens a shell in the gVisor sandbox (its own kernel), and the dashboard comes back.
    @Test func attachUnderGVisor() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 3)
        var env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        env["TERM"] = "xterm-256color"
        let pass = EngineEnvironment.passThrough.map { "--pass-env \($0)" }.joined(separator: " ")
        let tmux = try TmuxSession(width: 140, height: 40, environment: env, script: """
            "\(TestPaths.ccdeckBinary)" dashboard --image \(EngineEnvironment.testImage) --runtime-arg=--network=host --isolation gvisor \(pass)
            echo "EXIT:$?"
            exec sleep 600
            """)
        #expect(tmux.waitFor("docker ready") { $0.contains("✓ docker") && $0.contains("q quit") } != nil)
        try tmux.send("n")
        #expect(tmux.waitFor("Launch a run") != nil)
        try tmux.send("Enter")
        #expect(tmux.waitFor("session started", timeout: 60) != nil)
        let attach = try tmux.attachRoundTrip(run: "echo kernel-$(cut -d' ' -f3 /proc/version)", expect: "kernel-4.4.0")
        #expect(attach == nil, "\(attach ?? "")")
        #expect(tmux.waitFor("succeeded", timeout: 60) { $0.contains("succeeded") && $0.contains("docker+gV") } != nil)
        try tmux.send("q")
        #expect(tmux.waitFor("EXIT:0") != nil)
    }
}
