/// A backend's name, as runs record it and `--mode` takes it. Open, not an enum: a record
/// written by a newer ccdeck with a mode this one does not know still reads (and shows as
/// unknown), and a backend is added in one file plus one registration line, never here.
public struct BackendKind: RawRepresentable, Hashable, Sendable, Codable, Comparable,
                           ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    public init(from decoder: Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    public static func < (a: BackendKind, b: BackendKind) -> Bool { a.rawValue < b.rawValue }

    /// How people write it: `docker-sandbox` reads `docker sandbox`.
    public var displayName: String { InertText.line(String(rawValue.map { $0 == "-" ? " " : $0 })) }
    public var description: String { displayName }

    // The names ccdeck's own backends register under (records and labels keep these strings).
    public static let docker: BackendKind = "docker"
    public static let podman: BackendKind = "podman"
    /// Docker Sandboxes microVMs, through `docker sandbox` or `sbx`.
    public static let sandbox: BackendKind = "sandbox"
    public static let fly: BackendKind = "fly"
    public static let incus: BackendKind = "incus"
    /// The host's own claude in a bubblewrap sandbox, no daemon.
    public static let local: BackendKind = "local"
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
