import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `ccdeck compare` on the real engines (docker and podman with runc and gVisor, incus) and the
/// sandbox stand-in, with the real Claude Code CLI and the scripted model.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct CompareEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-compare")

    func arguments(model: ModelServer, modes: String, _ extra: [String] = []) -> [String] {
        ["compare", "--modes", modes, "--image", EngineEnvironment.testImage, "--runtime-arg=--network=host",
         "--device", EngineEnvironment.incusProxy(model)] + EngineEnvironment.passThrough.flatMap { ["--pass-env", $0] } + extra
    }

    func validate(_ json: String) throws -> String {
        let file = home.write("comparison-\(UUID().uuidString.prefix(6)).json", json)
        let out = try ProcessRunner.run(Command("python3", ["-c", """
            import json, sys, jsonschema
            jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))
            print("valid")
            """, file, TestPaths.repositoryRoot + "/docs/compare-schema.json"], environment: EngineEnvironment.host), timeout: 60)
        return out.stdout + out.stderr
    }

    func instances(_ env: [String: String]) throws -> String {
        try ProcessRunner.run(Command("incus", ["list", "user.ccdeck.store=\(RunStore(environment: env).storeID)", "--format", "csv", "-c", "n"],
                                      environment: EngineEnvironment.host), timeout: 30).stdout
    }

    /// One after another, with a mode that fails (its exec hangs past the deadline) and one not
    /// installed: the others still run, the failure is in the table with its reason, the phases
    /// order as the scripted delay says, and the JSON validates against its schema.
    @Test func oneAfterAnotherSurvivesAFailingMode() throws {
        // Each of the three model turns waits 1 s: result - first event is at least 3 s.
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 1)
        let standIn = try SandboxStandIn(clis: ["sbx"], model: model, token: EngineEnvironment.canaryToken())
        var env = standIn.environment(EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken()))
        env["ANTHROPIC_BASE_URL"] = model.baseURL
        env["STANDIN_SANDBOX_EXEC_HANGS"] = "1"
        env["CCDECK_FIRST_EVENT_TIMEOUT"] = "3"
        let r = try CCDeckInvocation.run(arguments(model: model, modes: "docker,podman,incus,sandbox,fly",
                                                   ["--isolation", "runc,gvisor", "--repeat", "2", "--json"]), environment: env, timeout: 900)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(try validate(r.stdout).contains("valid"), "\(r.stdout)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let variants = try #require(json["variants"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: variants.map { ($0["name"] as! String, $0) })
        #expect(Set(byName.keys) == ["docker", "docker+gvisor", "podman", "podman+gvisor", "incus", "sandbox", "fly"])
        for name in ["docker", "docker+gvisor", "podman", "podman+gvisor", "incus"] {
            let v = try #require(byName[name])
            #expect(v["succeeded"] as? Int == 2, "\(name): \(v)")
            let phases = try #require(v["phases"] as? [String: [String: Any]])
            let medians = ["ready", "firstEvent", "result", "cleanup"].compactMap { phases[$0]?["median"] as? Double }
            #expect(medians == medians.sorted(), "\(name): phases out of order \(medians)")
            let first = try #require(phases["firstEvent"]?["median"] as? Double), result = try #require(phases["result"]?["median"] as? Double)
            #expect(result - first >= 2.9, "\(name): the scripted 3 x 1 s delay is not between first event and result")
        }
        #expect(byName["sandbox"]?["failed"] as? Int == 2)
        #expect((byName["sandbox"]?["failures"] as? [String])?.first?.contains("printed nothing within 3s") == true)
        #expect(byName["fly"]?["ready"] as? Bool == false && (byName["fly"]?["reason"] as? String)?.isEmpty == false)
        #expect((json["findings"] as? [String])?.contains { $0.hasPrefix("fastest to the first agent event:") } == true)
        #expect(try instances(env).isEmpty)
        // Only this comparison's sandboxes count: other suites' runs share the stand-in's engine.
        let records = RunStore(environment: env).list()
        let mine = Set(records.map(\.sandbox))
        #expect(try SandboxStandIn.sandboxes().filter(mine.contains).isEmpty)
        // Every run's record names the one comparison it was part of.
        #expect(records.count == 12 && Set(records.compactMap(\.group)).count == 1 && records.allSatisfy { $0.group != nil })
    }

    @Test func allAtOnceAndAsTableAndMarkdown() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let table = try CCDeckInvocation.run(arguments(model: model, modes: "docker,podman,incus", ["--parallel", "--repeat", "2"]),
                                             environment: env, timeout: 900)
        #expect(table.status == .exited(0), "\(table.output)")
        #expect(table.stdout.hasPrefix("MODE") && table.stdout.contains("all at once") == false && table.stderr.contains("all at once"))
        for name in ["docker ", "podman ", "incus "] {
            let row = table.stdout.split(separator: "\n").first { $0.hasPrefix(name) }
            #expect(row?.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first == "2", "\(row ?? "")")
        }
        let md = try CCDeckInvocation.run(arguments(model: model, modes: "docker", ["--markdown"]), environment: env)
        #expect(md.stdout.hasPrefix("| MODE | OK |") && md.stdout.contains("- fastest overall: docker"), "\(md.stdout)")
    }

    /// Ctrl-C mid-comparison stops every run it started and leaves no sandbox behind.
    @Test func ctrlCStopsEveryRunAndLeavesNothing() throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path, delay: 30)
        let env = EngineEnvironment.runEnvironment(home: home.path, model: model, token: EngineEnvironment.canaryToken())
        let r = try CCDeckInterrupted.run(arguments(model: model, modes: "docker,podman,incus", ["--parallel"]), environment: env,
                                          when: "all at once", onStderr: true) { child in
            // Let the runs get as far as their sandboxes, then interrupt.
            for _ in 0..<100 {
                let records = RunStore(environment: env).list()
                if records.count == 3 && records.allSatisfy({ $0.state == .running }) { break }
                usleep(100_000)
            }
            usleep(1_500_000)
            kill(child.pid, SIGINT)
        }
        #expect(r.acted && r.status == .exited(130), "\(r.output)")
        let records = RunStore(environment: env).list()
        #expect(records.count == 3 && records.allSatisfy { $0.state == .stopped }, "\(records.map { "\($0.mode) \($0.state)" })")
        let store = RunStore(environment: env).storeID
        for engine in ["docker", "podman"] {
            let left = try ProcessRunner.run(Command(engine, ["ps", "-aq", "--filter", "label=ccdeck.store=\(store)"],
                                                     environment: EngineEnvironment.host), timeout: 30)
            #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(engine) containers left")
        }
        #expect(try instances(env).isEmpty)
    }
}
