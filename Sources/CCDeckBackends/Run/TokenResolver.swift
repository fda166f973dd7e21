import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum TokenError: Error, CustomStringConvertible, Equatable {
    case notFound(searched: [String])
    case malformedDotenv(path: String, Dotenv.ParseError)
    case malformedCredentials(path: String, ClaudeCredentials.ParseError)
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .notFound(let searched):
            return "no Claude Code token found (looked in: \(searched.joined(separator: ", "))); "
                + "set CLAUDE_CODE_OAUTH_TOKEN, put it in ./.env, or log in with `claude`"
        case .malformedDotenv(let path, let e): return "malformed .env file \(path): \(e)"
        case .malformedCredentials(let path, let e): return "malformed credentials file \(path): \(e)"
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        }
    }
}

/// Finds the token the way the docs promise: `CLAUDE_CODE_OAUTH_TOKEN` in the environment,
/// then `./.env`, then the macOS Keychain, then the credentials file.
public struct TokenResolver: Sendable {
    public static let variable = "CLAUDE_CODE_OAUTH_TOKEN"
    public static let keychainService = "Claude Code-credentials"

    public var environment: [String: String]
    public var currentDirectory: String
    /// Reads the Keychain item's JSON; nil everywhere but macOS.
    public var keychain: @Sendable () -> String?

    public init(environment: [String: String], currentDirectory: String = FileManager.default.currentDirectoryPath,
                keychain: (@Sendable () -> String?)? = nil) {
        self.environment = environment
        self.currentDirectory = currentDirectory
        self.keychain = keychain ?? Self.systemKeychain
    }

    public var dotenvPath: String { currentDirectory + "/.env" }

    public var credentialsPath: String {
        if let dir = environment["CLAUDE_CONFIG_DIR"], !dir.isEmpty { return dir + "/.credentials.json" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.claude/.credentials.json"
    }

    public func resolve() throws(TokenError) -> Token {
        var searched = ["$\(Self.variable)"]
        if let value = Self.clean(environment[Self.variable]) {
            return enrich(value, source: .environment(variable: Self.variable))
        }
        searched.append(dotenvPath)
        if let text = try read(dotenvPath) {
            let dotenv: Dotenv
            do { dotenv = try Dotenv.parse(text) } catch { throw .malformedDotenv(path: dotenvPath, error) }
            if let value = Self.clean(dotenv[Self.variable]) {
                return enrich(value, source: .dotenv(path: dotenvPath))
            }
        }
        #if os(macOS)
        searched.append("macOS Keychain")
        #endif
        if let json = keychain() {
            do {
                return try ClaudeCredentials.parse(Data(json.utf8)).token(source: .keychain(service: Self.keychainService))
            } catch { throw .malformedCredentials(path: "Keychain item \(Self.keychainService)", error) }
        }
        searched.append(credentialsPath)
        if let text = try read(credentialsPath) {
            do {
                return try ClaudeCredentials.parse(Data(text.utf8)).token(source: .credentialsFile(path: credentialsPath))
            } catch { throw .malformedCredentials(path: credentialsPath, error) }
        }
        throw .notFound(searched: searched)
    }

    /// A bare token tells nothing of its expiry, unless it is the one in the credentials file.
    private func enrich(_ value: String, source: TokenSource) -> Token {
        if let text = try? read(credentialsPath), let creds = try? ClaudeCredentials.parse(Data(text.utf8)),
           creds.accessToken == value {
            var token = creds.token(source: source)
            token.source = source
            return token
        }
        let kind = TokenKind.guess(from: value)
        return Token(value: value, kind: kind, source: source, kindIsGuessed: kind == .setupToken)
    }

    /// Neither file is ever large: a bigger one is refused rather than read whole.
    public static let maxFileBytes = 16 << 20

    private func read(_ path: String) throws(TokenError) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        // A FIFO or a device (a .env linked to /dev/zero) would block or never end: only plain files are read.
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw .unreadable(path: path, reason: "not a regular file")
        }
        guard st.st_size <= Self.maxFileBytes else {
            throw .unreadable(path: path, reason: "larger than \(Self.maxFileBytes >> 20) MiB, so not a token file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path, reason: "permission denied or not a file")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private static func clean(_ value: String?) -> String? {
        guard let v = value?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
        return v
    }

    @Sendable static func systemKeychain() -> String? {
        #if os(macOS)
        let user = ProcessInfo.processInfo.environment["USER"] ?? NSUserName()
        guard let out = try? ProcessRunner.run(Command("/usr/bin/security",
                                                       ["find-generic-password", "-s", keychainService, "-a", user, "-w"]),
                                               timeout: 5), out.status.succeeded else { return nil }
        let text = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
        #else
        return nil
        #endif
    }
}
