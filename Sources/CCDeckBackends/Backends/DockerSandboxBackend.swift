import CCDeckCore
import Foundation

/// Mode B, Docker Desktop 4.58+: `docker sandbox` microVMs. Detected here; runs come later.
public struct DockerSandboxBackend: ProbeOnlyBackend {
    public let kind = BackendKind.dockerSandbox
    public let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public var traits: BackendTraits { Self.microVM }

    /// Both CLIs of mode B (`docker sandbox`, `sbx`) run the same microVMs the same way.
    static let microVM =
        BackendTraits(modeLetter: "B", isolation: .microVM, tokenDelivery: .hostProxy, workspace: .samePathShare,
                      workspaceInside: nil, mark: .namePrefix("ccdeck-"), resourceNoun: "sandbox", canRun: false,
                      usesImage: false, takesRuntimeArguments: false)

    public func probe(timeout: TimeInterval) -> BackendStatus {
        let (output, early) = Probe.run(kind, "docker", ["sandbox", "version"], environment: environment, timeout: timeout)
        if let early {
            var status = early
            if status.state == .notInstalled { status.detail = "docker not found in PATH" }
            return status
        }
        guard let output else { return BackendStatus(kind: kind, state: .error) }
        let text = output.stdout + output.stderr
        if output.status.succeeded {
            return BackendStatus(kind: kind, state: .ready, clientVersion: Self.version(in: text))
        }
        if text.contains("is not a docker command") || text.contains("unknown command") {
            return BackendStatus(kind: kind, state: .notInstalled,
                                 detail: "the docker sandbox plugin is not installed (Docker Desktop 4.58+)")
        }
        return BackendStatus(kind: kind, state: .daemonDown, detail: output.stderrSummary)
    }

    /// The first token that looks like a version (`v0.12.0`, `4.58.1`).
    static func version(in text: String) -> String? {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," || $0 == ":" })
            .map { $0.hasPrefix("v") ? $0.dropFirst() : $0 }
            .first { $0.first?.isNumber == true && $0.contains(".") }
            .map(String.init)
    }
}
