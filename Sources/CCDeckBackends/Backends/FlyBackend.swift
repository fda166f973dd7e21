import CCDeckCore
import Foundation

/// Mode C: Fly.io Machines. Detected here (CLI installed, logged in); runs come later.
public struct FlyBackend: ProbeOnlyBackend {
    public let kind = BackendKind.fly
    public let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public var traits: BackendTraits {
        BackendTraits(modeLetter: "C", isolation: .remoteMachine, tokenDelivery: .appSecret, workspace: .uploadAndDownload,
                      workspaceInside: "/workspace", mark: .metadata, resourceNoun: "machine", canRun: false,
                      usesImage: true, takesRuntimeArguments: false)
    }

    var executable: String? {
        ["fly", "flyctl"].first { ChildProcess.resolve($0, environment: environment) != nil }
    }

    public func probe(timeout: TimeInterval) -> BackendStatus {
        guard let executable else {
            return BackendStatus(kind: kind, state: .notInstalled, detail: "neither fly nor flyctl found in PATH")
        }
        let started = Date()
        let (output, early) = Probe.run(kind, executable, ["version"], environment: environment, timeout: timeout)
        if let early { return early }
        let version = output.flatMap { DockerSandboxBackend.version(in: $0.stdout) }
        // The API is the "daemon": are we logged in, and does it answer?
        let left = max(0.5, timeout - Date().timeIntervalSince(started))
        let (auth, authEarly) = Probe.run(kind, executable, ["auth", "whoami"], environment: environment, timeout: left)
        if var authEarly {
            authEarly.clientVersion = version
            if authEarly.state == .notResponding { authEarly.detail = "the Fly.io API did not answer within \(Probe.formatTimeout(left))" }
            return authEarly
        }
        guard let auth, auth.status.succeeded else {
            return BackendStatus(kind: kind, state: .daemonDown, clientVersion: version,
                                 detail: "not logged in: \(auth?.stderrSummary ?? "") (run `fly auth login`)")
        }
        let who = auth.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return BackendStatus(kind: kind, state: .ready, clientVersion: version, detail: who.isEmpty ? "" : "logged in as \(who)")
    }
}
