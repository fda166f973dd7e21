import CCDeckCore
import Foundation

/// Mode D: Incus system containers. Detected here; runs come later.
public struct IncusBackend: ProbeOnlyBackend {
    public let kind = BackendKind.incus
    public let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public var traits: BackendTraits {
        BackendTraits(modeLetter: "D", isolation: .systemContainer, tokenDelivery: .file, workspace: .mount,
                      workspaceInside: "/workspace", mark: .configKeys, resourceNoun: "instance", canRun: false,
                      usesImage: true, takesRuntimeArguments: false)
    }

    public func probe(timeout: TimeInterval) -> BackendStatus {
        let (output, early) = Probe.run(kind, "incus", ["version"], environment: environment, timeout: timeout)
        if let early { return early }
        guard let output else { return BackendStatus(kind: kind, state: .error) }
        let parsed = Self.parseVersion(output.stdout)
        guard let server = parsed.server, server != "unreachable" else {
            return BackendStatus(kind: kind, state: .daemonDown, clientVersion: parsed.client,
                                 detail: output.stderrSummary.isEmpty ? "incusd is not reachable" : output.stderrSummary)
        }
        return BackendStatus(kind: kind, state: .ready, clientVersion: parsed.client, serverVersion: server)
    }

    /// `incus version`: `Client version: 6.0.3` / `Server version: 6.0.3` (or `unreachable`).
    static func parseVersion(_ text: String) -> EngineOutput.Versions {
        var v = EngineOutput.Versions()
        for line in text.lineSlices {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "Client version" { v.client = parts[1] }
            if parts[0] == "Server version" { v.server = parts[1] }
        }
        return v
    }
}
