import Foundation

/// The figures a person glances at: how many runs are live, what today brought, and what today
/// and this week cost (in the local calendar; a run counts on the day it ended, or started if
/// it has not).
public struct RunTotals: Sendable, Codable, Equatable {
    public var live = 0
    public var finishedToday = 0
    public var failedToday = 0
    public var costToday = 0.0
    public var costThisWeek = 0.0
    /// The same per backend, when asked for.
    public var byBackend: [String: RunTotals]?

    public init() {}

    /// What the totals read of one run.
    public struct Item: Sendable {
        public var mode: String
        public var state: RunState
        /// When it ended, or started if it has not.
        public var day: Date
        public var cost: Double?
        /// Really live (a lost driver's run is not).
        public var live: Bool

        public init(mode: String, state: RunState, day: Date, cost: Double?, live: Bool) {
            self.mode = mode
            self.state = state
            self.day = day
            self.cost = cost
            self.live = live
        }
    }

    /// - Parameter isLive: whether a record is really live (a lost driver's is not).
    public static func of(_ records: [RunRecord], now: Date, calendar: Calendar = .current, byBackend: Bool = false,
                          isLive: (RunRecord) -> Bool = { $0.state.isLive }) -> RunTotals {
        of(items: records.map { Item(mode: $0.mode.rawValue, state: $0.state, day: $0.endedAt ?? $0.createdAt, cost: $0.costUSD,
                                     live: isLive($0)) },
           now: now, calendar: calendar, byBackend: byBackend)
    }

    public static func of(items: [Item], now: Date, calendar: Calendar = .current, byBackend: Bool = false) -> RunTotals {
        let today = calendar.startOfDay(for: now)
        let week = calendar.dateInterval(of: .weekOfYear, for: now)?.start ?? today
        var all = RunTotals()
        var per: [String: RunTotals] = [:]
        for r in items {
            let day = r.day
            // A run that ended before this week counts nowhere, not even as a backend's empty line
            // (the index hands over only this week's and the live ones).
            guard r.live || day >= week else { continue }
            var t = RunTotals()
            if r.live {
                t.live = 1
            } else if day >= today && day <= now.addingTimeInterval(60) {
                t.finishedToday = 1
                if r.state == .failed { t.failedToday = 1 }
            }
            let cost = r.cost ?? 0
            if day >= today { t.costToday = cost }
            if day >= week { t.costThisWeek = cost }
            all.add(t)
            if byBackend { per[r.mode, default: RunTotals()].add(t) }
        }
        if byBackend { all.byBackend = per }
        return all
    }

    mutating func add(_ t: RunTotals) {
        live += t.live
        finishedToday += t.finishedToday
        failedToday += t.failedToday
        costToday += t.costToday
        costThisWeek += t.costThisWeek
    }

    /// `2 live · today 5 finished, 1 failed, $0.42 · this week $3.10`
    public var line: String {
        "\(live) live · today \(finishedToday) finished, \(failedToday) failed, " + Self.money(costToday)
            + " · this week " + Self.money(costThisWeek)
    }

    /// One line a backend, busiest first: `docker: 1 live · today …`.
    public var backendLines: [String] {
        (byBackend ?? [:]).sorted { ($0.value.costThisWeek, $0.key) > ($1.value.costThisWeek, $1.key) }
            .map { InertText.line($0.key) + ": " + $0.value.line }
    }

    static func money(_ usd: Double) -> String { String(format: "$%.2f", usd) }
}
