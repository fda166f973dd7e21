import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

@Suite struct TokenResolverTests {
    let dir = TemporaryDirectory()
    let envToken = "sk-ant-oat01-ENVENVENVENVENVENVENVENVENVENVENVENV"
    let fileToken = "sk-ant-oat01-FILEFILEFILEFILEFILEFILEFILEFILEFILE"

    func resolver(_ env: [String: String] = [:], keychain: String? = nil) -> TokenResolver {
        var e = ["HOME": dir.path + "/home"]
        e.merge(env) { $1 }
        return TokenResolver(environment: e, currentDirectory: dir.path + "/cwd", keychain: { keychain })
    }

    func writeCredentials(_ json: String, under base: String? = nil) {
        dir.write((base ?? "home/.claude") + "/.credentials.json", json, mode: 0o600)
    }

    func credentials(token: String, expiresAt: Int = 1_900_000_000_000) -> String {
        #"{"claudeAiOauth":{"accessToken":"\#(token)","refreshToken":"sk-ant-ort01-r","expiresAt":\#(expiresAt),"scopes":["user:inference"],"subscriptionType":"pro"}}"#
    }

    @Test func environmentComesFirst() throws {
        dir.write("cwd/.env", "CLAUDE_CODE_OAUTH_TOKEN=\(fileToken)\n")
        let t = try resolver(["CLAUDE_CODE_OAUTH_TOKEN": envToken]).resolve()
        #expect(t.value == envToken)
        #expect(t.source == .environment(variable: "CLAUDE_CODE_OAUTH_TOKEN"))
        #expect(t.kind == .setupToken && t.kindIsGuessed)
        #expect(t.expiresAt == nil)
    }

    @Test func emptyEnvironmentValueFallsThrough() throws {
        dir.write("cwd/.env", "export CLAUDE_CODE_OAUTH_TOKEN=\"\(fileToken)\"\n")
        let t = try resolver(["CLAUDE_CODE_OAUTH_TOKEN": "  "]).resolve()
        #expect(t.value == fileToken)
        #expect(t.source == .dotenv(path: dir.path + "/cwd/.env"))
    }

    @Test func dotenvThenKeychainThenCredentialsFile() throws {
        writeCredentials(credentials(token: fileToken))
        let fromFile = try resolver().resolve()
        #expect(fromFile.source == .credentialsFile(path: dir.path + "/home/.claude/.credentials.json"))
        #expect(fromFile.kind == .oauthAccessToken)
        #expect(fromFile.subscriptionType == "pro")
        #expect(fromFile.expiresAt == Date(timeIntervalSince1970: 1_900_000_000))

        let fromKeychain = try resolver(keychain: credentials(token: envToken)).resolve()
        #expect(fromKeychain.value == envToken)
        #expect(fromKeychain.source == .keychain(service: "Claude Code-credentials"))

        dir.write("cwd/.env", "# only other things\nOTHER=1\n")
        #expect(try resolver().resolve().value == fileToken)
    }

    @Test func claudeConfigDirMovesTheCredentialsFile() throws {
        writeCredentials(credentials(token: fileToken), under: "elsewhere")
        let t = try resolver(["CLAUDE_CONFIG_DIR": dir.path + "/elsewhere"]).resolve()
        #expect(t.value == fileToken)
    }

    @Test func environmentTokenMatchingTheFileGetsItsExpiry() throws {
        writeCredentials(credentials(token: envToken))
        let t = try resolver(["CLAUDE_CODE_OAUTH_TOKEN": envToken]).resolve()
        #expect(t.kind == .oauthAccessToken)
        #expect(t.expiresAt == Date(timeIntervalSince1970: 1_900_000_000))
        #expect(t.source == .environment(variable: "CLAUDE_CODE_OAUTH_TOKEN"))
    }

    func credentials(token: String, expiresAtJSON raw: String) -> String {
        #"{"claudeAiOauth":{"accessToken":"\#(token)","refreshToken":"sk-ant-ort01-r","expiresAt":\#(raw),"scopes":["user:inference"]}}"#
    }

