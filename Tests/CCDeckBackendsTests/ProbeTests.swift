import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// Probes against stand-in executables on a private PATH: each prints what the real tool
/// prints in that situation (recorded outputs), or hangs like a stuck daemon.
@Suite struct ProbeTests {
    let bin = TemporaryDirectory("ccdeck-bin")

    func env() -> [String: String] { ["PATH": bin.path + ":/usr/bin:/bin", "HOME": bin.path] }

    func fake(_ name: String, _ script: String) {
        bin.write(name, "#!/bin/sh\n" + script + "\n", mode: 0o755)
    }

    @Test func nothingInstalled() {
        let statuses = BackendRegistry.probeAll(BackendRegistry.standard.all(environment: ["PATH": bin.path]), timeout: 3)
        #expect(statuses.map(\.kind) == BackendRegistry.standard.kinds)
        #expect(statuses.allSatisfy { $0.state == .notInstalled })
    }

    @Test func dockerReadyAndDown() {
        fake("docker", #"echo '{"Client":{"Version":"28.2.2"},"Server":{"Version":"26.1.5"}}'"#)
        let ready = ContainerBackend(.docker, environment: env()).probe(timeout: 3)
        #expect(ready.state == .ready && ready.clientVersion == "28.2.2" && ready.serverVersion == "26.1.5")

        fake("docker", """
            echo '{"Client":{"Version":"28.2.2"},"Server":null}'
            echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2
            exit 1
            """)
        let down = ContainerBackend(.docker, environment: env()).probe(timeout: 3)
        #expect(down.state == .daemonDown)
        #expect(down.clientVersion == "28.2.2")
        #expect(down.detail.contains("Is the docker daemon running?"))
    }

    @Test func hungDaemonIsReportedWithinTheTimeout() {
        fake("docker", "sleep 60")
        fake("podman", "sleep 60")
        fake("incus", "sleep 60")
        let start = Date()
        let statuses = BackendRegistry.probeAll(BackendRegistry.standard.all(environment: env()), timeout: 1)
        let elapsed = Date().timeIntervalSince(start)
        #expect(statuses.first { $0.kind == .docker }?.state == .notResponding)
        #expect(statuses.first { $0.kind == .podman }?.state == .notResponding)
        #expect(statuses.first { $0.kind == .incus }?.state == .notResponding)
        #expect(statuses.first { $0.kind == .docker }?.detail == "no answer within 1s (daemon hung?)")
        // All probes run at once: the total is one timeout, not the sum (a generous bound, not a benchmark).
        #expect(elapsed < 5)
    }

    @Test(.enabled(if: ChildProcess.resolve("docker", environment: ProcessInfo.processInfo.environment) != nil,
                   "needs the docker client (scripts/testenv install)"))
    func realDockerClientAgainstASocketThatNeverAnswers() throws {
        let dir = TemporaryDirectory("ccdeck-sock")
        let socketPath = dir.path + "/hung.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in socketPath.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(listen(fd, 16) == 0)  // accepts connections into the backlog, never answers
        var e = ProcessInfo.processInfo.environment
        e["DOCKER_HOST"] = "unix://" + socketPath
        let status = ContainerBackend(.docker, environment: e).probe(timeout: 1.5)
        #expect(status.state == .notResponding)
    }

    @Test func dockerSandboxPluginMissingOrPresent() {
        fake("docker", """
            echo "docker: 'sandbox' is not a docker command." >&2
            echo "See 'docker --help'" >&2
            exit 1
            """)
        let missing = DockerSandboxBackend(environment: env()).probe(timeout: 3)
        #expect(missing.state == .notInstalled)
        #expect(missing.detail.contains("Docker Desktop 4.58+") && missing.detail.contains("sbx: not installed"), "\(missing.detail)")
        fake("docker", #"[ "$1 $2" = "sandbox version" ] && echo "docker-sandbox v0.12.0 (commit abc)""#)
        let present = DockerSandboxBackend(environment: env()).probe(timeout: 3)
        #expect(present.state == .ready && present.clientVersion == "0.12.0")
        #expect(present.detail == "docker sandbox 0.12.0; sbx: not installed", "\(present.detail)")
    }

    @Test func incusServerUnreachable() {
        fake("incus", "echo 'Client version: 6.0.4'; echo 'Server version: unreachable'")
        let s = IncusBackend(environment: env()).probe(timeout: 3)
        #expect(s.state == .daemonDown && s.clientVersion == "6.0.4")
        fake("incus", "echo 'Client version: 6.0.4'; echo 'Server version: 6.0.4'")
        #expect(IncusBackend(environment: env()).probe(timeout: 3).state == .ready)
    }

    @Test func flyInstalledButNotLoggedIn() {
        fake("fly", """
            if [ "$1" = version ]; then echo "fly v0.3.45 linux/amd64 Commit: x BuildDate: y"; exit 0; fi
            echo "Error: no access token available. Please login with 'flyctl auth login'" >&2; exit 1
            """)
        let s = FlyBackend(environment: env()).probe(timeout: 3)
        #expect(s.state == .daemonDown)
        #expect(s.clientVersion == "0.3.45")
        #expect(s.detail.contains("not logged in"))
    }

    @Test func sbxVersion() {
        fake("sbx", "echo 'sbx version v0.41.0'")
        let s = DockerSandboxBackend(environment: env()).probe(timeout: 3)
        #expect(s.state == .ready && s.clientVersion == "0.41.0")
        #expect(s.detail.contains("sbx 0.41.0"))
    }

    @Test func hostileProbeOutputIsInert() {
        fake("docker", "printf '\\033]0;pwned\\007\\033[2Jboom\\n' >&2; exit 1")
        let s = ContainerBackend(.docker, environment: env()).probe(timeout: 3)
        #expect(InertText.isInert(s.detail))
    }
}
