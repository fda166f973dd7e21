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
/// No string of an event is looked at past its first `maxTextBytes`: a 60 MB text costs what 64 KiB do.
public struct EventRenderer: Sendable {
    public var maxToolResultLines: Int
    public var maxLineLength: Int
    public var maxTextBytes: Int

    /// How much of one stored output line is read, parsed and drawn.
    public static let maxStoredLineBytes = 64 << 10

    public init(maxToolResultLines: Int = 6, maxLineLength: Int = 2_000, maxTextBytes: Int = EventRenderer.maxStoredLineBytes) {
        self.maxToolResultLines = maxToolResultLines
        self.maxLineLength = maxLineLength
        self.maxTextBytes = maxTextBytes
    }

    /// A stored stream-json line of which only a prefix was read (`omittedBytes` > 0 when cut):
    /// the prefix is closed into JSON where it can be, so the event still reads as itself, and a
    /// last line says how much is not shown.
    public func render(stored text: String, omittedBytes: Int, parser: StreamEventParser = StreamEventParser()) -> [RenderedLine] {
        guard omittedBytes > 0 else { return render(parser.parse(text)) }
        var out: [RenderedLine]
        if let closed = StoredLine.closedJSON(text) {
            out = render(parser.parse(closed))
        } else {
            out = [line(.invalid, "(unreadable output line: \(text.prefix(200)))")]
        }
        out.append(RenderedLine(kind: .system, text: Self.moreBytes(omittedBytes)))
        return out
    }

    /// `… (59,934,464 more bytes)`: the mark under a cut text.
    public static func moreBytes(_ n: Int) -> String {
        var digits = String(n)
        var i = digits.count - 3
        while i > 0 {
            digits.insert(",", at: digits.index(digits.startIndex, offsetBy: i))
            i -= 3
        }
        return "… (\(digits) more bytes)"
    }

    /// At most `maxTextBytes` of `s` (cut at a character boundary), and how many bytes are left out.
    func bounded(_ s: String) -> (text: Substring, omitted: Int) {
        let total = s.utf8.count
        guard total > maxTextBytes else { return (s[...], 0) }
        let end = StoredLine.scalarBoundary(s, atMost: maxTextBytes)
        let head = s[..<end]
        return (head, total - head.utf8.count)
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
                    let (head, omitted) = bounded(t)
                    var out = InertText.lines(head).map { RenderedLine(kind: .text, text: cut($0)) }
                    // A last line already marked as cut says enough; one that looks whole gets the mark below it.
                    if omitted > 0 && out.last?.text.hasSuffix(Self.cutMark) != true {
                        out.append(RenderedLine(kind: .text, text: Self.moreBytes(omitted)))
                    }
                    return out
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
                let (content, omitted) = bounded(r.content)
                var body = content.lineSlices
                if body.count > 1, body.last?.isEmpty == true { body.removeLast() }
                if r.isError {
                    return [line(.toolError, "✗ tool error: " + (body.first.map { InertText.line($0) } ?? ""))]
                }
                // Only the lines shown are made inert; the rest are counted (past the bound, only some of them).
                var out = body.prefix(maxToolResultLines).map {
                    RenderedLine(kind: .toolResult, text: "  " + cut(InertText.line($0)))
                }
                let hidden = body.count - min(body.count, maxToolResultLines)
                if hidden > 0 && omitted == 0 {
                    out.append(line(.toolResult, "  … \(hidden) more lines"))
                } else if omitted > 0 {
                    // Lines past the bound are not counted, only their bytes.
                    let more = Self.moreBytes(omitted)
                    out.append(line(.toolResult, hidden > 0 ? "  … \(hidden)+ more lines \(more.dropFirst(2))" : "  \(more)"))
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
            // The first line is all that shows: look no further into a huge text than that needs.
            head += ": " + InertText.line(text.utf8.count > maxStoredLineBytes
                                          ? text[..<StoredLine.scalarBoundary(text, atMost: maxStoredLineBytes)].firstLine
                                          : text.firstLine)
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
        let (head, omitted) = bounded(text)
        let shown = cut(InertText.line(head))
        return RenderedLine(kind: kind, text: omitted > 0 && !shown.hasSuffix(Self.cutMark) ? shown + Self.cutMark : shown)
    }

    private static let cutMark = " …[cut]"

    /// The first non-empty line, marked when more follow.
    private func firstLine(_ s: String) -> String {
        let (head, omitted) = bounded(s)
        let lines = head.lineSlices
        guard let i = lines.firstIndex(where: { !$0.isEmpty }) else { return "" }
        let more = omitted > 0 || lines[(i + 1)...].contains { !$0.isEmpty }
        return InertText.line(lines[i]) + (more ? " …" : "")
    }

    private func cut(_ s: String) -> String {
        // Characters never outnumber bytes: a short byte count needs no counting, and a long
        // one only as far as the cut (counting all of a huge line's characters took seconds).
        guard s.utf8.count > maxLineLength else { return s }
        let head = s.prefix(maxLineLength)
        guard head.endIndex < s.endIndex else { return s }
        return String(head) + Self.cutMark
    }
}

/// One line of a run's stored output as it is drawn: at most a bounded prefix of it, and how
/// many bytes were left out.
public struct StoredLine: Sendable, Equatable {
    public var text: String
    public var omittedBytes: Int

