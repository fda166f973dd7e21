import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// SplitMix64: a fixed seed gives the same inputs on every run, so a failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random bytes and random mutations of real input: the parsers may refuse them, never trap.
/// Beyond "no crash", every number that does come out must be in its range.
@Suite struct ParserFuzzTests {
    static let hostile: [String] = [
        "1e400", "-1e400", "1e22", "1e308", "-0", "-0.0", "-", "1e", "0.", ".5", "+5", "--1", "1e-400", "1.5",
        "1234567890123456789012345", "-99999999999999999999", "9007199254740993", "9223372036854775808",
        "NaN", "Infinity", "-Infinity", #""123""#, "true", "false", "{}", "[]", "null", #""\ud800""#, #""\u0000""#,
        "{", "[", "\"", ",", ":", "\\", "\u{0}", "\u{FF}", "é", "😀", "e", "E+", "00012",
    ]
    static let jsonish = Array(#"{}[]":,0123456789-+.eE tfnrual\ "#.utf8)

    static func randomBytes(_ g: inout SeededGenerator) -> [UInt8] {
        let count = Int.random(in: 0...200, using: &g)
        let alphabet = Bool.random(using: &g) ? nil : jsonish
        return (0..<count).map { _ in alphabet?.randomElement(using: &g) ?? UInt8.random(in: 0...255, using: &g) }
    }

    /// One to three edits: a number swapped for a hostile token, a token inserted, bytes flipped,
    /// cut, repeated or dropped.
    static func mutate(_ input: [UInt8], _ g: inout SeededGenerator) -> [UInt8] {
        var b = input
        for _ in 0..<Int.random(in: 1...3, using: &g) {
            let at = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &g)
            let token = Array(hostile.randomElement(using: &g)!.utf8)
            switch Int.random(in: 0..<7, using: &g) {
            case 0, 1:
                // The digits (and sign, point, exponent) around a random digit, replaced.
                let digits = b.indices.filter { (0x30...0x39).contains(b[$0]) }
                guard let d = digits.randomElement(using: &g) else { b.insert(contentsOf: token, at: at); continue }
                let numeric: (UInt8) -> Bool = { (0x30...0x39).contains($0) || Array("-+.eE".utf8).contains($0) }
                var lo = d, hi = d
                while lo > 0, numeric(b[lo - 1]) { lo -= 1 }
                while hi + 1 < b.count, numeric(b[hi + 1]) { hi += 1 }
                b.replaceSubrange(lo...hi, with: token)
            case 2: b.insert(contentsOf: token, at: at)
            case 3: if !b.isEmpty { b[at] = UInt8.random(in: 0...255, using: &g) }
            case 4: b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...20, using: &g)))
            case 5: b.insert(contentsOf: b[at..<min(b.count, at + Int.random(in: 1...40, using: &g))], at: at)
            default: b = Array(b.prefix(at))
            }
        }
        return b
    }

    static func checkStream(_ data: Data) {
        let event = StreamEventParser().parse(data: data)
        switch event {
        case .result(let r):
            #expect(r.numTurns.map { $0 >= 0 } ?? true)
            #expect(r.durationMS.map { (0...JSONValue.maxExactInteger).contains($0) } ?? true)
            #expect(r.durationAPIMS.map { (0...JSONValue.maxExactInteger).contains($0) } ?? true)
            #expect(r.totalCostUSD.map { $0.isFinite && $0 >= 0 } ?? true)
        case .apiRetry(let attempt, let status, _):
            #expect(attempt >= 0)
            #expect(status.map { (100...599).contains($0) } ?? true)
        default: break
        }
        var progress = RunProgress()
        progress.apply(event, at: Date(timeIntervalSince1970: 1_800_000_000))
        _ = EventRenderer().render(event)
        if case .result(let r) = event {
            _ = EventRenderer.describe(r)
            _ = r.durationMS.map { RunSummary.formatSeconds(Double($0) / 1000) }
        }
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let window = Date(timeIntervalSince1970: 1_577_836_800)...Date(timeIntervalSince1970: 7_258_118_400)

    static func checkCredentials(_ data: Data) {
        guard let c = try? ClaudeCredentials.parse(data) else { return }
        #expect(c.expiresAt.map { window.contains($0) } ?? true)
        for w in c.warnings { #expect(w.contains("expiresAt")) }
        let status = TokenStatus(token: c.token(source: .credentialsFile(path: "p")), now: now)
        _ = status.timeLeft.map { TokenStatus.format(duration: abs($0)) }
    }

    static func checkEverythingElse(_ data: Data) {
        _ = JSONValue.parse(data)?.text
        let text = String(decoding: data, as: UTF8.self)
        _ = try? Dotenv.parse(text)
        if let state = EngineOutput.parseInspectState(text) {
            #expect(state.exitCode.map { (0...255).contains($0) } ?? true)
        }
        _ = EngineOutput.parseContainers(text)
        _ = EngineOutput.parseVersion(text)
    }

    @Test func randomBytes() {
        var g = SeededGenerator(seed: 0xCCDE_C0DE)
        for _ in 0..<3_000 {
            let data = Data(Self.randomBytes(&g))
            Self.checkStream(data)
            Self.checkCredentials(data)
            Self.checkEverythingElse(data)
        }
    }

    @Test func mutationsOfARealRecording() {
        var g = SeededGenerator(seed: 42)
        let lines = TestPaths.fixture("stream-write_and_bash.jsonl").split(separator: "\n").map { Array($0.utf8) }
        #expect(lines.count >= 8)
        for _ in 0..<4_000 {
            let line = Self.mutate(lines.randomElement(using: &g)!, &g)
            Self.checkStream(Data(line))
            Self.checkEverythingElse(Data(line))
        }
    }

    @Test func everyNumberOfTheResultLineSwappedForEveryHostileToken() throws {
        let lines = TestPaths.fixture("stream-write_and_bash.jsonl").split(separator: "\n")
        let result = try #require(lines.last { $0.contains(#""type":"result""#) })
        for token in Self.hostile {
            // Every run of digits at once: num_turns, duration_ms, total_cost_usd and the usage counts.
            var out = ""
            var inNumber = false
            for ch in result {
                let numeric = ch.isASCII && (ch.isNumber || ch == "." || ch == "e" && inNumber)
                if numeric { if !inNumber { out += token }; inNumber = true } else { out.append(ch); inNumber = false }
            }
            Self.checkStream(Data(out.utf8))
        }
    }

    @Test func mutationsOfCredentials() {
        var g = SeededGenerator(seed: 7)
        let real = Array(#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-AAAA","refreshToken":"sk-ant-ort01-BBBB","expiresAt":1795000000000,"scopes":["user:inference","user:profile"],"subscriptionType":"max"}}"#.utf8)
        for _ in 0..<3_000 {
            Self.checkCredentials(Data(Self.mutate(real, &g)))
        }
    }

    @Test func mutationsOfEngineOutput() {
        var g = SeededGenerator(seed: 99)
        let inspect = Array(#"[{"Id":"x","State":{"Status":"exited","Running":false,"ExitCode":137,"StartedAt":"2026-11-29T01:45:12.123456789Z","FinishedAt":"2026-11-29T01:45:15.5Z"}}]"#.utf8)
        let ps = Array(#"[{"AutoRemove":false,"Created":1795916712,"Id":"abcdef","Labels":{"ccdeck.run":"r1"},"Names":["ccdeck-r1"],"State":"exited"}]"#.utf8)
        for _ in 0..<2_000 {
            Self.checkEverythingElse(Data(Self.mutate(inspect, &g)))
            for c in EngineOutput.parseContainers(String(decoding: Self.mutate(ps, &g), as: UTF8.self)) {
                #expect(c.createdAt.map { $0.timeIntervalSince1970 >= 0 && $0.timeIntervalSince1970 <= 7_258_118_400 } ?? true)
            }
        }
    }

    @Test func randomDotenvText() {
        var g = SeededGenerator(seed: 2024)
        let pieces = ["A", "_b", "=", "\"", "'", "\\", "#", " ", "\t", "\n", "\r", "\r\n", "export ", "export",
                      "\u{0}", "\u{301}", "😀", "é", "x", "1", "\\n", "\u{FFFD}"]
        for _ in 0..<3_000 {
            let text = (0..<Int.random(in: 0...40, using: &g)).map { _ in pieces.randomElement(using: &g)! }.joined()
            do {
                let env = try Dotenv.parse(text)
                #expect(Set(env.keys) == Set(env.values.keys))
                for v in env.values.values { #expect(!v.unicodeScalars.contains("\0")) }
            } catch {
                #expect(error.line >= 1 && error.line <= text.utf8.count + 1)
                #expect(!error.problem.isEmpty)
            }
        }
    }
}
