import CCDeckBackends
import Foundation

/// The stand-in `fly` (Tests/Fixtures/standin_fly.py) wired for one test: its machines are
/// containers on the test dockerd, its secrets a 0600 file, every argv it got in `argv.log`.
public final class FlyStandIn: @unchecked Sendable {
    public let directory = TemporaryDirectory("ccdeck-standin-fly")
    public let app = "ccdeck-test-" + UUID().uuidString.prefix(6).lowercased()

    public init() throws {
        try FileManager.default.createDirectory(atPath: directory.path + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/bin/fly",
                                                   withDestinationPath: TestPaths.fixtures + "/standin_fly.py")
    }

    deinit {
        // Whatever a test left: machines of this app.
        let out = try? ProcessRunner.run(Command("docker", ["ps", "-aq", "--filter", "label=standin-fly.app=\(app)"],
                                                 environment: EngineEnvironment.host), timeout: 30)
        let ids = (out?.stdout ?? "").split(separator: "\n").map(String.init)
        if !ids.isEmpty { _ = try? ProcessRunner.run(Command("docker", ["rm", "-f"] + ids, environment: EngineEnvironment.host), timeout: 60) }
    }

    public func environment(_ base: [String: String]) -> [String: String] {
        var env = base
        env["PATH"] = directory.path + "/bin:" + (base["PATH"] ?? "/usr/bin:/bin")
        env["STANDIN_FLY_STATE"] = directory.path + "/state"
        env["FLY_APP"] = app
        return env
    }

    /// Every argv the stand-in received, one JSON array a line.
    public var argvLog: String {
        (try? String(contentsOfFile: directory.path + "/state/argv.log", encoding: .utf8)) ?? ""
    }

    /// The app's machines (containers), by machine id.
    public func machines() throws -> [String] {
        let out = try ProcessRunner.run(Command("docker", ["ps", "-a", "--filter", "label=standin-fly.app=\(app)",
                                                           "--format", "{{.Label \"standin-fly.id\"}}"],
                                                environment: EngineEnvironment.host), timeout: 30)
        return out.stdout.split(separator: "\n").map(String.init)
    }
}
