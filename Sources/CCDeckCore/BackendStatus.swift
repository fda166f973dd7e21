/// The isolation backends ccdeck knows. Modes A–D of the docs.
public enum BackendKind: String, Sendable, Codable, CaseIterable, Equatable {
    case docker, podman
    case dockerSandbox = "docker-sandbox"
    case sbx, fly, incus

    public var modeLetter: String {
        switch self {
        case .docker, .podman: return "A"
        case .dockerSandbox, .sbx: return "B"
        case .fly: return "C"
        case .incus: return "D"
        }
    }

    public var displayName: String {
        switch self {
        case .docker: return "docker"
        case .podman: return "podman"
        case .dockerSandbox: return "docker sandbox"
        case .sbx: return "sbx"
        case .fly: return "fly"
        case .incus: return "incus"
        }
    }
}

/// What a probe found: is the tool there, and does its daemon (or API) answer?
public struct BackendStatus: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable, Equatable {
        case ready
        case notInstalled = "not-installed"
        case daemonDown = "daemon-down"
        case notResponding = "not-responding"
        case error

        /// How the state reads to a person, in tables and panes alike.
        public var label: String {
            switch self {
            case .ready: return "ready"
            case .notInstalled: return "not installed"
            case .daemonDown: return "daemon down"
            case .notResponding: return "not responding"
            case .error: return "error"
            }
        }
    }

    public var kind: BackendKind
    public var state: State
    public var clientVersion: String?
    public var serverVersion: String?
    /// One inert line: why the backend is not ready, or a note when it is.
    public var detail: String
    public var executable: String?

    public init(kind: BackendKind, state: State, clientVersion: String? = nil, serverVersion: String? = nil,
                detail: String = "", executable: String? = nil) {
        self.kind = kind
        self.state = state
        self.clientVersion = clientVersion
        self.serverVersion = serverVersion
        self.detail = InertText.line(detail)
        self.executable = executable
    }

    public var isInstalled: Bool { state != .notInstalled }
    public var version: String? { serverVersion ?? clientVersion }
}
