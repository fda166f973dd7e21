import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

@Suite struct StreamEventParserTests {
    let parser = StreamEventParser()

    @Test func realRecordingOfWriteAndBashParsesCompletely() throws {
        let lines = TestPaths.fixture("stream-write_and_bash.jsonl").split(separator: "\n")
        let events = lines.map { parser.parse($0) }
        #expect(!events.contains { if case .invalid = $0 { return true } else { return false } })
        guard case .systemInit(let initEvent) = events.first else { Issue.record("first event is not init"); return }
        #expect(initEvent.claudeCodeVersion == "2.1.332")
        #expect(initEvent.cwd == "/workspace")
        #expect(initEvent.tools.contains("Bash"))
        let toolNames = events.flatMap { e -> [String] in
            guard case .assistant(let blocks) = e else { return [] }
            return blocks.compactMap { if case .toolUse(_, let name, _) = $0 { return name } else { return nil } }
        }
        #expect(toolNames == ["Write", "Bash"])
        guard case .result(let result) = events.last else { Issue.record("last event is not result"); return }
        #expect(result.isError == false)
        #expect(result.subtype == "success")
        #expect(result.numTurns == 3)
        #expect(result.totalCostUSD != nil)
    }

    @Test func realRecordingOf401EndsInAnAPIErrorResult() {
        let events = TestPaths.fixture("stream-http401.jsonl").split(separator: "\n").map { parser.parse($0) }
        guard case .result(let result) = events.last else { Issue.record("no result"); return }
        #expect(result.isError)
        #expect(result.terminalReason == "api_error")
        var progress = RunProgress()
        events.forEach { progress.apply($0, at: .now) }
        let verdict = RunJudgement.judge(result: result, exitStatus: 1, lastAPIFailure: progress.lastAPIFailure)
        #expect(verdict.outcome == .failed)
        #expect(verdict.reason.hasPrefix("api_error [HTTP 401 authentication_failed]: "))
    }

