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
    /// What could not be believed in the token's metadata (each names its field); `TokenStatus` repeats them.
    public var warnings: [String]

    public init(value: String, kind: TokenKind, source: TokenSource, expiresAt: Date? = nil,
                scopes: [String]? = nil, subscriptionType: String? = nil, kindIsGuessed: Bool = false,
                warnings: [String] = []) {
        self.value = value
        self.kind = kind
        self.source = source
        self.expiresAt = expiresAt
        self.scopes = scopes
        self.subscriptionType = subscriptionType
        self.kindIsGuessed = kindIsGuessed
        self.warnings = warnings
    }

    public var redacted: String { Self.redact(value) }

    /// Tells two tokens apart without keeping either: 16 hex digits of a 64-bit FNV-1a hash of
    /// the value, twice (forwards and backwards) so that chance collisions are out of reach.
    public var fingerprint: String { Self.fingerprint(of: value) }

    public static func fingerprint(of value: String) -> String {
        func fnv(_ bytes: some Sequence<UInt8>) -> UInt64 {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            return h
        }
        let hex = { (v: UInt64) in String(("0000000000000000" + String(v, radix: 16)).suffix(16)) }
        return hex(fnv(value.utf8)) + hex(fnv(value.utf8.reversed()))
    }
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
        var warnings = token.warnings
        // A Date built from a NaN or an infinity has no distance from now: unknown, like no expiry.
        if let left = token.expiresAt?.timeIntervalSince(now), left.isFinite {
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

    /// Durations from here on are not spelled out: a corrupt date must not trap converting to Int.
    public static let longestFormatted: TimeInterval = 36_500 * 86_400

    /// `2h 05m`, `45m 10s`, `12s`, `3d 4h`; `0s` below zero, `over 36500d` beyond a century, `?` for NaN.
    public static func format(duration: TimeInterval) -> String {
        guard !duration.isNaN else { return "?" }
        guard duration < longestFormatted else { return "over \(Int(longestFormatted) / 86_400)d" }
        let s = Int(max(0, duration).rounded(.down))
        if s >= 86_400 { return "\(s / 86_400)d \(s % 86_400 / 3600)h" }
        if s >= 3600 { return String(format: "%dh %02dm", s / 3600, s % 3600 / 60) }
        if s >= 60 { return String(format: "%dm %02ds", s / 60, s % 60) }
        return "\(s)s"
    }
}

/// `~/.claude/.credentials.json` (and the Keychain item, which holds the same JSON).
public struct ClaudeCredentials: Sendable, Equatable {
    public var accessToken: String
    public var hasRefreshToken: Bool
    public var expiresAt: Date?
    public var scopes: [String]?
    public var subscriptionType: String?
    /// Fields that were there but could not be believed, each named; they travel on to the token.
    public var warnings: [String] = []
    /// The file gave an expiry, readable or not: only OAuth access tokens have one.
    var statesExpiry = false

    /// Expiries outside 2020-01-01...2200-01-01 are corrupt, or the wrong unit.
    static let plausibleExpiryMS = 1_577_836_800_000...7_258_118_400_000
    static let plausibleExpirySeconds = 1_577_836_800...7_258_118_400

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
        guard let root = JSONValue.parse(data), case .object = root else {
            throw .notJSON
        }
        guard let oauth = root["claudeAiOauth"], case .object = oauth, let tokenValue = oauth["accessToken"] else {
            throw .missingOAuthEntry
        }
        guard case .string(let token) = tokenValue else { throw .wrongType(field: "accessToken") }
        guard !token.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw .emptyAccessToken }
        let (expiresAt, expiryWarning) = expiry(oauth["expiresAt"])
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
                                 scopes: scopes, subscriptionType: oauth["subscriptionType"]?.stringValue,
                                 warnings: expiryWarning.map { [$0] } ?? [],
                                 statesExpiry: oauth["expiresAt"].map { $0 != .null } ?? false)
    }

    /// `expiresAt` (epoch milliseconds) when it is believable; otherwise nil and why, naming the field.
    static func expiry(_ value: JSONValue?) -> (Date?, warning: String?) {
        let unknown = ": expiry unknown"
        switch value {
        case nil, .null?:
            return (nil, nil)
        case .number(let n)?:
            if let ms = n.wholeNumber(in: plausibleExpiryMS) { return (Date(timeIntervalSince1970: Double(ms) / 1000), nil) }
            let shown = JSONValue.number(n).text
            if n.wholeNumber(in: plausibleExpirySeconds) != nil {
                return (nil, "credentials field expiresAt (\(shown)) looks like seconds, not milliseconds\(unknown)")
            }
            if n.isFinite, n.rounded(.towardZero) != n {
                return (nil, "credentials field expiresAt (\(shown)) is not a whole number of milliseconds\(unknown)")
            }
            return (nil, "credentials field expiresAt (\(shown)) is not a time between 2020 and 2200 in milliseconds\(unknown)")
        case .string?:
            return (nil, "credentials field expiresAt is a string, not a number of milliseconds\(unknown)")
        case .bool?, .array?, .object?:
            return (nil, "credentials field expiresAt is not a number of milliseconds\(unknown)")
        }
    }

    /// The token these credentials hold, with everything the file says about it.
    public func token(source: TokenSource) -> Token {
        let kind: TokenKind
        if accessToken.hasPrefix("sk-ant-api") { kind = .apiKey }
        else if hasRefreshToken || expiresAt != nil || statesExpiry { kind = .oauthAccessToken }
        else { kind = .setupToken }
        return Token(value: accessToken, kind: kind, source: source, expiresAt: expiresAt, scopes: scopes,
                     subscriptionType: subscriptionType, warnings: warnings)
    }
}