    public init(text: String, omittedBytes: Int) {
        self.text = text
        self.omittedBytes = omittedBytes
    }

    /// The first `maxBytes` (at most) of `full`, cut where a character starts.
    public init(_ full: String, maxBytes: Int) {
        let total = full.utf8.count
        guard total > maxBytes else { self.init(text: full, omittedBytes: 0); return }
        let head = String(full[..<Self.scalarBoundary(full, atMost: maxBytes)])
        self.init(text: head, omittedBytes: total - head.utf8.count)
    }

    /// The first `maxBytes` (at most) of raw line bytes, cut where a UTF-8 character starts.
    public init(bytes: some BidirectionalCollection<UInt8>, maxBytes: Int) {
        let total = bytes.count
        var end = bytes.index(bytes.startIndex, offsetBy: min(total, max(0, maxBytes)))
        if total > maxBytes {
            // Back off over continuation bytes (10xxxxxx) to where a character starts.
            var steps = 0
            while end > bytes.startIndex, steps < 4, bytes[end] & 0xC0 == 0x80 {
                end = bytes.index(before: end)
                steps += 1
            }
        }
        let head = bytes[bytes.startIndex..<end]
        self.init(text: String(decoding: head, as: UTF8.self), omittedBytes: total - head.count)
    }

    /// The last index at most `maxBytes` UTF-8 bytes into `s` where a Unicode scalar starts: a cut
    /// there never splits a character's bytes.
    static func scalarBoundary(_ s: String, atMost maxBytes: Int) -> String.Index {
        let u = s.utf8
        guard maxBytes < u.count else { return s.endIndex }
        var end = u.index(u.startIndex, offsetBy: max(0, maxBytes))
        var steps = 0
        while end > u.startIndex, steps < 4, u[end] & 0xC0 == 0x80 {
            end = u.index(before: end)
            steps += 1
        }
        return end
    }

    /// The longest prefix of a cut JSON text that can be closed into valid JSON, closed: an open
    /// string value gets its quote, every open object and array its bracket. Nil when no prefix
    /// can (the text does not start as JSON).
    public static func closedJSON(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        var stack: [UInt8] = []
        var inString = false, isKey = false, escaped = false, hexLeft = 0
        var expectKey = false
        // The last place the text can be cut and closed: where, the open brackets then, and whether inside a string.
        var safe: (end: Int, stack: [UInt8], quote: Bool)?
        for (i, b) in bytes.enumerated() {
            if inString {
                if escaped {
                    escaped = false
                    if b == UInt8(ascii: "u") { hexLeft = 4 }
                    continue
                }
                if hexLeft > 0 { hexLeft -= 1; continue }
                // Before this byte the string could end, unless it splits a character.
                if !isKey && b & 0xC0 != 0x80 { safe = (i, stack, true) }
                if b == UInt8(ascii: "\\") {
                    escaped = true
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                    if !isKey { safe = (i + 1, stack, false) }
                }
                continue
            }
            switch b {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                stack.append(b)
                expectKey = b == UInt8(ascii: "{")
                safe = (i + 1, stack, false)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard !stack.isEmpty else { return nil }
                stack.removeLast()
                expectKey = false
                safe = (i + 1, stack, false)
            case UInt8(ascii: "\""):
                inString = true
                isKey = expectKey && stack.last == UInt8(ascii: "{")
            case UInt8(ascii: ":"):
                expectKey = false
            case UInt8(ascii: ","):
                // Whatever came before a comma was a whole value.
                safe = (i, stack, false)
                expectKey = stack.last == UInt8(ascii: "{")
            default:
                if stack.isEmpty && !(b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A) { return nil }
            }
        }
        // The very end is a place too, unless it splits an escape or a key.
        if inString && !isKey && !escaped && hexLeft == 0 { safe = (bytes.count, stack, true) }
        guard let safe, !safe.stack.isEmpty || !safe.quote else { return nil }
        var closed = String(decoding: bytes[..<safe.end], as: UTF8.self)
        if safe.quote { closed += "\"" }
        for open in safe.stack.reversed() { closed += open == UInt8(ascii: "{") ? "}" : "]" }
        return closed
    }
}