    @Test func systemInit() {
        let e = parser.parse(#"{"type":"system","subtype":"init","session_id":"s1","cwd":"/w","model":"m","tools":["Bash"],"claude_code_version":"2.1.332","apiKeySource":"none"}"#)
        #expect(e == .systemInit(.init(sessionID: "s1", model: "m", cwd: "/w", claudeCodeVersion: "2.1.332",
                                       apiKeySource: "none", tools: ["Bash"])))
    }

    @Test func apiRetryCarriesTheHTTPStatus() {
        let e = parser.parse(#"{"type":"system","subtype":"api_retry","attempt":0,"max_retries":0,"retry_delay_ms":282,"error_status":401,"error":"authentication_failed"}"#)
        #expect(e == .apiRetry(attempt: 0, httpStatus: 401, error: "authentication_failed"))
        #expect(parser.parse(#"{"type":"system","subtype":"api_retry","error_status":null}"#) == .apiRetry(attempt: 0, httpStatus: nil, error: nil))
    }

    @Test(arguments: ["status", "compact_boundary", "hook_started"])
    func otherSystemSubtypes(subtype: String) {
        #expect(parser.parse(#"{"type":"system","subtype":"\#(subtype)","session_id":"s"}"#) == .system(subtype: subtype))
    }

    @Test func assistantTextThinkingAndToolUse() {
        let line = #"{"type":"assistant","message":{"content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"Hi"},{"type":"tool_use","id":"t1","name":"Write","input":{"file_path":"/workspace/a.txt","content":"x"}},{"type":"server_tool_use","id":"s"}],"usage":{"input_tokens":1}},"session_id":"s"}"#
        #expect(parser.parse(line) == .assistant([
            .thinking("hmm"), .text("Hi"),
            .toolUse(id: "t1", name: "Write", input: .object(["file_path": .string("/workspace/a.txt"), "content": .string("x")])),
            .other(type: "server_tool_use"),
        ]))
    }

    @Test func userToolResultsWithStringAndBlockContent() {
        let line = #"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"},{"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"line1"},{"type":"text","text":"line2"}],"is_error":true}]}}"#
        #expect(parser.parse(line) == .toolResults([
            .init(toolUseID: "t1", content: "ok", isError: false),
            .init(toolUseID: "t2", content: "line1\nline2", isError: true),
        ]))
    }

    @Test func userMessageWithPlainStringContentHasNoToolResults() {
        #expect(parser.parse(#"{"type":"user","message":{"role":"user","content":"hello"}}"#) == .toolResults([]))
    }

    @Test func resultSuccessAndError() {
        let ok = parser.parse(#"{"type":"result","subtype":"success","is_error":false,"duration_ms":1200,"duration_api_ms":900,"num_turns":3,"result":"Done","session_id":"s","total_cost_usd":0.0123,"usage":{},"terminal_reason":"completed","ttft_ms":12}"#)
        #expect(ok == .result(ResultEvent(subtype: "success", isError: false, numTurns: 3, totalCostUSD: 0.0123,
                                          durationMS: 1200, durationAPIMS: 900, result: "Done",
                                          terminalReason: "completed", sessionID: "s")))
        let bad = parser.parse(#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":10}"#)
        #expect(bad == .result(ResultEvent(subtype: "error_max_turns", isError: true, numTurns: 10)))
    }

    @Test func unknownTypesAreKeptNotFatal() {
        #expect(parser.parse(#"{"type":"rate_limit_event","rate_limit_info":{}}"#) == .unknown(type: "rate_limit_event"))
        #expect(parser.parse(#"{"type":"stream_event","event":{}}"#) == .unknown(type: "stream_event"))
    }

    @Test(arguments: [
        (#"{"type":"assistant","message":{"content":[{"type":"te"#, "malformed JSON"),
        ("Error: something went wrong", "not JSON"),
        ("", "empty line"),
        ("   ", "empty line"),
        (#"{"no_type":1}"#, "malformed JSON"),
        (#"{"type":"result","subtype":"success"}"#, "result event without subtype or is_error"),
        ("[1,2]", "not JSON"),
    ])
    func truncatedAndNonJSONLines(line: String, reason: String) {
        #expect(parser.parse(line) == .invalid(reason))
    }

    @Test func windowsLineEndingsAndSurroundingBlanks() {
        #expect(parser.parse("  {\"type\":\"system\",\"subtype\":\"status\"}\r") == .system(subtype: "status"))
    }

    @Test func wrongFieldTypesDoNotLoseTheEvent() {
        // A future CLI changing a field's type must not turn a whole event into garbage.
        let e = parser.parse(#"{"type":"system","subtype":"init","tools":"Bash","model":3}"#)
        #expect(e == .systemInit(.init(sessionID: nil, model: nil, cwd: nil, claudeCodeVersion: nil, apiKeySource: nil, tools: [])))
    }
}

@Suite struct JSONScannerEdgeTests {
    let parser = StreamEventParser()

    @Test func escapesIncludingSurrogatePairs() {
        let e = parser.parse(#"{"type":"assistant","message":{"content":[{"type":"text","text":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00\u001b"}]}}"#)
        #expect(e == .assistant([.text("a\"b\\c/d\n\té😀\u{1B}")]))
    }

    @Test func toolInputsKeepTheirShape() {
        let e = parser.parse(#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t","name":"X","input":{"a":[1,2.5,-3e2,true,false,null],"b":{"c":"d"}}}]}}"#)
        #expect(e == .assistant([.toolUse(id: "t", name: "X", input: .object([
            "a": .array([.number(1), .number(2.5), .number(-300), .bool(true), .bool(false), .null]),
            "b": .object(["c": .string("d")]),
        ]))]))
    }

    @Test(arguments: [
        #"{"type":"system","subtype":"init","x":"raw\u{01}control"}"#.replacingOccurrences(of: "\\u{01}", with: "\u{01}"),
        #"{"type":"system" "subtype":"init"}"#,
        #"{"type":"system",}"#,
        #"{"type":"system"} trailing"#,
        #"{"type":"system","x":tru}"#,
        #"{"type":"system","x":"\q"}"#,
        #"{"type":"system","x":"\u12"}"#,
        String(repeating: #"{"a":"#, count: 300) + "1" + String(repeating: "}", count: 300),
    ])
    func malformedInputIsInvalidNeverACrash(line: String) {
        #expect(parser.parse(line) == .invalid("malformed JSON"))
    }

    @Test func unknownFieldsOfAnyShapeAreSkipped() {
        let line = #"{"extra":{"deep":[{"x":[1,{"y":"z"}]}],"s":"q\"}"},"type":"system","subtype":"status","n":-1.5e-3}"#
        #expect(parser.parse(line) == .system(subtype: "status"))
    }
}
