import Foundation

/// A readable line for a person, from one stream-json event.
public struct RenderedLine: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case system, text, thinking, toolCall, toolResult, toolError, result, resultError, invalid
    }

    public var kind: Kind
    /// Inert text: safe to print to a terminal.
    public var text: String

    public init(kind: Kind, text: String) {
        self.kind = kind
        self.text = text
    }
}

/// Turns events into readable, inert lines. Long tool output is cut; the full output stays on disk.
public struct EventRenderer: Sendable {
    public var maxToolResultLines: Int
    public var maxLineLength: Int

    public init(maxToolResultLines: Int = 6, maxLineLength: Int = 2_000) {
        self.maxToolResultLines = maxToolResultLines
        self.maxLineLength = maxLineLength
    }

    public func render(_ event: StreamEvent) -> [RenderedLine] {
        switch event {
        case .systemInit(let i):
            var parts = ["session started"]
            if let m = i.model { parts.append("model \(m)") }
            if let v = i.claudeCodeVersion { parts.append("Claude Code \(v)") }
            if let c = i.cwd { parts.append("in \(c)") }
            return [line(.system, parts.joined(separator: ", "))]
        case .system:
            return []
        case .apiRetry(let attempt, let status, let error):
            let what = [status.map { "HTTP \($0)" }, error].compactMap { $0 }.joined(separator: " ")
            return [line(.system, "API call failed\(what.isEmpty ? "" : " (\(what))"), retry \(attempt + 1)")]
        case .assistant(let blocks):
            return blocks.flatMap { block -> [RenderedLine] in
                switch block {
                case .text(let t):
                    return InertText.lines(t).map { RenderedLine(kind: .text, text: cut($0)) }
                case .thinking(let t):
                    return t.isEmpty ? [] : [line(.thinking, "(thinking) " + firstLine(t))]
                case .toolUse(_, let name, let input):
                    let arg = Self.mainArgument(tool: name, input: input)
                    return [line(.toolCall, arg.isEmpty ? "→ \(name)" : "→ \(name) \(firstLine(arg))")]
                case .other:
                    return []
                }
            }
        case .toolResults(let results):
            return results.flatMap { r -> [RenderedLine] in
                var body = r.content.lineSlices
                if body.count > 1, body.last?.isEmpty == true { body.removeLast() }
                if r.isError {
                    return [line(.toolError, "✗ tool error: " + (body.first.map { InertText.line($0) } ?? ""))]
                }
                // Only the lines shown are made inert; the rest are counted.
                var out = body.prefix(maxToolResultLines).map {
                    RenderedLine(kind: .toolResult, text: "  " + cut(InertText.line($0)))
                }
                if body.count > maxToolResultLines {
                    out.append(line(.toolResult, "  … \(body.count - maxToolResultLines) more lines"))
                }
                return out
            }
        case .result(let r):
            return [line(r.isError ? .resultError : .result, Self.describe(r))]
        case .unknown:
            return []
        case .invalid(let reason):
            return [line(.invalid, "(unreadable output line: \(reason))")]
        }
    }

    /// `success: All done. (3 turns, $0.0123)` / `error_during_execution: …`.
    public static func describe(_ r: ResultEvent) -> String {
        var head = r.isError ? "✗ " : "✓ "
        head += r.isError && r.subtype == "success" ? (r.terminalReason ?? "error") : r.subtype
        if let t = r.terminalReason, r.isError, !head.hasSuffix(t) { head += " (\(t))" }
        if let text = r.result, !text.isEmpty {
            head += ": " + InertText.line(text.firstLine)
        }
        return head
    }

    /// The argument a person wants to see next to a tool name (raw: the caller makes it inert).
    public static func mainArgument(tool: String, input: JSONValue) -> String {
        let keys: [String]
        switch tool {
        case "Write", "Read", "Edit", "MultiEdit", "NotebookEdit": keys = ["file_path", "notebook_path"]
        case "Bash": keys = ["command"]
        case "Grep", "Glob": keys = ["pattern"]
        case "WebFetch": keys = ["url"]
        case "WebSearch": keys = ["query"]
        case "Task", "Agent": keys = ["description", "prompt"]
        case "TodoWrite": return ""
        default: keys = ["file_path", "path", "command", "url", "query", "pattern", "description"]
        }
        for k in keys {
            if let s = input[k]?.stringValue { return s }
        }
        return ""
    }

    private func line(_ kind: RenderedLine.Kind, _ text: String) -> RenderedLine {
        RenderedLine(kind: kind, text: cut(InertText.line(text)))
    }

    /// The first non-empty line, marked when more follow.
    private func firstLine(_ s: String) -> String {
        let lines = s.lineSlices
        guard let i = lines.firstIndex(where: { !$0.isEmpty }) else { return "" }
        let more = lines[(i + 1)...].contains { !$0.isEmpty }
        return InertText.line(lines[i]) + (more ? " …" : "")
    }

    private func cut(_ s: String) -> String {
        // Characters never outnumber bytes: a short byte count needs no counting.
        guard s.utf8.count > maxLineLength, s.count > maxLineLength else { return s }
        return String(s.prefix(maxLineLength)) + " …[cut]"
    }
}
