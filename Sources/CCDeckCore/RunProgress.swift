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
    /// When the agent last said anything (any line).
    public private(set) var lastEventAt: Date?
    /// What the agent is doing now, as its last events say.
    public private(set) var activity: Activity = .starting
    /// Tool calls made and not yet answered, oldest first (id, name, main argument).
    public private(set) var toolsInFlight: [(id: String, name: String, argument: String)] = []

    /// What a live run is doing, as far as its events tell.
    public enum Activity: Sendable, Equatable {
        case starting
        /// The CLI asked the model and waits for its answer.
        case waitingForModel
        /// Tool calls are running (the oldest is named).
        case runningTool(name: String, argument: String)
        /// The CLI is retrying a failed API call.
        case retryingAPI(attempt: Int, status: Int?)
        case finished

        /// `Bash in flight: npm install`, `API retry 3 (HTTP 529)`, `waiting for the model's answer` (inert).
        public var label: String {
            switch self {
            case .starting: return "starting"
            case .waitingForModel: return "waiting for the model's answer"
            case .runningTool(let name, let argument):
                return InertText.line(name) + " in flight" + (argument.isEmpty ? "" : ": " + InertText.line(String(argument.prefix(80))))
            case .retryingAPI(let attempt, let status): return "API retry \(attempt)" + (status.map { " (HTTP \($0))" } ?? "")
            case .finished: return "finished"
            }
        }
    }

    public init() {}

    public mutating func apply(_ event: StreamEvent, at now: Date) {
        if firstEventAt == nil, case .invalid = event {} else if firstEventAt == nil { firstEventAt = now }
        lastEventAt = now
        switch event {
        case .systemInit(let i):
            model = i.model
            activity = .waitingForModel
        case .assistant(let blocks):
            assistantMessages += 1
            for case .toolUse(let id, let name, let input) in blocks {
                toolCalls += 1
                if toolsInFlight.count < 64 { toolsInFlight.append((id, name, EventRenderer.mainArgument(tool: name, input: input))) }
            }
        case .toolResults(let results):
            toolErrors += results.filter(\.isError).count
            let answered = Set(results.map(\.toolUseID))
            toolsInFlight.removeAll { answered.contains($0.id) }
        case .result(let r):
            result = r
            resultAt = now
            toolsInFlight = []
        case .invalid: invalidLines += 1
        case .apiRetry(let attempt, let status, let error):
            lastAPIFailure = (status, error)
            activity = .retryingAPI(attempt: attempt, status: status)
            return
        case .system, .unknown: break
        }
        if result != nil {
            activity = .finished
        } else if let tool = toolsInFlight.first {
            activity = .runningTool(name: tool.name, argument: tool.argument)
        } else if case .systemInit = event {
            activity = .waitingForModel
        } else if case .toolResults = event {
            activity = .waitingForModel
        } else if case .assistant = event {
            activity = .waitingForModel  // text without a tool call: the CLI asks again or ends
        }
    }

    /// Stalled: live, and silent for `after` seconds since its last event (or since `since`, its start).
    public func stalledFor(now: Date, since start: Date, after: TimeInterval) -> TimeInterval? {
        guard result == nil else { return nil }
        let quiet = now.timeIntervalSince(lastEventAt ?? start)
        return quiet >= after ? quiet : nil
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
