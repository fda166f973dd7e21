@testable import CCDeckBackends
import CCDeckCore
import Foundation
import Testing

/// `docker run -i …` as ccdeck writes it, turned into the Engine API's create request that
/// ccdeck-dockerrun sends: the same container, or the CLI when an argument is not understood.
@Suite struct DockerDirectRunTests {
    let secret = "sk-ant-oat01-" + "CANARY-DIRECT-0123456789" + "abcdefghijklmnopqrstuvwxyz"

    func spec(workspace: String = "/ws", runtime: [String] = ["--network=host"], egress: EgressEndpoint? = nil) -> RunSpec {
        let token = Token(value: secret, kind: .setupToken, source: .environment(variable: "CLAUDE_CODE_OAUTH_TOKEN"))
        let backend = ContainerBackend(.docker, environment: [:])
        let driver = RunDriver(backend: backend, store: RunStore(root: "/tmp/ccdeck-direct"), token: token,
                               environment: ["PATH": "/usr/bin", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "EXTRA": "1"]) { _ in }
        let record = RunRecord(id: "r1", mode: backend.kind, image: "img", sandbox: "ccdeck-r1", workspace: workspace,
                               workspaceIsTemporary: true, prompt: "p", keep: false, createdAt: Date(), driverPID: 1,
                               host: "h", tokenSource: nil)
        var s = driver.makeSpec(record: record, request: RunRequest(prompt: "p", runtimeArguments: runtime,
                                                                    passEnvironment: ["EXTRA"]),
                                owner: FileOwner(uid: 1000, gid: 1000))
        s.egress = egress
        return s
    }

    /// The request for `spec`, as the backend would send it, parsed back.
    func request(_ spec: RunSpec, _ preparation: Preparation = Preparation()) throws -> (name: String, body: JSONValue) {
        let backend = ContainerBackend(.docker, environment: [:])
        var env = spec.environment
        env[spec.token!.name] = spec.token!.value
        let made = try #require(DockerDirectRun.createRequest(backend.runArguments(spec, preparation: preparation), environment: env))
        return (made.name, try #require(JSONValue.parse(made.body)))
    }

    func strings(_ v: JSONValue?) -> [String] {
        guard case .array(let items)? = v else { return [] }
        return items.compactMap(\.stringValue)
    }

    @Test func aPlainRunBecomesTheSameContainer() throws {
        let (name, body) = try request(spec())
        #expect(name == "ccdeck-r1")
        #expect(body["Image"]?.stringValue == RunnerImage.defaultTag)
        #expect(strings(body["Cmd"]) == RunSpec.agentArguments)
        #expect(body["Entrypoint"] == nil)  // the image's own: claude -p --dangerously-skip-permissions
        for flag in ["AttachStdin", "AttachStdout", "AttachStderr", "OpenStdin", "StdinOnce"] {
            #expect(body[flag] == .bool(true), "\(flag)")
        }
        #expect(body["Tty"] == .bool(false))
        #expect(body["WorkingDir"]?.stringValue == "/workspace")
        // `-e NAME` takes the value from the client's environment, as the CLI does: the token
        // is in the body (which goes on the client's stdin), not in argv.
        let env = strings(body["Env"])
        #expect(env.contains("CLAUDE_CODE_OAUTH_TOKEN=" + secret))
        #expect(env.contains("ANTHROPIC_BASE_URL=http://127.0.0.1:9") && env.contains("EXTRA=1"))
        #expect(body["Labels"]?["ccdeck.run"]?.stringValue == "r1")
        #expect(body["Labels"]?["ccdeck.mode"]?.stringValue == "docker")
        #expect(body["HostConfig"]?["NetworkMode"]?.stringValue == "host")  // the run's own --network
        #expect(strings(body["HostConfig"]?["Binds"]) == ["/ws:/workspace"])
    }

    @Test func userRuntimeAndImageCheckTranslate() throws {
        var prep = Preparation(agentUser: "root", userArguments: ["--user", "0:0", "-e", "IS_SANDBOX=1", "-e", "HOME=/root"])
        prep.isolation = .gvisor
        prep.imageCheckedAtStart = true  // --pull=never: the API never pulls anyway
        let (_, body) = try request(spec(), prep)
        #expect(body["User"]?.stringValue == "0:0")
        #expect(strings(body["Env"]).contains("IS_SANDBOX=1") && strings(body["Env"]).contains("HOME=/root"))
        #expect(body["HostConfig"]?["Runtime"]?.stringValue == "runsc")
    }

    @Test func anEgressRunKeepsItsBridgeNetworkAndProxy() throws {
        let egress = EgressEndpoint(socketDirectory: "/store/runs/r1/egress", bridge: "/opt/ccdeck/ccdeck-netbridge")
        let (_, body) = try request(spec(runtime: [], egress: egress))
        #expect(body["HostConfig"]?["NetworkMode"]?.stringValue == "none")
        #expect(strings(body["Entrypoint"]) == [EgressEndpoint.bridgeInside])
        #expect(strings(body["HostConfig"]?["Binds"]) == ["/ws:/workspace", "/store/runs/r1/egress:" + EgressEndpoint.directoryInside,
                                                         "/opt/ccdeck/ccdeck-netbridge:" + EgressEndpoint.bridgeInside + ":ro"])
        #expect(strings(body["Env"]).contains("HTTPS_PROXY=http://127.0.0.1:3128"))
        #expect(strings(body["Cmd"]).starts(with: ["3128", EgressEndpoint.socketInside, "--", "claude", "-p"]))
    }

    /// Paths go into JSON escaped, whatever they hold; one with a ':' goes as a mount.
    @Test func awkwardPathsAreQuotedAndColonsMount() throws {
        let odd = "/home/me/\"quoted\" \\ back\u{1}slash\nnew ünï"
        let (_, body) = try request(spec(workspace: odd))
        #expect(strings(body["HostConfig"]?["Binds"]) == [odd + ":/workspace"])
        let (_, colon) = try request(spec(workspace: "/home/me/proj:v2"))
        #expect(colon["HostConfig"]?["Binds"] == nil)
        guard case .array(let mounts)? = colon["HostConfig"]?["Mounts"] else { Issue.record("no mounts"); return }
        #expect(mounts.count == 1)
        #expect(mounts[0]["Source"]?.stringValue == "/home/me/proj:v2" && mounts[0]["Target"]?.stringValue == "/workspace")
        #expect(mounts[0]["Type"]?.stringValue == "bind" && mounts[0]["ReadOnly"] == .bool(false))
    }

    /// A runtime argument only the CLI knows keeps the run on the CLI, which takes them all.
    @Test func anArgumentOnlyTheCLIKnowsKeepsTheCLI() {
        let backend = ContainerBackend(.docker, environment: [:])
        for extra in [["--memory=512m"], ["--cap-add", "NET_ADMIN"], ["--rm"], ["-t"], ["--network"]] {
            let args = backend.runArguments(spec(runtime: extra), preparation: Preparation())
            #expect(DockerDirectRun.createRequest(args, environment: [:]) == nil, "\(extra)")
        }
        #expect(DockerDirectRun.createRequest(["run", "--name", "x", "img"], environment: [:]) == nil)  // not -i
        #expect(DockerDirectRun.createRequest(["create", "-i", "--name", "x", "img"], environment: [:]) == nil)
    }

    @Test func theClientReadsItsLengthFirst() {
        let body = Data("{\"Image\":\"i\"}".utf8)
        #expect(DockerDirectRun.stdinPrefix(body: body) == Data("13\n{\"Image\":\"i\"}".utf8))
    }
}
