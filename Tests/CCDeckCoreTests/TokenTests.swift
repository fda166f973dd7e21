import CCDeckCore
import Foundation
import Testing

@Suite struct CredentialsTests {
    static let expiry: Double = 1_795_000_000_000  // epoch ms

    func json(_ oauth: String) -> Data { Data(#"{"claudeAiOauth":{\#(oauth)}}"#.utf8) }

    @Test func validLoginCredentials() throws {
        let c = try ClaudeCredentials.parse(json(#""accessToken":"sk-ant-oat01-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","refreshToken":"sk-ant-ort01-bbbb","expiresAt":1795000000000,"scopes":["user:inference","user:profile"],"subscriptionType":"max","refreshTokenExpiresAt":1800000000000"#))
        #expect(c.hasRefreshToken)
        #expect(c.expiresAt == Date(timeIntervalSince1970: 1_795_000_000))
        #expect(c.scopes == ["user:inference", "user:profile"])
        #expect(c.subscriptionType == "max")
        let t = c.token(source: .credentialsFile(path: "/h/.claude/.credentials.json"))
        #expect(t.kind == .oauthAccessToken)
    }

    @Test func setupTokenShapeHasNoRefreshToken() throws {
        let c = try ClaudeCredentials.parse(json(#""accessToken":"sk-ant-oat01-xxxxxxxx","scopes":["user:inference"]"#))
        #expect(c.token(source: .credentialsFile(path: "p")).kind == .setupToken)
    }

    @Test(arguments: [
        ("not json at all", ClaudeCredentials.ParseError.notJSON),
        ("[]", .notJSON),
        (#"{"other":{}}"#, .missingOAuthEntry),
        (#"{"claudeAiOauth":{"refreshToken":"r"}}"#, .missingOAuthEntry),
        (#"{"claudeAiOauth":{"accessToken":""}}"#, .emptyAccessToken),
        (#"{"claudeAiOauth":{"accessToken":"  "}}"#, .emptyAccessToken),
        (#"{"claudeAiOauth":{"accessToken":5}}"#, .wrongType(field: "accessToken")),
        (#"{"claudeAiOauth":{"accessToken":"t","scopes":[1]}}"#, .wrongType(field: "scopes")),
    ])
    func malformed(text: String, expected: ClaudeCredentials.ParseError) {
        #expect(throws: expected) { try ClaudeCredentials.parse(Data(text.utf8)) }
    }
}

@Suite struct TokenStatusTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func token(expiresIn: TimeInterval?, scopes: [String]? = ["user:inference"]) -> Token {
        Token(value: "sk-ant-oat01-" + String(repeating: "x", count: 90), kind: .oauthAccessToken,
              source: .credentialsFile(path: "p"), expiresAt: expiresIn.map { now.addingTimeInterval($0) }, scopes: scopes)
    }

    @Test func fineWhenFarFromExpiry() {
        let s = TokenStatus(token: token(expiresIn: 8 * 3600), now: now)
        #expect(s.urgency == .fine)
        #expect(abs((s.timeLeft ?? 0) - 8 * 3600) < 0.01)
        #expect(s.warnings.isEmpty)
    }

    @Test func warnsInsideTwoHours() {
        let s = TokenStatus(token: token(expiresIn: 2 * 3600 - 1), now: now)
        #expect(s.urgency == .expiringSoon)
        #expect(s.warnings == ["token expires in 1h 59m: runs longer than that will fail"])
    }

    @Test func expiredAsTheClockMoves() {
        let t = token(expiresIn: 60)
        #expect(TokenStatus(token: t, now: now).urgency == .expiringSoon)
        #expect(TokenStatus(token: t, now: now.addingTimeInterval(60)).urgency == .expired)
        let later = TokenStatus(token: t, now: now.addingTimeInterval(3600))
        #expect(later.urgency == .expired)
        #expect(later.warnings.first?.hasPrefix("token expired 59m 00s ago") == true)
    }

    @Test func unknownWithoutExpiry() {
        #expect(TokenStatus(token: token(expiresIn: nil), now: now).urgency == .unknown)
    }

    @Test func missingInferenceScope() {
        let s = TokenStatus(token: token(expiresIn: 9000, scopes: ["user:profile"]), now: now)
        #expect(s.warnings == ["token lacks the user:inference scope: Claude Code will refuse it"])
        #expect(TokenStatus(token: token(expiresIn: 9000, scopes: nil), now: now).warnings.isEmpty)
    }

    @Test func redactionShowsAtMostTwelvePlusFour() {
        let secret = "sk-ant-oat01-" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnop-WXYZ"
        let r = Token.redact(secret)
        #expect(r == "sk-ant-oat01…WXYZ")
        #expect(Token.redact("short") == "s…")
        #expect(Token.redact("") == "(empty)")
        let t = Token(value: secret, kind: .setupToken, source: .environment(variable: "X"))
        #expect("\(t)" == r)
        #expect(!String(describing: t).contains("ABCDEFGH"))
    }

    @Test func kindFromPrefix() {
        #expect(TokenKind.guess(from: "sk-ant-api03-x") == .apiKey)
        #expect(TokenKind.guess(from: "sk-ant-oat01-x") == .setupToken)
        #expect(TokenKind.guess(from: "whatever") == .unknown)
        #expect(TokenKind.apiKey.environmentVariable == "ANTHROPIC_API_KEY")
    }

    @Test func durations() {
        #expect(TokenStatus.format(duration: 5) == "5s")
        #expect(TokenStatus.format(duration: 125) == "2m 05s")
        #expect(TokenStatus.format(duration: 7500) == "2h 05m")
        #expect(TokenStatus.format(duration: 3 * 86_400 + 7200) == "3d 2h")
    }
}
