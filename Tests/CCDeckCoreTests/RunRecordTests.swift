import CCDeckCore
import Foundation
import Testing

@Suite struct RunRecordTests {
    let start = Date(timeIntervalSince1970: 1_795_916_712)

    @Test func idsSortByTime() {
        #expect(RunRecord.newID(at: start, random: 0xA3F9) == "20261129-014512-a3f9")
        #expect(RunRecord.newID(at: start.addingTimeInterval(1), random: 0) > RunRecord.newID(at: start, random: 0xFFFF))
        // Every field keeps its width; a fraction of a second never rounds up; only the low 16 bits.
        #expect(RunRecord.newID(at: Date(timeIntervalSince1970: 946_684_799.999), random: 0x1_0005) == "19991231-235959-0005")
        #expect(RunRecord.newID(at: Date(timeIntervalSince1970: 1_801_789_322), random: 0x00A0) == "20270205-010202-00a0")
    }

    @Test func progressCountsTurnsAndCost() {
        var p = RunProgress()
        let t = start
        p.apply(.invalid("not JSON"), at: t)
        #expect(p.firstEventAt == nil)
        p.apply(.systemInit(.init(sessionID: nil, model: "m", cwd: nil, claudeCodeVersion: nil, apiKeySource: nil, tools: [])), at: t.addingTimeInterval(1))
        p.apply(.assistant([.toolUse(id: "1", name: "Write", input: .null)]), at: t.addingTimeInterval(2))
        p.apply(.toolResults([.init(toolUseID: "1", content: "", isError: true)]), at: t.addingTimeInterval(3))
        #expect(p.turns == 1)
        p.apply(.result(ResultEvent(subtype: "success", isError: false, numTurns: 4, totalCostUSD: 0.5)), at: t.addingTimeInterval(4))
        #expect(p.firstEventAt == t.addingTimeInterval(1))
        #expect(p.resultAt == t.addingTimeInterval(4))
        #expect(p.turns == 4)
        #expect(p.costUSD == 0.5)
        #expect(p.toolCalls == 1 && p.toolErrors == 1 && p.invalidLines == 1)
    }

    @Test func summaryLines() {
        var r = RunRecord(id: "r1", mode: .docker, image: "i", sandbox: "c", workspace: "/w", workspaceIsTemporary: true,
                          prompt: "p", keep: false, createdAt: start, driverPID: 1, host: "h", tokenSource: nil)
        r.state = .failed
        r.reason = "success (api_error): API Error: 401"
        r.turns = 1
        r.costUSD = 0
        r.phases.imageReady = start.addingTimeInterval(0.05)
        r.phases.firstEvent = start.addingTimeInterval(1.5)
        r.endedAt = start.addingTimeInterval(2.25)
        #expect(RunSummary.lines(for: r) == [
            "✗ run r1 failed in 2.25s: 1 turn, $0.0000",
            "  reason: success (api_error): API Error: 401",
            "  phases: image ready +0.05s, first agent event +1.50s",
        ])
    }
}
