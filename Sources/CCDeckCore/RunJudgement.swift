/// How a run ended, judged by its final `result` event rather than the exit code:
/// the CLI can exit 0 after an API error (`is_error: true`), and a run with no
/// `result` event at all did not finish.
public enum RunOutcome: String, Sendable, Codable, Equatable {
    case succeeded, failed, stopped
}

public struct RunVerdict: Sendable, Equatable, Codable {
    public var outcome: RunOutcome
    /// One line, inert, never contains the token.
    public var reason: String

    public init(outcome: RunOutcome, reason: String) {
        self.outcome = outcome
        self.reason = reason
    }
}

public enum RunJudgement {
    /// - Parameters:
    ///   - result: the run's `result` event, if one arrived.
    ///   - exitStatus: the agent process's exit status (nil when unknown).
    ///   - stopped: the user stopped the run.
    ///   - stderrTail: last lines the process wrote to stderr, for the reason when nothing else explains.
    public static func judge(result: ResultEvent?, exitStatus: Int32?, stopped: Bool = false,
                             stderrTail: [String] = [], lastAPIFailure: (status: Int?, error: String?)? = nil) -> RunVerdict {
        if stopped {
            return RunVerdict(outcome: .stopped, reason: "stopped by the user")
        }
        guard let result else {
            var reason = "no result event"
            if let exitStatus { reason += " (agent exited with status \(exitStatus))" }
            if let last = meaningfulLine(stderrTail) { reason += ": " + last }
            return RunVerdict(outcome: .failed, reason: reason)
        }
        if !result.isError && result.subtype == "success" {
            return RunVerdict(outcome: .succeeded, reason: "success")
        }
        // An API error ends with subtype "success" and is_error true: the terminal reason says more.
        var reason = result.isError && result.subtype == "success" ? (result.terminalReason ?? "error") : result.subtype
        if let t = result.terminalReason, !reason.contains(t) { reason += " (\(t))" }
        if let status = lastAPIFailure?.status {
            reason += " [HTTP \(status)" + (lastAPIFailure?.error.map { " \($0)" } ?? "") + "]"
        }
        if let text = result.result?.firstLine, !text.isEmpty {
            reason += ": " + InertText.line(text)
        }
        if lastAPIFailure?.status == 401 || lastAPIFailure?.status == 403 {
            reason += " (check the token: ccdeck token show)"
        }
        // A non-success subtype fails even with is_error false: the agent did not finish the task.
        return RunVerdict(outcome: .failed, reason: reason)
    }
}

extension RunJudgement {
    /// The line of a tool's stderr that says what went wrong, inert: the last one that reads like
    /// an error, else the last that is not empty, not a usage line and not a pointer to `--help`
    /// ("Run 'docker run --help' for more information").
    public static func meaningfulLine(_ lines: [String]) -> String? {
        let candidates = lines.map { $0.trimmingCharactersInWhitespace }.filter { line in
            !line.isEmpty && !line.hasPrefix("Usage:")
                && !(line.contains("--help") && (line.hasPrefix("Run '") || line.hasPrefix("See '")))
        }
        let errorWords = ["error", "unknown", "invalid", "no such", "not found", "denied", "failed", "cannot", "unable"]
        let error = candidates.last { line in errorWords.contains { line.localizedCaseInsensitiveContains($0) } }
        return (error ?? candidates.last).map { InertText.line($0) }
    }
}

extension StringProtocol {
    var trimmingCharactersInWhitespace: Substring {
        let s = self[...]
        guard let first = s.firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = s.lastIndex(where: { !$0.isWhitespace })!
        return Substring(s[first...last])
    }
}