    @Test(arguments: ["1e22", "-1", "1.5", "1e308", "1e999", #""1700000000000""#, "true", "{}", "1700000000", "0"])
    func anUnbelievableExpiryInTheFileIsUnknownWithAWarning(raw: String) throws {
        writeCredentials(credentials(token: fileToken, expiresAtJSON: raw))
        let t = try resolver().resolve()
        #expect(t.value == fileToken)
        #expect(t.kind == .oauthAccessToken)
        #expect(t.expiresAt == nil)
        #expect(t.warnings.count == 1 && t.warnings.allSatisfy { $0.contains("expiresAt") })
        let status = TokenStatus(token: t, now: Date())
        #expect(status.urgency == .unknown)
        #expect(status.warnings == t.warnings)
    }

    @Test func theWarningFollowsAnEnvironmentTokenThatMatchesTheFile() throws {
        writeCredentials(credentials(token: envToken, expiresAtJSON: "1700000000"))
        let t = try resolver(["CLAUDE_CODE_OAUTH_TOKEN": envToken]).resolve()
        #expect(t.source == .environment(variable: "CLAUDE_CODE_OAUTH_TOKEN"))
        #expect(t.expiresAt == nil)
        #expect(t.warnings.first?.contains("looks like seconds") == true)
    }

    @Test func theKeychainItemIsReadTheSameWay() throws {
        let t = try resolver(keychain: credentials(token: envToken, expiresAtJSON: "-1e999")).resolve()
        #expect(t.expiresAt == nil)
        #expect(t.warnings.first?.contains("expiresAt") == true)
    }

    @Test func aNulInTheDotenvTokenIsAnErrorThatNamesTheLine() {
        dir.write("cwd/.env", "OTHER=1\nCLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-FILE\u{0}FILE\n")
        do {
            _ = try resolver().resolve()
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("line 2"))
            #expect(error.description.contains("NUL"))
            #expect(!error.description.contains("FILE"))
        }
    }

    @Test func aDotenvThatIsADeviceOrAFIFOIsRefusedNotReadForever() throws {
        try FileManager.default.createDirectory(atPath: dir.path + "/cwd", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/cwd/.env", withDestinationPath: "/dev/zero")
        #expect(throws: TokenError.unreadable(path: dir.path + "/cwd/.env", reason: "not a regular file")) {
            try resolver().resolve()
        }
        try FileManager.default.removeItem(atPath: dir.path + "/cwd/.env")
        #expect(mkfifo(dir.path + "/cwd/.env", 0o600) == 0)
        #expect(throws: TokenError.unreadable(path: dir.path + "/cwd/.env", reason: "not a regular file")) {
            try resolver().resolve()
        }
    }

    @Test func anOversizedCredentialsFileIsRefused() throws {
        writeCredentials(String(repeating: " ", count: TokenResolver.maxFileBytes) + credentials(token: fileToken))
        #expect(throws: TokenError.self) { try resolver().resolve() }
        // An environment token is still used; the file only cannot tell its expiry.
        let t = try resolver(["CLAUDE_CODE_OAUTH_TOKEN": fileToken]).resolve()
        #expect(t.expiresAt == nil)
    }

    @Test func malformedDotenvIsAnErrorThatNamesTheFileNotTheSecret() {
        dir.write("cwd/.env", "CLAUDE_CODE_OAUTH_TOKEN='\(fileToken)\n")
        do {
            _ = try resolver().resolve()
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains(".env"))
            #expect(error.description.contains("line 1: unterminated single quote"))
            #expect(!error.description.contains("FILEFILE"))
        }
    }

    @Test func malformedCredentialsFile() {
        writeCredentials(#"{"claudeAiOauth":{"accessToken":""}}"#)
        #expect(throws: TokenError.malformedCredentials(path: dir.path + "/home/.claude/.credentials.json", .emptyAccessToken)) {
            try resolver().resolve()
        }
        writeCredentials("{not json")
        #expect(throws: TokenError.self) { try resolver().resolve() }
    }

    @Test func nothingFoundListsWhereItLooked() {
        do {
            _ = try resolver().resolve()
            Issue.record("expected an error")
        } catch {
            #expect(error == .notFound(searched: ["$CLAUDE_CODE_OAUTH_TOKEN", dir.path + "/cwd/.env",
                                                  dir.path + "/home/.claude/.credentials.json"]))
        }
    }
}
