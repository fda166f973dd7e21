import CCDeckCore
import Foundation
import Testing

/// Numbers from files and other programs: every one out of range, fractional, infinite or of the
/// wrong type reads as unknown (with a warning where the token is concerned), never as a trap.
@Suite struct CredentialsNumberTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func credentials(expiresAt raw: String, refresh: Bool = true) -> Data {
        let refreshField = refresh ? #""refreshToken":"sk-ant-ort01-r","# : ""
        return Data(#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-AAAA",\#(refreshField)"expiresAt":\#(raw),"scopes":["user:inference"],"subscriptionType":"max"}}"#.utf8)
    }

    @Test(arguments: [
        ("1e22", "(1e+22) is not a time between 2020 and 2200 in milliseconds"),
        ("-1", "(-1) is not a time between 2020 and 2200"),
        ("1.5", "(1.5) is not a whole number of milliseconds"),
        ("1e308", "(1e+308) is not a time between"),
        ("1e400", "(inf) is not a time between"),
        ("-1e400", "(-inf) is not a time between"),
        ("1.7976931348623157e308", "is not a time between"),
        (#""1700000000000""#, "is a string, not a number"),
        (#""tomorrow""#, "is a string, not a number"),
        ("true", "is not a number of milliseconds"),
        ("false", "is not a number of milliseconds"),
        ("{}", "is not a number of milliseconds"),
        ("[1700000000000]", "is not a number of milliseconds"),
        ("1700000000", "(1700000000) looks like seconds, not milliseconds"),
        ("0", "(0) is not a time between"),
        ("-0", "(0) is not a time between"),
        ("1700000000000.5", "is not a whole number of milliseconds"),
        ("1234567890123456789012345", "(1.2345678901234568e+24) is not a time between"),
        ("-1234567890123456789012345", "is not a time between"),
        ("9223372036854775808", "is not a time between"),
        ("1577836799999", "(1577836799999) is not a time between"),  // a millisecond before 2020
        ("7258118400001", "(7258118400001) is not a time between"),  // a millisecond after 2200
    ])
    func unbelievableExpiryIsUnknownWithAWarning(raw: String, fragment: String) throws {
        let c = try ClaudeCredentials.parse(credentials(expiresAt: raw))
        #expect(c.expiresAt == nil)
        #expect(c.warnings.count == 1)
        let warning = try #require(c.warnings.first)
        #expect(warning.contains("expiresAt"))
        #expect(warning.contains(fragment), "\(warning)")
        #expect(warning.hasSuffix("expiry unknown"))
        #expect(!warning.contains("AAAA"))

        let token = c.token(source: .credentialsFile(path: "p"))
        #expect(token.kind == .oauthAccessToken)
        #expect(token.warnings == [warning])
        let status = TokenStatus(token: token, now: now)
        #expect(status.urgency == .unknown)
        #expect(status.timeLeft == nil)
        #expect(status.warnings.contains(warning))
    }

    @Test func nullOrMissingExpiryIsUnknownWithoutAWarning() throws {
        for data in [credentials(expiresAt: "null"), Data(#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-x"}}"#.utf8)] {
            let c = try ClaudeCredentials.parse(data)
            #expect(c.expiresAt == nil)
            #expect(c.warnings.isEmpty)
        }
    }

    @Test func anUnreadableExpiryStillMarksAnOAuthToken() throws {
        let c = try ClaudeCredentials.parse(credentials(expiresAt: "1e22", refresh: false))
        #expect(c.token(source: .credentialsFile(path: "p")).kind == .oauthAccessToken)
    }

    @Test(arguments: [
        ("1577836800000", 1_577_836_800.0),  // 2020-01-01, the first instant believed
        ("7258118400000", 7_258_118_400.0),  // 2200-01-01, the last
        ("1795000000000", 1_795_000_000.0),
        ("1.795e12", 1_795_000_000.0),       // an exponent that comes out whole is fine
    ])
    func believableExpiriesAreKept(raw: String, seconds: Double) throws {
        let c = try ClaudeCredentials.parse(credentials(expiresAt: raw))
        #expect(c.expiresAt == Date(timeIntervalSince1970: seconds))
        #expect(c.warnings.isEmpty)
    }

    @Test func aNumberTooLargeForADoubleElsewhereDoesNotFailTheFile() throws {
        let c = try ClaudeCredentials.parse(Data(#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-x","expiresAt":1795000000000,"refreshTokenExpiresAt":1e999},"other":[-1e999]}"#.utf8))
        #expect(c.expiresAt == Date(timeIntervalSince1970: 1_795_000_000))
    }

    @Test func aByteOrderMarkIsTolerated() throws {
        let c = try ClaudeCredentials.parse(Data([0xEF, 0xBB, 0xBF]) + credentials(expiresAt: "1795000000000"))
        #expect(c.expiresAt != nil)
    }
}

@Suite struct TokenStatusExtremesTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    static let century: TimeInterval = 36_500 * 86_400
    static let formats: [(TimeInterval, String)] = [
        (.infinity, "over 36500d"),
        (-.infinity, "0s"),
        (.nan, "?"),
        (1e300, "over 36500d"),
        (-1e300, "0s"),
        (.greatestFiniteMagnitude, "over 36500d"),
        (-.greatestFiniteMagnitude, "0s"),
        (9.3e18, "over 36500d"),  // past Int.max seconds
        (1e19, "over 36500d"),    // what an expiresAt of 1e22 ms used to become
        (-5, "0s"),
        (-0.0, "0s"),
        (59.999, "59s"),
        (century - 1, "36499d 23h"),
        (century, "over 36500d"),
    ]

    @Test(arguments: formats)
    func formatNeverTraps(duration: TimeInterval, expected: String) {
        #expect(TokenStatus.format(duration: duration) == expected)
    }

    @Test(arguments: [TimeInterval.infinity, -TimeInterval.infinity, TimeInterval.nan])
    func anExpiryAtNoRealInstantIsUnknown(seconds: TimeInterval) {
        let t = Token(value: "sk-ant-oat01-x", kind: .oauthAccessToken, source: .environment(variable: "X"),
                      expiresAt: Date(timeIntervalSince1970: seconds))
        let s = TokenStatus(token: t, now: now)
        #expect(s.urgency == .unknown)
        #expect(s.timeLeft == nil)
    }

    @Test(arguments: [1e300, -1e300, 1e19, -1e19])
    func aDistantExpiryStillFormats(seconds: TimeInterval) {
        let t = Token(value: "sk-ant-oat01-x", kind: .oauthAccessToken, source: .environment(variable: "X"),
                      expiresAt: Date(timeIntervalSince1970: seconds))
        let s = TokenStatus(token: t, now: now)
        #expect(s.urgency == (seconds > 0 ? .fine : .expired))
        for w in s.warnings { #expect(w.contains("over 36500d")) }
        #expect(TokenStatus.format(duration: abs(s.timeLeft ?? 0)) == "over 36500d")
        #expect(RunSummary.formatSeconds(s.timeLeft ?? 0).isEmpty == false)
    }
}

@Suite struct StreamNumberTests {
    let parser = StreamEventParser()

    func result(_ fields: String) -> ResultEvent? {
        let line = #"{"type":"result","subtype":"success","is_error":false,\#(fields),"result":"ok"}"#
        guard case .result(let r) = parser.parse(line) else { return nil }
        return r
    }

    static let twentyFive = "1234567890123456789012345"

    /// (raw JSON, num_turns read as, duration_ms read as)
    @Test(arguments: [
        ("1e300", nil, nil),
        ("-5", nil, nil),
        ("1.5", nil, nil),
        ("1e400", nil, nil),
        ("-1e400", nil, nil),
        (#""3""#, nil, nil),
        ("true", nil, nil),
        ("{}", nil, nil),
        ("[3]", nil, nil),
        ("null", nil, nil),
        (twentyFive, nil, nil),
        ("-" + twentyFive, nil, nil),
        ("99999999999999999999", nil, nil),       // 20 digits: past Int64
        ("9223372036854775807", nil, nil),        // Int64.max, which a Double cannot hold
        ("9007199254740993", nil, nil),           // 2^53 + 1: a Double rounds it
        ("9007199254740991", nil, 9_007_199_254_740_991),  // 2^53 - 1, the last exact one
        ("999999999999999", nil, 999_999_999_999_999),     // 15 digits, the fast path's longest
        ("2147483648", nil, 2_147_483_648),       // past Int32: no turn count
        ("-0", 0, 0),
        ("-0.0", 0, 0),
        ("0", 0, 0),
        ("1e2", 100, 100),
        ("1E+2", 100, 100),
        ("3", 3, 3),
        ("1e-400", 0, 0),                         // underflows to zero
    ] as [(String, Int?, Int?)])
    func countsAndDurations(raw: String, turns: Int?, duration: Int?) throws {
        let r = try #require(result(#""num_turns":\#(raw),"duration_ms":\#(raw),"duration_api_ms":\#(raw)"#))
        #expect(r.numTurns == turns)
        #expect(r.durationMS == duration)
        #expect(r.durationAPIMS == duration)
        #expect(r.subtype == "success" && r.isError == false && r.result == "ok")
    }

    @Test(arguments: [
        (#""free""#, nil), ("-0.01", nil), ("1e400", nil), ("1e300", nil), ("true", nil), ("null", nil),
        ("0.25", 0.25), ("0", 0), ("-0", 0), (twentyFive, nil),
    ] as [(String, Double?)])
    func cost(raw: String, expected: Double?) throws {
        let r = try #require(result(#""total_cost_usd":\#(raw)"#))
        #expect(r.totalCostUSD == expected)
    }

    @Test func theExampleLines() throws {
        let r = try #require(result(#""num_turns":1e300,"duration_ms":-5,"total_cost_usd":"free""#))
        #expect(r.numTurns == nil && r.durationMS == nil && r.totalCostUSD == nil)
        var progress = RunProgress()
        progress.apply(.result(r), at: .now)
        #expect(progress.costUSD == nil)
        #expect(!EventRenderer().render(.result(r)).isEmpty)
    }

    @Test(arguments: [
        ("1e20", nil), ("401", 401), (#""401""#, nil), ("99", nil), ("600", nil), ("401.5", nil), ("-401", nil),
        ("1e400", nil), (twentyFive, nil), ("4.01e2", 401), ("true", nil),
    ] as [(String, Int?)])
    func apiRetryStatus(raw: String, expected: Int?) {
        let e = parser.parse(#"{"type":"system","subtype":"api_retry","attempt":1e300,"error_status":\#(raw),"error":"x"}"#)
        #expect(e == .apiRetry(attempt: 0, httpStatus: expected, error: "x"))
    }

    @Test func aStatusFieldOfAnyValueIsIgnored() {
        let e = parser.parse(#"{"type":"system","subtype":"api_retry","attempt":-1,"status":1e20,"error_status":503}"#)
        #expect(e == .apiRetry(attempt: 0, httpStatus: 503, error: nil))
    }

    @Test func hugeNumbersInsideToolInputsAreKeptAndRender() {
        let line = #"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t","name":"Bash","input":{"command":1e400,"n":-1e400,"k":\#(Self.twentyFive),"z":-0}}]}}"#
        guard case .assistant(let blocks) = parser.parse(line), case .toolUse(_, _, let input)? = blocks.first else {
            Issue.record("not parsed"); return
        }
        #expect(input["command"] == .number(.infinity))
        #expect(input["command"]?.text == "inf")
        #expect(input["k"]?.text == "1.2345678901234568e+24")
        #expect(input["z"]?.text == "0")
        #expect(!EventRenderer().render(.assistant(blocks)).isEmpty)
    }
}

@Suite struct EngineNumberTests {
    func inspect(exitCode raw: String, started: String = "2026-11-29T01:45:12.5Z") -> EngineOutput.ContainerState? {
        EngineOutput.parseInspectState(#"[{"Id":"x","State":{"Status":"exited","Running":false,"ExitCode":\#(raw),"StartedAt":"\#(started)","FinishedAt":"2026-11-29T01:45:15Z"}}]"#)
    }

    @Test(arguments: [
        ("1e40", nil), ("1e400", nil), ("-1", nil), ("1.5", nil), (#""0""#, nil), ("256", nil), ("true", nil),
        ("null", nil), ("{}", nil), ("1234567890123456789012345", nil), ("4294967296", nil),
        ("137", 137), ("0", 0), ("-0", 0), ("255", 255),
    ] as [(String, Int32?)])
    func exitCode(raw: String, expected: Int32?) throws {
        let state = try #require(inspect(exitCode: raw))
        #expect(state.exitCode == expected)
        #expect(state.startedAt == Date(timeIntervalSince1970: 1_795_916_712.5))
    }

    @Test func dockersZeroTimeIsNoTime() throws {
        let state = try #require(inspect(exitCode: "0", started: "0001-01-01T00:00:00Z"))
        #expect(state.startedAt == nil)
        #expect(state.finishedAt != nil)
    }

    @Test(arguments: ["1e300", "-5", "1e400", #""x""#, "true", "7258118400001"])
    func podmanCreatedOutOfRange(raw: String) {
        let text = #"[{"Created":\#(raw),"Id":"abc","Labels":{"ccdeck.run":"r1"},"Names":["n"],"State":"exited"}]"#
        let containers = EngineOutput.parseContainers(text)
        #expect(containers.count == 1)
        #expect(containers.first?.createdAt == nil)
        #expect(containers.first?.labels == ["ccdeck.run": "r1"])
    }

    @Test func podmanCreatedInRange() {
        let text = #"[{"Created":1795916712,"Id":"abc","Names":["n"],"State":"exited"}]"#
        #expect(EngineOutput.parseContainers(text).first?.createdAt == Date(timeIntervalSince1970: 1_795_916_712))
    }

    @Test func versionWithAHugeNumberStillReadsTheVersions() {
        let v = EngineOutput.parseVersion(#"{"Client":{"Version":"27.1","ApiVersion":1e400},"Server":{"Version":"27.2","Os":-1e999}}"#)
        #expect(v == .init(client: "27.1", server: "27.2"))
    }
}

@Suite struct SafeNumberTests {
    @Test(arguments: [
        (Double.nan, nil), (.infinity, nil), (-.infinity, nil), (1.5, nil), (-0.0, 0), (0, 0), (5, 5),
        (-5, nil), (9.223372036854775807e18, nil), (-9.223372036854775808e18, nil), (1e300, nil), (100, 100), (101, nil),
    ] as [(Double, Int?)])
    func wholeNumber(value: Double, expected: Int?) {
        #expect(value.wholeNumber(in: 0...100) == expected)
    }

    @Test func wholeNumberAtTheEdgesOfInt() {
        #expect((-9.223372036854775808e18).wholeNumber(in: Int.min...Int.max) == Int.min)
        #expect(9.223372036854775807e18.wholeNumber(in: Int.min...Int.max) == nil)  // rounds up to 2^63
        #expect(JSONValue.string("3").wholeNumber(in: 0...5) == nil)
        #expect(JSONValue.number(3).wholeNumber(in: 0...5) == 3)
    }

    @Test func parseWholeDocuments() {
        #expect(JSONValue.parse(Data("  {\"a\":1e400} \n".utf8)) == .object(["a": .number(.infinity)]))
        #expect(JSONValue.parse(Data([0xEF, 0xBB, 0xBF] + Array("[1]".utf8))) == .array([.number(1)]))
        #expect(JSONValue.parse(Data("{} {}".utf8)) == nil)
        #expect(JSONValue.parse(Data()) == nil)
        #expect(JSONValue.parse(Data([0xEF, 0xBB])) == nil)
        #expect(JSONValue.parse(Data((String(repeating: "[", count: 100_000)).utf8)) == nil)
        #expect(JSONValue.parse(Data("-".utf8)) == nil)
        #expect(JSONValue.parse(Data("\"\\ud800\"".utf8)) == .string("\u{FFFD}"))
    }
}

@Suite struct DotenvHostileTests {
    func problem(_ text: String) -> Dotenv.ParseError? {
        do { _ = try Dotenv.parse(text); return nil } catch { return error }
    }

    @Test(arguments: ["A=x\0y", "A=\"x\0y\"", "A='x\0y'", "A=\"x\n\0\""])
    func nulInAValueIsAnError(text: String) {
        let e = problem(text)
        #expect(e?.line == 1)
        #expect(e?.problem.contains("NUL") == true)
        #expect(e?.description.contains("x") == false)
    }

    @Test func nulElsewhere() throws {
        #expect(problem("A\0=1") == Dotenv.ParseError(line: 1, problem: "invalid variable name"))
        #expect(problem("\0") == Dotenv.ParseError(line: 1, problem: "expected KEY=value"))
        #expect(try Dotenv.parse("# \0 a comment\nA=1")["A"] == "1")
    }

    @Test func exportWithoutAName() {
        #expect(problem("export") == Dotenv.ParseError(line: 1, problem: "expected KEY=value"))
        #expect(problem("export ") == Dotenv.ParseError(line: 1, problem: "expected KEY=value"))
        #expect(problem("export\t\t") == Dotenv.ParseError(line: 1, problem: "expected KEY=value"))
        #expect(problem("export =x") == Dotenv.ParseError(line: 1, problem: "missing variable name before '='"))
        #expect(problem("OK=1\nexport   =x") == Dotenv.ParseError(line: 2, problem: "missing variable name before '='"))
    }

    @Test func aMegabyteLine() throws {
        let big = String(repeating: "x", count: 1 << 20)
        #expect(try Dotenv.parse("A=" + big)["A"]?.count == 1 << 20)
        #expect(try Dotenv.parse("A=\"" + big + "\"")["A"]?.count == 1 << 20)
        #expect(try Dotenv.parse("A=\"" + String(repeating: "\\\\", count: 1 << 19) + "\"")["A"]?.count == 1 << 19)
        #expect(try Dotenv.parse(String(repeating: "K", count: 1 << 20) + "=1").keys.first?.count == 1 << 20)
        #expect(problem("A=\"" + big)?.problem == "unterminated double quote")
        #expect(problem("A='" + big)?.problem == "unterminated single quote")
        #expect(problem(String(repeating: "=", count: 1 << 20))?.problem == "missing variable name before '='")
        #expect(problem(big)?.problem == "expected KEY=value")
        #expect(problem(String(repeating: "#", count: 1 << 20)) == nil)
    }

    @Test func invalidUTF8ArrivesReplaced() throws {
        // The resolver decodes files leniently: bad bytes reach the parser as U+FFFD.
        let text = String(decoding: [0x41, 0x3D, 0xFF, 0xFE, 0xC0, 0x80, 0x0A, 0xED, 0xA0, 0x80, 0x3D, 0x31], as: UTF8.self)
        #expect(problem(text) == Dotenv.ParseError(line: 2, problem: "invalid variable name"))
        #expect(try Dotenv.parse(String(decoding: [0x41, 0x3D, 0xFF], as: UTF8.self))["A"] == "\u{FFFD}")
    }

    @Test func combiningMarksAndStrayCarriageReturns() throws {
        // A combining mark fuses with the character before it: the `=` or quote is no longer one.
        #expect(problem("A=\u{301}x") == Dotenv.ParseError(line: 1, problem: "expected KEY=value"))
        #expect(problem("A=\"\u{301}x\"") == nil)
        #expect(try Dotenv.parse("A=1\rB=2\r\n")["A"] == "1\rB=2")
        #expect(problem("A=1\n\rC=3") == Dotenv.ParseError(line: 2, problem: "invalid variable name"))
        #expect(problem("\r") != nil)
        #expect(problem("A=\"x\\") == Dotenv.ParseError(line: 1, problem: "unterminated double quote"))
    }
}
