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
