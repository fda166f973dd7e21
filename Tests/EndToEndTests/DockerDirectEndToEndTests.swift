import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Docker runs started without the docker CLI: ccdeck-dockerrun asks dockerd over its socket for
/// the container the CLI would have made. Real dockerd, the real Claude Code CLI, the scripted model.
@Suite(.serialized, .enabled(if: EngineEnvironment.enabled, "needs the engines from scripts/testenv (run scripts/test)"))
struct DockerDirectEndToEndTests {
    let home = TemporaryDirectory("ccdeck-e2e-direct")

    @Test func aDockerRunDoesItsWorkWithoutTheCLI() throws {
        let canary = EngineEnvironment.canaryToken()
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let noted = try #require(NotedCommands("docker", in: home, environment: EngineEnvironment.runEnvironment(
            home: home.path, model: model, token: canary)))
        let env = noted.environment
        let watcher = ArgvWatcher(needle: canary)
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker"), environment: env)
        let (hits, scans) = watcher.stop()
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(!noted.commands.contains("run"), "the docker CLI started the run: \(noted.commands)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .succeeded && record.turns == 3)
        #expect(try String(contentsOfFile: record.workspace + "/hello.txt", encoding: .utf8) == "hello from ccdeck\n")
        #expect(try String(contentsOfFile: record.workspace + "/bash-ran.txt", encoding: .utf8) == "bash-ran\n")
        #expect(r.stdout.contains("→ Bash cat /workspace/hello.txt") && r.stdout.contains("All done."))
        #expect(record.phases.containerStarted != nil && record.phases.firstEvent != nil)
        // The token reached the agent (in the create request, on the client's stdin), never an argv.
        #expect(hits.isEmpty && scans > 0, "token in argv: \(hits)")
        #expect(!model.requests.isEmpty && model.requests.allSatisfy {
            ($0["authorization"] as? [String: Any])?["length"] as? Int == "Bearer ".count + canary.count
        })
        #expect(!r.output.contains(canary))
        // The container is the one the CLI would have made: ccdeck's labels, removed at the end.
        let left = try ProcessRunner.run(Command("docker", ["ps", "-aq", "--filter", "label=ccdeck.run=\(record.id)"],
                                                 environment: EngineEnvironment.host), timeout: 30)
        #expect(left.stdout.isEmpty)
    }

    /// A runtime argument only the CLI knows, or `CCDECK_DOCKERRUN=off`: the CLI starts the run.
    @Test(arguments: [(["--runtime-arg=--memory=1g"], false), ([], true)])
    func theCLIStartsWhatOnlyItKnows(extra: [String], off: Bool) throws {
        let model = try ModelServer(scenario: "write_and_bash", logDirectory: home.path)
        let noted = try #require(NotedCommands("docker", in: home, environment: EngineEnvironment.runEnvironment(
            home: home.path, model: model, token: EngineEnvironment.canaryToken())))
        var env = noted.environment
        if off { env["CCDECK_DOCKERRUN"] = "off" }
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker", extra: extra), environment: env)
        #expect(r.status == .exited(0), "\(r.output)")
        #expect(noted.commands.contains("run"), "\(noted.commands)")
        let record = try #require(RunStore(environment: env).list().first)
        #expect(record.state == .succeeded)
        #expect(try String(contentsOfFile: record.workspace + "/hello.txt", encoding: .utf8) == "hello from ccdeck\n")
    }

    /// A socket that takes connections and never answers: a hung daemon.
    func silentSocket() throws -> (path: String, fd: Int32) {
        let path = home.path + "/silent-\(UUID().uuidString.prefix(6)).sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            _ = path.utf8CString.withUnsafeBytes { memcpy(raw.baseAddress!, $0.baseAddress!, $0.count) }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(fd, 64) == 0)
        return (path, fd)
    }

    /// A hung daemon: the run ends with one line saying so, before anything is created (the
    /// question whether it answers at all comes first), where the CLI would wait forever.
    @Test func aDaemonThatNeverAnswersFailsTheRunWithOneLine() throws {
        let silent = try silentSocket()
        defer { close(silent.fd) }
        var env = EngineEnvironment.runEnvironment(home: home.path, model: nil, token: EngineEnvironment.canaryToken())
        env["DOCKER_HOST"] = "unix://" + silent.path
        let r = try CCDeckInvocation.run(EngineEnvironment.runArguments(engine: "docker"), environment: env)
        #expect(r.status == .exited(2), "\(r.output)")
        #expect(r.stderr.contains("docker ping did not answer within 15s"), "\(r.stderr)")
        #expect(!r.stderr.contains("could not remove"), "nothing was created: \(r.stderr)")
        #expect(!r.output.contains("Fatal error") && !r.output.contains("Stack dump"))
    }

    var client: String { (TestPaths.ccdeckBinary as NSString).deletingLastPathComponent + "/ccdeck-dockerrun" }
    var dockerSocket: String { String((EngineEnvironment.host["DOCKER_HOST"] ?? "unix:///var/run/docker.sock").dropFirst("unix://".count)) }

    /// ccdeck-dockerrun with `body` (a create request) and then `input` on its stdin.
    func direct(_ name: String, _ body: String, input: Data = Data(), socket: String? = nil,
                seconds: String = "15") throws -> ProcessRunner.Output {
        defer { _ = try? ProcessRunner.run(Command("docker", ["rm", "-f", name], environment: EngineEnvironment.host), timeout: 30) }
        return try ProcessRunner.run(Command(client, [socket ?? dockerSocket, name, seconds], environment: [:]),
                                     input: DockerDirectRun.stdinPrefix(body: Data(body.utf8)) + input, timeout: 120)
    }

    /// What the CLI does with a container's streams and status: stdout and stderr apart, all of
    /// a large stdin passed while a large output comes back, its exit status as the client's.
    @Test func theClientPassesStreamsAndTheExitStatusAsTheCLIDoes() throws {
        let image = EngineEnvironment.testImage
        func body(_ script: String) -> String {
            #"{"Image":"\#(image)","Entrypoint":["sh","-c",\#(DockerDirectRun.quote(script))],"Cmd":[],"AttachStdin":true,"#
                + #""AttachStdout":true,"AttachStderr":true,"OpenStdin":true,"StdinOnce":true,"Tty":false,"HostConfig":{}}"#
        }
        let split = try direct("ccdeck-e2e-direct-split", body("cat; echo out; echo err >&2; exit 3"), input: Data("in\n".utf8))
        #expect(split.status == .exited(3))
        #expect(split.stdout == "in\nout\n" && split.stderr == "err\n", "\(split.stdout) | \(split.stderr)")
        // 3 MB out before it reads 5 MB in: neither side waits on the other.
        let big = try direct("ccdeck-e2e-direct-big", body("head -c 3000000 /dev/zero | tr '\\0' x; echo; wc -c"),
                             input: Data(repeating: UInt8(ascii: "y"), count: 5_000_000))
        #expect(big.status == .exited(0), "\(big.stderr)")
        #expect(big.stdout.utf8.count == 3_000_009 && big.stdout.hasSuffix("x\n5000000\n"), "\(big.stdout.suffix(40))")
        // The daemon's refusal in the CLI's words and status.
        let missing = try direct("ccdeck-e2e-direct-missing", #"{"Image":"ccdeck-e2e-no-such:1","AttachStdin":true,"OpenStdin":true}"#)
        #expect(missing.status == .exited(125))
        #expect(missing.stderr.hasPrefix("docker: Error response from daemon: No such image: ccdeck-e2e-no-such:1"), "\(missing.stderr)")
    }

    /// A daemon that stops answering after the question whether it answers: the client gives up
    /// after the seconds it was given, in words the run's failure then shows.
    @Test func theClientGivesUpOnADaemonThatStopsAnswering() throws {
        let silent = try silentSocket()
        defer { close(silent.fd) }
        let out = try direct("ccdeck-e2e-direct-silent", "{}", socket: silent.path, seconds: "1")
        #expect(out.status == .exited(125))
        #expect(out.stderr.contains("did not answer within 1 s"), "\(out.stderr)")
        let why = ContainerBackend(.docker, environment: [:]).startFailure(exitCode: 125, stderr: [out.stderr])
        #expect(why?.contains("daemon is down or not answering") == true, "\(why ?? "")")
    }
}
