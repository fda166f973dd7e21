/// What a run's sandbox is made of and what it was given: recorded with every run, shown
/// in `runs show` and the dashboard, and filled in by each backend's traits.

/// The boundary between the agent and the host.
public enum Isolation: String, Sendable, Codable, Equatable, CaseIterable {
    /// A container on the host's kernel (docker, podman with runc).
    case sharedKernel = "shared-kernel"
    /// A container whose system calls a user-space kernel intercepts (runsc).
    case gvisor
    /// A virtual machine with its own kernel (Docker Sandboxes).
    case microVM = "microvm"
    /// A full system container with its own init (Incus).
    case systemContainer = "system-container"
    /// A machine somewhere else (Fly.io).
    case remoteMachine = "remote-machine"
    /// Namespaces around a host process, no daemon (bubblewrap).
    case namespaces
    /// No boundary at all (test backends only).
    case none

    public var label: String {
        switch self {
        case .sharedKernel: return "shared kernel"
        case .gvisor: return "gVisor"
        case .microVM: return "microVM"
        case .systemContainer: return "system container"
        case .remoteMachine: return "remote machine"
        case .namespaces: return "namespaces"
        case .none: return "none"
        }
    }
}

/// How the token travels to the agent.
public enum TokenDelivery: String, Sendable, Codable, Equatable {
    /// A variable copied from the engine client's environment by name (`-e NAME`): never a value in argv.
    case environmentByName = "environment-by-name"
    /// A 0600 file pushed into the sandbox from stdin and removed after the run.
    case file
    /// Written to the agent's stdin.
    case stdin
    /// Not at all: a proxy outside the sandbox adds the credential to the agent's requests.
    case hostProxy = "host-proxy"
    /// Stored beforehand as the platform's secret, given to the machine at boot.
    case appSecret = "app-secret"

    public var label: String {
        switch self {
        case .environmentByName: return "environment variable, passed by name"
        case .file: return "file pushed from stdin (0600), removed after the run"
        case .stdin: return "standard input"
        case .hostProxy: return "none: the backend's host proxy injects it"
        case .appSecret: return "app secret, pushed beforehand"
        }
    }
}

/// What the sandbox therefore holds.
public enum CredentialExposure: String, Sendable, Codable, Equatable {
    case nothing
    /// An OAuth access token that expires within hours.
    case shortLivedAccessToken = "short-lived-access-token"
    /// A setup token (about a year) or an API key (until revoked).
    case longLivedToken = "long-lived-token"
    /// A token of a kind ccdeck cannot tell.
    case unknownToken = "unknown-token"

    public var label: String {
        switch self {
        case .nothing: return "nothing"
        case .shortLivedAccessToken: return "a short-lived access token"
        case .longLivedToken: return "a long-lived token"
        case .unknownToken: return "a token of unknown lifetime"
        }
    }

    /// What a sandbox holds when `delivery` brings it `token`. A token read from a variable
    /// without metadata may be a setup token or an access token: its lifetime is unknown.
    public static func of(_ token: Token, delivery: TokenDelivery) -> CredentialExposure {
        if delivery == .hostProxy { return .nothing }
        if token.kindIsGuessed && token.kind != .apiKey { return .unknownToken }
        switch token.kind {
        case .oauthAccessToken: return .shortLivedAccessToken
        case .setupToken, .apiKey: return .longLivedToken
        case .unknown: return .unknownToken
        }
    }
}

/// How the user's workspace reaches the agent and its changes come back.
public enum WorkspaceTransport: String, Sendable, Codable, Equatable {
    /// Bind-mounted at a fixed path inside (`/workspace`).
    case mount
    /// Shared at the same absolute path inside as outside.
    case samePathShare = "same-path-share"
    /// Copied up before the run and the changes fetched back after it.
    case uploadAndDownload = "upload-and-download"
    /// The agent works on the host folder itself.
    case inPlace = "in-place"

    public var label: String {
        switch self {
        case .mount: return "mounted"
        case .samePathShare: return "shared at the same path"
        case .uploadAndDownload: return "uploaded, changes fetched back"
        case .inPlace: return "in place"
        }
    }
}

/// Recorded per run: what the sandbox was given and what it therefore held.
public struct CredentialRecord: Sendable, Codable, Equatable {
    public var delivery: TokenDelivery
    public var exposure: CredentialExposure

    public init(delivery: TokenDelivery, exposure: CredentialExposure) {
        self.delivery = delivery
        self.exposure = exposure
    }

    /// `a short-lived access token (environment variable, passed by name)`.
    public var summary: String { "\(exposure.label) (\(delivery.label))" }
}
