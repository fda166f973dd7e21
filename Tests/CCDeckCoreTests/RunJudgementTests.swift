import CCDeckCore
import Foundation
import Testing

@Suite struct RunJudgementTests {
    @Test func successNeedsAResultWithoutError() {
        let v = RunJudgement.judge(result: ResultEvent(subtype: "success", isError: false), exitStatus: 0)
        #expect(v == RunVerdict(outcome: .succeeded, reason: "success"))
    }

    @Test func exitZeroWithAnAPIErrorIsAFailure() {
        let r = ResultEvent(subtype: "success", isError: true, result: "API Error: 401 OAuth token has expired",
                            terminalReason: "api_error")
        let v = RunJudgement.judge(result: r, exitStatus: 0)
        #expect(v.outcome == .failed)
        #expect(v.reason == "api_error: API Error: 401 OAuth token has expired")
        let hinted = RunJudgement.judge(result: r, exitStatus: 1, lastAPIFailure: (401, "authentication_failed"))
        #expect(hinted.reason == "api_error [HTTP 401 authentication_failed]: API Error: 401 OAuth token has expired (check the token: ccdeck token show)")
    }

    @Test func errorSubtypes() {
        let v = RunJudgement.judge(result: ResultEvent(subtype: "error_max_turns", isError: true), exitStatus: 1)
        #expect(v == RunVerdict(outcome: .failed, reason: "error_max_turns"))
        let both = RunJudgement.judge(result: ResultEvent(subtype: "error_during_execution", isError: true, terminalReason: "aborted"), exitStatus: 1)
        #expect(both.reason == "error_during_execution (aborted)")
        let quiet = RunJudgement.judge(result: ResultEvent(subtype: "error_during_execution", isError: false), exitStatus: 0)
        #expect(quiet.outcome == .failed)
    }

    @Test func noResultEventIsAFailureEvenWithExitZero() {
        let v = RunJudgement.judge(result: nil, exitStatus: 0, stderrTail: ["boom", "  "])
        #expect(v == RunVerdict(outcome: .failed, reason: "no result event (agent exited with status 0): boom"))
    }

    @Test func engineErrorsExplainTheMissingResult() {
        let v = RunJudgement.judge(result: nil, exitStatus: 125,
                                   stderrTail: ["docker: Error response from daemon: pull access denied for nope."])
        #expect(v.reason.contains("status 125"))
        #expect(v.reason.contains("pull access denied"))
    }

    @Test func stoppedWinsOverEverything() {
        let v = RunJudgement.judge(result: ResultEvent(subtype: "success", isError: false), exitStatus: 137, stopped: true)
        #expect(v.outcome == .stopped)
    }

    @Test func reasonsAreInert() {
        let r = ResultEvent(subtype: "error_during_execution", isError: true, result: "bad \u{1B}]0;title\u{07} thing")
        #expect(InertText.isInert(RunJudgement.judge(result: r, exitStatus: 1).reason))
        #expect(InertText.isInert(RunJudgement.judge(result: nil, exitStatus: 1, stderrTail: ["\u{1B}[2Jx"]).reason))
    }
}

@Suite struct RunActivityTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let parser = StreamEventParser()

    func event(_ json: String) -> StreamEvent { parser.parse(json) }

    @Test func whatTheAgentIsDoingFollowsItsEvents() {
        var p = RunProgress()
        #expect(p.activity == .starting)
        p.apply(event(#"{"type":"system","subtype":"init","model":"m","session_id":"s","tools":[],"cwd":"/w"}"#), at: t0)
        #expect(p.activity == .waitingForModel)
        p.apply(event(#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"sleep 600\u001b[2J"}}]}}"#), at: t0)
        #expect(p.activity == .runningTool(name: "Bash", argument: EventRenderer.mainArgument(tool: "Bash", input: .object(["command": .string("sleep 600\u{1b}[2J")]))))
        #expect(p.activity.label.hasPrefix("Bash in flight: sleep 600") && InertText.isInert(p.activity.label))
        #expect(p.stalledFor(now: t0.addingTimeInterval(299), since: t0, after: 300) == nil)
        #expect(p.stalledFor(now: t0.addingTimeInterval(301), since: t0, after: 300) == 301)
        p.apply(event(#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}}"#), at: t0)
        #expect(p.activity == .waitingForModel && p.toolsInFlight.isEmpty)
        p.apply(event(#"{"type":"system","subtype":"api_retry","attempt":3,"max_retries":10,"retry_delay_ms":1000,"error_status":529,"error":"overloaded"}"#), at: t0)
        #expect(p.activity.label == "API retry 3 (HTTP 529)")
        p.apply(event(#"{"type":"result","subtype":"success","is_error":false,"result":"done","num_turns":2}"#), at: t0)
        #expect(p.activity == .finished && p.stalledFor(now: t0.addingTimeInterval(1000), since: t0, after: 1) == nil)
    }
}
