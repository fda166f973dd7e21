import Foundation

/// The same task run on several modes, N times each, reduced to what a reader wants: per mode,
/// outcome counts and the median (with min and max) of every phase, the wall time, the model API
/// time, turns and cost; then the fastest to a first event, the cheapest, and what failed and why.
/// Pure: records in, numbers out (`ccdeck compare` runs the tasks and prints this).
public struct Comparison: Sendable, Codable, Equatable {
    public static let schema = "ccdeck.compare/1"

    /// A median and its range, in the unit of the field it stands for.
    public struct Spread: Sendable, Codable, Equatable {
        public var median: Double
        public var min: Double
        public var max: Double
        public var count: Int

        public init?(_ values: [Double]) {
            let xs = values.filter(\.isFinite).sorted()
            guard !xs.isEmpty else { return nil }
            let mid = xs.count / 2
            median = xs.count % 2 == 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2
            min = xs[0]
            max = xs[xs.count - 1]
            count = xs.count
        }
    }

    public struct Variant: Sendable, Codable, Equatable {
        /// `docker`, or `docker+gvisor` for an isolation that is not the mode's own.
        public var name: String
        public var mode: String
        public var isolation: String?
        /// Could it run here at all; if not, why.
        public var ready: Bool
        public var reason: String?
        public var runs: [String]
        public var succeeded: Int
        public var failed: Int
        public var stopped: Int
        /// Seconds since each run was created: `ready`, `started`, `firstEvent`, `result`, `cleanup`.
        public var phases: [String: Spread]
        public var wallSeconds: Spread?
        public var apiSeconds: Spread?
        public var turns: Spread?
        public var costUSD: Spread?
        /// One line per failed run: its id and reason.
        public var failures: [String]
    }

    public var schema = Comparison.schema
    public var prompt: String
    public var repeatCount: Int
    public var parallel: Bool
    public var variants: [Variant]
    /// The lines a reader wants: fastest to first event, cheapest, what failed.
    public var findings: [String]

    /// Marks the runs of one comparison in their records (`group`).
    public static func newGroupID() -> String {
        "cmp-" + String(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_FFFF, radix: 16)
    }

    public static let phaseNames = ["ready", "started", "firstEvent", "result", "cleanup"]

    /// - Parameter variants: in the order asked, each with its records (or why it could not run).
    public init(prompt: String, repeatCount: Int, parallel: Bool,
                variants: [(name: String, mode: String, isolation: String?, notReady: String?, records: [RunRecord])]) {
        self.prompt = prompt
        self.repeatCount = repeatCount
        self.parallel = parallel
        self.variants = variants.map { v in
            let rs = v.records
            func offsets(_ pick: (RunPhases) -> Date?) -> [Double] {
                rs.compactMap { r in pick(r.phases).map { $0.timeIntervalSince(r.createdAt) } }
            }
            var phases: [String: Spread] = [:]
            let picks: [(String, (RunPhases) -> Date?)] = [("ready", { $0.imageReady }), ("started", { $0.containerStarted }),
                                                          ("firstEvent", { $0.firstEvent }), ("result", { $0.result }),
                                                          ("cleanup", { $0.cleanupDone })]
            for (name, pick) in picks { phases[name] = Spread(offsets(pick)) }
            return Variant(name: v.name, mode: v.mode, isolation: v.isolation, ready: v.notReady == nil, reason: v.notReady,
                           runs: rs.map(\.id), succeeded: rs.filter { $0.state == .succeeded }.count,
                           failed: rs.filter { $0.state == .failed || $0.state == .unknown || $0.state.isLive }.count,
                           stopped: rs.filter { $0.state == .stopped }.count, phases: phases,
                           wallSeconds: Spread(rs.compactMap(\.wallTime)), apiSeconds: Spread(rs.compactMap(\.apiSeconds)),
                           turns: Spread(rs.compactMap { r in r.turns.map { Double($0) } }), costUSD: Spread(rs.compactMap(\.costUSD)),
                           failures: rs.filter { $0.state != .succeeded }.map { "\($0.id): \(InertText.line($0.reason ?? $0.state.rawValue))" })
        }
        var findings: [String] = []
        let ran = self.variants.filter { $0.ready && $0.succeeded > 0 }
        if let fastest = ran.min(by: { ($0.phases["firstEvent"]?.median ?? .infinity) < ($1.phases["firstEvent"]?.median ?? .infinity) }),
           let t = fastest.phases["firstEvent"]?.median {
            findings.append("fastest to the first agent event: \(fastest.name) (median \(Self.seconds(t)))")
        }
        if let fastest = ran.min(by: { ($0.wallSeconds?.median ?? .infinity) < ($1.wallSeconds?.median ?? .infinity) }),
           let t = fastest.wallSeconds?.median {
            findings.append("fastest overall: \(fastest.name) (median wall \(Self.seconds(t)))")
        }
        if let cheapest = ran.min(by: { ($0.costUSD?.median ?? .infinity) < ($1.costUSD?.median ?? .infinity) }),
           let c = cheapest.costUSD?.median {
            findings.append("cheapest: \(cheapest.name) (median \(String(format: "$%.4f", c)))")
        }
        for v in self.variants where !v.ready { findings.append("\(v.name) did not run: \(v.reason ?? "not ready")") }
        for v in self.variants where v.failed + v.stopped > 0 {
            findings.append("\(v.name): \(v.failed) failed, \(v.stopped) stopped: " + v.failures.prefix(2).joined(separator: "; "))
        }
        self.findings = findings
    }

    public static func seconds(_ s: Double) -> String { s < 10 ? String(format: "%.2fs", s) : String(format: "%.1fs", s) }

    /// `0.43s (0.40–0.51s)`, or `-`.
    public static func cell(_ s: Spread?, cost: Bool = false, integer: Bool = false) -> String {
        guard let s else { return "-" }
        func f(_ x: Double) -> String {
            if cost { return String(format: "$%.4f", x) }
            if integer { return String(format: "%.0f", x) }
            return seconds(x)
        }
        return s.count == 1 || s.min == s.max ? f(s.median) : "\(f(s.median)) (\(f(s.min))–\(f(s.max)))"
    }

    /// The table's header and one row per variant, in cells.
    public var table: (header: [String], rows: [[String]]) {
        let header = ["MODE", "OK", "FAILED", "STOPPED", "READY", "STARTED", "FIRST EVENT", "RESULT", "CLEANUP", "WALL", "API", "TURNS", "COST"]
        let rows = variants.map { v -> [String] in
            // Not ready: the reason goes last, where a long cell widens nothing.
            guard v.ready else { return [v.name] + Array(repeating: "-", count: header.count - 2) + ["not ready: " + (v.reason ?? "?")] }
            return [v.name, "\(v.succeeded)", "\(v.failed)", "\(v.stopped)"]
                + Self.phaseNames.map { Self.cell(v.phases[$0]) }
                + [Self.cell(v.wallSeconds), Self.cell(v.apiSeconds), Self.cell(v.turns, integer: true), Self.cell(v.costUSD, cost: true)]
        }
        return (header, rows)
    }

    /// The same table in Markdown, then the findings.
    public var markdown: String {
        let (header, rows) = table
        var out = "| " + header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: header.count) + "\n"
        for row in rows {
            let cells = row + Array(repeating: "", count: max(0, header.count - row.count))
            out += "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n"
        }
        out += "\n" + findings.map { "- " + $0 }.joined(separator: "\n") + "\n"
        return out
    }
}
