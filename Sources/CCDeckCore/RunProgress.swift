import Foundation

/// What is known about a run as its events arrive. Pure: fed events and instants,
/// it produces the counters the summary and the dashboard show.
public struct RunProgress: Sendable {
    public private(set) var firstEventAt: Date?
    public private(set) var resultAt: Date?
    public private(set) var result: ResultEvent?
    public private(set) var assistantMessages = 0
    public private(set) var toolCalls = 0
    public private(set) var toolErrors = 0
    public private(set) var invalidLines = 0
    public private(set) var model: String?
    /// The last API failure the CLI reported while retrying (`api_retry`), e.g. (401, "authentication_failed").
    public private(set) var lastAPIFailure: (status: Int?, error: String?)?

    public init() {}

    public mutating func apply(_ event: StreamEvent, at now: Date) {
        if firstEventAt == nil, case .invalid = event {} else if firstEventAt == nil { firstEventAt = now }
        switch event {
        case .systemInit(let i): model = i.model
        case .assistant(let blocks):
            assistantMessages += 1
            toolCalls += blocks.filter { if case .toolUse = $0 { return true } else { return false } }.count
        case .toolResults(let results): toolErrors += results.filter(\.isError).count
        case .result(let r):
            result = r
            resultAt = now
        case .invalid: invalidLines += 1
        case .apiRetry(_, let status, let error): lastAPIFailure = (status, error)
        case .system, .unknown: break
        }
    }

    /// Turns as the CLI counts them when it said so, else the assistant messages seen.
    public var turns: Int { result?.numTurns ?? assistantMessages }
    public var costUSD: Double? { result?.totalCostUSD }
}

public enum RunSummary {
    /// `✓ succeeded in 4.2s: 3 turns, $0.0123` and a phase line, both inert.
    public static func lines(for record: RunRecord) -> [String] {
        let glyph: String
        switch record.state {
        case .succeeded: glyph = "✓"
        case .failed: glyph = "✗"
        case .stopped: glyph = "■"
        case .starting, .running, .unknown: glyph = "…"
        }
        var head = "\(glyph) run \(InertText.line(record.id)) \(record.state.rawValue)"
        if let wall = record.wallTime { head += " in \(formatSeconds(wall))" }
        var facts: [String] = []
        if let turns = record.turns { facts.append("\(turns) turn\(turns == 1 ? "" : "s")") }
        if let cost = record.costUSD { facts.append(formatCost(cost)) }
        if let errors = record.toolErrors, errors > 0 { facts.append("\(errors) tool error\(errors == 1 ? "" : "s")") }
        if !facts.isEmpty { head += ": " + facts.joined(separator: ", ") }
        var out = [head]
        if let reason = record.reason, record.state != .succeeded { out.append("  reason: \(InertText.line(reason))") }
        let phases = record.phases.offsets(from: record.createdAt)
        if !phases.isEmpty {
            out.append("  phases: " + phases.map { "\($0.name) +\(formatSeconds($0.seconds))" }.joined(separator: ", "))
        }
        return out
    }

    public static func formatSeconds(_ s: TimeInterval) -> String {
        s < 10 ? String(format: "%.2fs", s) : s < 600 ? String(format: "%.1fs", s) : TokenStatus.format(duration: s)
    }

    public static func formatCost(_ usd: Double) -> String { String(format: "$%.4f", usd) }
}
