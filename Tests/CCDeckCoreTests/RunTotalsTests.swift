import CCDeckCore
import Foundation
import Testing

@Suite struct RunTotalsTests {
    var utc: Calendar {
        var c = Calendar(identifier: .iso8601)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }
    // Sunday 2026-11-29 10:00 UTC (the ISO week began Monday the 23rd).
    let now = Date(timeIntervalSince1970: 1_795_946_400)

    func record(_ id: String, _ mode: BackendKind, _ state: RunState, endedHoursAgo: Double?, cost: Double?) -> RunRecord {
        var r = RunRecord(id: id, mode: mode, image: "", sandbox: "s", workspace: "/w", workspaceIsTemporary: true, prompt: "p",
                          keep: false, createdAt: now.addingTimeInterval(-3600 * (endedHoursAgo ?? 0) - 60), driverPID: 1, host: "h",
                          tokenSource: nil)
        r.state = state
        r.endedAt = endedHoursAgo.map { now.addingTimeInterval(-3600 * $0) }
        r.costUSD = cost
        return r
    }

    @Test func todayThisWeekAndLive() {
        let records = [
            record("a", .docker, .running, endedHoursAgo: nil, cost: nil),
            record("b", .docker, .succeeded, endedHoursAgo: 1, cost: 0.25),
            record("c", .podman, .failed, endedHoursAgo: 2, cost: 0.05),
            record("d", .podman, .succeeded, endedHoursAgo: 30, cost: 1.00),   // yesterday, this week
            record("e", .local, .succeeded, endedHoursAgo: 24 * 8, cost: 9.00),  // last week
        ]
        let t = RunTotals.of(records, now: now, calendar: utc, byBackend: true)
        #expect(t.live == 1 && t.finishedToday == 2 && t.failedToday == 1)
        #expect(abs(t.costToday - 0.30) < 1e-9 && abs(t.costThisWeek - 1.30) < 1e-9)
        #expect(t.line == "1 live · today 2 finished, 1 failed, $0.30 · this week $1.30")
        #expect(t.byBackend?["podman"]?.failedToday == 1)
        #expect(t.byBackend?["local"] == nil, "a backend whose runs all ended last week has no line, as from the index")
        #expect(t.backendLines.first == "podman: 0 live · today 1 finished, 1 failed, $0.05 · this week $1.05")
        // A run whose driver is gone is not live.
        #expect(RunTotals.of(records, now: now, calendar: utc, isLive: { _ in false }).live == 0)
    }
}
