import CCDeckCore
import Foundation

/// Mode B, Docker's standalone successor CLI `sbx`. Detected here; runs come later.
public struct SbxBackend: ProbeOnlyBackend {
    public let kind = BackendKind.sbx
    public let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public var traits: BackendTraits { DockerSandboxBackend.microVM }

    public func probe(timeout: TimeInterval) -> BackendStatus {
        let (output, early) = Probe.run(kind, "sbx", ["version"], environment: environment, timeout: timeout)
        if let early { return early }
        guard let output else { return BackendStatus(kind: kind, state: .error) }
        let version = DockerSandboxBackend.version(in: output.stdout)
        guard output.status.succeeded else {
            return BackendStatus(kind: kind, state: .daemonDown, clientVersion: version, detail: output.stderrSummary)
        }
        return BackendStatus(kind: kind, state: .ready, clientVersion: version)
    }
}
