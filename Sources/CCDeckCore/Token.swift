import Foundation

public enum TokenKind: String, Sendable, Codable, Equatable {
    case oauthAccessToken = "oauth-access-token"
    case setupToken = "setup-token"
    case apiKey = "api-key"
    case unknown

    public var label: String {
        switch self {
        case .oauthAccessToken: return "OAuth access token"
        case .setupToken: return "long-lived setup token"
        case .apiKey: return "API key"
        case .unknown: return "unrecognised token"
        }
    }

    /// The variable the token goes into inside a run: API keys are not OAuth tokens.
    public var environmentVariable: String {
        self == .apiKey ? "ANTHROPIC_API_KEY" : "CLAUDE_CODE_OAUTH_TOKEN"
    }

    /// Kind from the token's own prefix, for a token that arrives without metadata.
    public static func guess(from value: String) -> TokenKind {
        if value.hasPrefix("sk-ant-api") { return .apiKey }
        if value.hasPrefix("sk-ant-oat") { return .setupToken }
        return .unknown
    }
}

public enum TokenSource: Sendable, Equatable, Codable, CustomStringConvertible {
    case environment(variable: String)
    case dotenv(path: String)
    case keychain(service: String)
    case credentialsFile(path: String)

    public var description: String {
        switch self {
        case .environment(let v): return "environment variable \(v)"
        case .dotenv(let p): return ".env file \(p)"
        case .keychain(let s): return "macOS Keychain (\(s))"
        case .credentialsFile(let p): return "credentials file \(p)"
        }
    }
}

/// A token and what is known about it. Its `description` is the redacted form, so
/// interpolating it into a message or log can never print the secret.
public struct Token: Sendable, Equatable, CustomStringConvertible {
    /// The secret. Read it only to hand it to a child process's environment or to `token extract`.
    public let value: String
    public var kind: TokenKind
    public var source: TokenSource
    public var expiresAt: Date?
    public var scopes: [String]?
    public var subscriptionType: String?
    /// True when the kind was inferred from the prefix, not from a credentials file.
    public var kindIsGuessed: Bool

    public init(value: String, kind: TokenKind, source: TokenSource, expiresAt: Date? = nil,
                scopes: [String]? = nil, subscriptionType: String? = nil, kindIsGuessed: Bool = false) {
        self.value = value
        self.kind = kind
        self.source = source
        self.expiresAt = expiresAt
        self.scopes = scopes
        self.subscriptionType = subscriptionType
        self.kindIsGuessed = kindIsGuessed
    }

    public var redacted: String { Self.redact(value) }
    public var description: String { redacted }

    /// At most the first 12 and last 4 characters, and never more than a third of a short token.
    public static func redact(_ secret: String) -> String {
        let chars = Array(secret)
        guard !chars.isEmpty else { return "(empty)" }
        let head = min(12, chars.count / 4)
        let tail = min(4, chars.count / 8)
        return String(chars[..<head]) + "…" + String(chars[(chars.count - tail)...])
    }
}

/// The token's health at a given instant. The clock is injected so tests can move it.
public struct TokenStatus: Sendable, Equatable {
    public enum Urgency: String, Sendable, Codable, Equatable {
        case fine, expiringSoon = "expiring-soon", expired, unknown
    }

    public static let warningWindow: TimeInterval = 2 * 3600

    public var urgency: Urgency
    public var timeLeft: TimeInterval?
    public var warnings: [String]

    public init(token: Token, now: Date) {
        var warnings: [String] = []
        if let expiresAt = token.expiresAt {
            let left = expiresAt.timeIntervalSince(now)
            timeLeft = left
            if left <= 0 {
                urgency = .expired
                warnings.append("token expired \(Self.format(duration: -left)) ago: run `claude` and log in again, or create a long-lived token with `claude setup-token`")
            } else if left < Self.warningWindow {
                urgency = .expiringSoon
                warnings.append("token expires in \(Self.format(duration: left)): runs longer than that will fail")
            } else {
                urgency = .fine
            }
        } else {
            timeLeft = nil
            urgency = .unknown
        }
        if let scopes = token.scopes, token.kind != .apiKey, !scopes.contains("user:inference") {
            warnings.append("token lacks the user:inference scope: Claude Code will refuse it")
        }
        self.warnings = warnings
    }

    /// `2h 05m`, `45m 10s`, `12s`, `3d 4h`.
    public static func format(duration: TimeInterval) -> String {
        let s = Int(duration.rounded(.down))
        if s >= 86_400 { return "\(s / 86_400)d \(s % 86_400 / 3600)h" }
        if s >= 3600 { return String(format: "%dh %02dm", s / 3600, s % 3600 / 60) }
        if s >= 60 { return String(format: "%dm %02ds", s / 60, s % 60) }
        return "\(max(0, s))s"
    }
}

/// `~/.claude/.credentials.json` (and the Keychain item, which holds the same JSON).
public struct ClaudeCredentials: Sendable, Equatable {
    public var accessToken: String
    public var hasRefreshToken: Bool
    public var expiresAt: Date?
    public var scopes: [String]?
    public var subscriptionType: String?

    public enum ParseError: Error, Equatable, CustomStringConvertible, Sendable {
        case notJSON
        case missingOAuthEntry
        case emptyAccessToken
        case wrongType(field: String)

        public var description: String {
            switch self {
            case .notJSON: return "not valid JSON"
            case .missingOAuthEntry: return "no claudeAiOauth entry with an accessToken"
            case .emptyAccessToken: return "the access token is empty (a failed refresh leaves it so): log in again with `claude`"
            case .wrongType(let f): return "field \(f) has the wrong type"
            }
        }
    }

    public static func parse(_ data: Data) throws(ParseError) -> ClaudeCredentials {
        guard let root = try? JSONDecoder().decode(JSONValue.self, from: data), case .object = root else {
            throw .notJSON
        }
        guard let oauth = root["claudeAiOauth"], case .object = oauth, let tokenValue = oauth["accessToken"] else {
            throw .missingOAuthEntry
        }
        guard case .string(let token) = tokenValue else { throw .wrongType(field: "accessToken") }
        guard !token.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw .emptyAccessToken }
        var expiresAt: Date?
        switch oauth["expiresAt"] {
        case .number(let ms)?: expiresAt = Date(timeIntervalSince1970: ms / 1000)
        case .null?, nil: break
        default: throw .wrongType(field: "expiresAt")
        }
        var scopes: [String]?
        switch oauth["scopes"] {
        case .array(let list)?:
            scopes = try list.map { v throws(ParseError) in
                guard let s = v.stringValue else { throw .wrongType(field: "scopes") }
                return s
            }
        case .string(let s)?: scopes = s.split(separator: " ").map(String.init)
        case .null?, nil: break
        default: throw .wrongType(field: "scopes")
        }
        let refresh = oauth["refreshToken"]?.stringValue ?? ""
        return ClaudeCredentials(accessToken: token, hasRefreshToken: !refresh.isEmpty, expiresAt: expiresAt,
                                 scopes: scopes, subscriptionType: oauth["subscriptionType"]?.stringValue)
    }

    /// The token these credentials hold, with everything the file says about it.
    public func token(source: TokenSource) -> Token {
        let kind: TokenKind
        if accessToken.hasPrefix("sk-ant-api") { kind = .apiKey }
        else if hasRefreshToken || expiresAt != nil { kind = .oauthAccessToken }
        else { kind = .setupToken }
        return Token(value: accessToken, kind: kind, source: source, expiresAt: expiresAt, scopes: scopes,
                     subscriptionType: subscriptionType)
    }
}
