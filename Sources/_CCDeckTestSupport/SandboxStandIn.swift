import CCDeckBackends
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The stand-ins for Docker Sandboxes (Tests/Fixtures/standin_sandbox.py as the `docker sandbox`
/// plugin and as `sbx`, and standin_proxy.py as Docker's credential proxy), wired for one test:
/// sandboxes are containers on the test dockerd, and the proxy holds the token.
public final class SandboxStandIn: @unchecked Sendable {
    public let directory = TemporaryDirectory("ccdeck-standin")
    public let proxyPort: Int
    private let proxy: ChildProcess

    /// - Parameters:
    ///   - clis: which CLIs are installed (`docker` for the plugin, `sbx`).
    ///   - token: what the proxy puts on the agent's requests.
    public init(clis: Set<String>, model: ModelServer, token: String) throws {
        let fixture = TestPaths.fixtures + "/standin_sandbox.py"
        let bin = directory.path + "/bin", plugins = directory.path + "/docker/cli-plugins"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        if clis.contains("sbx") { try FileManager.default.createSymbolicLink(atPath: bin + "/sbx", withDestinationPath: fixture) }
        if clis.contains("docker") {
            try FileManager.default.createSymbolicLink(atPath: plugins + "/docker-sandbox", withDestinationPath: fixture)
        }
        // A Docker config folder as a user's has one (podman reads its auth from it too).
        directory.write("docker/config.json", "{}\n", mode: 0o600)
        let tokenFile = directory.write("token", token, mode: 0o600)
        proxy = try ChildProcess.spawn(Command("python3", [TestPaths.fixtures + "/standin_proxy.py", "--upstream", model.baseURL,
                                                          "--token-file", tokenFile]), stderr: .null)
        var line = Data()
        var byte: UInt8 = 0
        while read(proxy.stdoutFD, &byte, 1) == 1, byte != 0x0A { line.append(byte) }
        guard let port = Int(String(decoding: line, as: UTF8.self).dropFirst(5)) else {
            proxy.signal(SIGKILL)
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "stand-in proxy did not start"])
        }
        proxyPort = port
    }

    deinit {
        proxy.signal(SIGTERM)
        proxy.wait()
    }

    /// A run environment with the stand-ins installed: the CLIs on PATH and in DOCKER_CONFIG, the
    /// model reached through the proxy (the agent's ANTHROPIC_BASE_URL), the template image.
    public func environment(_ base: [String: String]) -> [String: String] {
        var env = base
        env["PATH"] = directory.path + "/bin:" + (base["PATH"] ?? "/usr/bin:/bin")
        env["DOCKER_CONFIG"] = directory.path + "/docker"
        env["STANDIN_SANDBOX_TEMPLATE"] = EngineEnvironment.testImage
        env["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:\(proxyPort)"
        return env
    }

    /// The stand-in's sandboxes (containers), by name.
    public static func sandboxes() throws -> [String] {
        let out = try ProcessRunner.run(Command("docker", ["ps", "-a", "--filter", "label=ccdeck-standin.sandbox",
                                                           "--format", "{{.Label \"ccdeck-standin.sandbox\"}}"],
                                                environment: EngineEnvironment.host), timeout: 30)
        return out.stdout.split(separator: "\n").map(String.init)
    }
}
