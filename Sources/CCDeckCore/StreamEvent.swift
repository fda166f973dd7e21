import Foundation

/// One line of `claude -p --output-format stream-json --verbose`, decoded.
///
/// Unknown event types are kept, never fatal: the CLI adds types between releases.
public enum StreamEvent: Sendable, Equatable {
    case systemInit(SystemInit)
    case system(subtype: String)
    /// The CLI is retrying a failed API call (`system`/`api_retry`): the HTTP status says why.
    case apiRetry(attempt: Int, httpStatus: Int?, error: String?)
    case assistant([ContentBlock])
    case toolResults([ToolResult])
    case result(ResultEvent)
    case unknown(type: String)
    /// A line that is not a JSON object with a `type` (truncated output, stray text).
    case invalid(String)

    public struct SystemInit: Sendable, Equatable {
        public var sessionID: String?
        public var model: String?
        public var cwd: String?
        public var claudeCodeVersion: String?
        public var apiKeySource: String?
        public var tools: [String]

        public init(sessionID: String?, model: String?, cwd: String?, claudeCodeVersion: String?,
                    apiKeySource: String?, tools: [String]) {
            self.sessionID = sessionID
            self.model = model
            self.cwd = cwd
            self.claudeCodeVersion = claudeCodeVersion
            self.apiKeySource = apiKeySource
            self.tools = tools
        }
    }

    public enum ContentBlock: Sendable, Equatable {
        case text(String)
        case thinking(String)
        case toolUse(id: String, name: String, input: JSONValue)
        case other(type: String)
    }

    public struct ToolResult: Sendable, Equatable {
        public var toolUseID: String
        public var content: String
        public var isError: Bool

        public init(toolUseID: String, content: String, isError: Bool) {
            self.toolUseID = toolUseID
            self.content = content
            self.isError = isError
        }
    }
}

/// The final `result` event: the only trustworthy verdict on a run.
public struct ResultEvent: Sendable, Equatable, Codable {
    public var subtype: String
    public var isError: Bool
    public var numTurns: Int?
    public var totalCostUSD: Double?
    public var durationMS: Int?
    public var durationAPIMS: Int?
    public var result: String?
    public var terminalReason: String?
    public var sessionID: String?

    public init(subtype: String, isError: Bool, numTurns: Int? = nil, totalCostUSD: Double? = nil,
                durationMS: Int? = nil, durationAPIMS: Int? = nil, result: String? = nil,
                terminalReason: String? = nil, sessionID: String? = nil) {
        self.subtype = subtype
        self.isError = isError
        self.numTurns = numTurns
        self.totalCostUSD = totalCostUSD
        self.durationMS = durationMS
        self.durationAPIMS = durationAPIMS
        self.result = result
        self.terminalReason = terminalReason
        self.sessionID = sessionID
    }

    enum CodingKeys: String, CodingKey {
        case subtype
        case isError = "is_error"
        case numTurns = "num_turns"
        case totalCostUSD = "total_cost_usd"
        case durationMS = "duration_ms"
        case durationAPIMS = "duration_api_ms"
        case result
        case terminalReason = "terminal_reason"
        case sessionID = "session_id"
    }
}

/// Decodes stream-json lines. Reads only the fields ccdeck uses and skips the rest without
/// building it (see `JSONScanner`): a field of an unexpected type is ignored, not fatal.
public struct StreamEventParser: Sendable {
    public init() {}

    public func parse(_ line: some StringProtocol) -> StreamEvent {
        parse(data: Data(line.utf8))
    }

    public func parse(data: Data) -> StreamEvent {
        data.withUnsafeBytes { parse(bytes: $0) }
    }

    public func parse(bytes: UnsafeRawBufferPointer) -> StreamEvent {
        var scanner = JSONScanner(bytes)
        switch scanner.peek() {
        case nil: return .invalid("empty line")
        case UInt8(ascii: "{")?: break
        default: return .invalid("not JSON")
        }
        var f = Fields()
        do {
            try scanner.object { key, s throws(JSONScanner.Malformed) in try f.read(key, &s) }
            guard scanner.atEnd else { return .invalid("malformed JSON") }
        } catch {
            return .invalid("malformed JSON")
        }
        guard let type = f.type else { return .invalid("malformed JSON") }
        switch type {
        case "system":
            if f.subtype == "init" {
                return .systemInit(.init(sessionID: f.sessionID, model: f.model, cwd: f.cwd,
                                         claudeCodeVersion: f.claudeCodeVersion, apiKeySource: f.apiKeySource,
                                         tools: f.tools ?? []))
            }
            if f.subtype == "api_retry" {
                return .apiRetry(attempt: f.attempt ?? 0, httpStatus: f.errorStatus, error: f.error)
            }
            return .system(subtype: f.subtype ?? "")
        case "assistant":
            return .assistant(f.blocks.map(\.block))
        case "user":
            return .toolResults(f.blocks.compactMap { b in
                guard b.type == "tool_result" else { return nil }
                return .init(toolUseID: b.toolUseID ?? "", content: b.content?.text ?? "", isError: b.isError ?? false)
            })
        case "result":
            guard let subtype = f.subtype, let isError = f.isError else {
                return .invalid("result event without subtype or is_error")
            }
            return .result(ResultEvent(subtype: subtype, isError: isError, numTurns: f.numTurns, totalCostUSD: f.totalCostUSD,
                                       durationMS: f.durationMS, durationAPIMS: f.durationAPIMS, result: f.result,
                                       terminalReason: f.terminalReason, sessionID: f.sessionID))
        default:
            return .unknown(type: type)
        }
    }

    /// The top-level fields ccdeck reads, from any event type (keys may come in any order).
    private struct Fields {
        var type, subtype, sessionID, model, cwd, claudeCodeVersion, apiKeySource: String?
        var tools: [String]?
        var blocks: [Block] = []
        var attempt, errorStatus: Int?
        var error: String?
        var isError: Bool?
        var numTurns, durationMS, durationAPIMS: Int?
        var totalCostUSD: Double?
        var result, terminalReason: String?

        // What each number may be; anything else (negative, fractional, huge, a string) reads as unknown.
        static let count = 0...Int(Int32.max)
        static let milliseconds = 0...JSONValue.maxExactInteger
        static let httpStatus = 100...599
        static let cost: ClosedRange<Double> = 0...1_000_000_000

        mutating func read(_ key: UnsafeRawBufferPointer, _ s: inout JSONScanner) throws(JSONScanner.Malformed) {
            func k(_ name: StaticString) -> Bool { JSONScanner.key(key, is: name) }
            // Most keys of an event are ones ccdeck skips: narrow by length before comparing.
            switch key.count {
            case 3 where k("cwd"): cwd = try s.stringIfPresent()
            case 4 where k("type"): type = try s.stringIfPresent()
            case 5 where k("model"): model = try s.stringIfPresent()
            case 5 where k("tools"): tools = try Self.strings(&s)
            case 5 where k("error"): error = try s.stringIfPresent()
            case 6 where k("result"): result = try s.stringIfPresent()
            case 7 where k("subtype"): subtype = try s.stringIfPresent()
            case 7 where k("message"): blocks = try Self.message(&s)
            case 7 where k("attempt"): attempt = try s.intIfPresent(in: Self.count)
            case 8 where k("is_error"): isError = try s.boolIfPresent()
            case 9 where k("num_turns"): numTurns = try s.intIfPresent(in: Self.count)
            case 10 where k("session_id"): sessionID = try s.stringIfPresent()
            case 11 where k("duration_ms"): durationMS = try s.intIfPresent(in: Self.milliseconds)
            case 12 where k("apiKeySource"): apiKeySource = try s.stringIfPresent()
            case 12 where k("error_status"): errorStatus = try s.intIfPresent(in: Self.httpStatus)
            case 14 where k("total_cost_usd"): totalCostUSD = try s.numberIfPresent().flatMap { Self.cost.contains($0) ? $0 : nil }
            case 15 where k("duration_api_ms"): durationAPIMS = try s.intIfPresent(in: Self.milliseconds)
            case 15 where k("terminal_reason"): terminalReason = try s.stringIfPresent()
            case 19 where k("claude_code_version"): claudeCodeVersion = try s.stringIfPresent()
            default: try s.skipValue()
            }
        }

        /// A list of strings; nil (and skipped) when it is anything else.
        static func strings(_ s: inout JSONScanner) throws(JSONScanner.Malformed) -> [String]? {
            guard s.peek() == UInt8(ascii: "[") else { try s.skipValue(); return nil }
            var out: [String] = []
            var ok = true
            try s.array { s throws(JSONScanner.Malformed) in
                if let v = try s.stringIfPresent() { out.append(v) } else { ok = false }
            }
            return ok ? out : nil
        }

        /// `message.content`: a list of blocks, or a plain string (one text block).
        static func message(_ s: inout JSONScanner) throws(JSONScanner.Malformed) -> [Block] {
            guard s.peek() == UInt8(ascii: "{") else { try s.skipValue(); return [] }
            var blocks: [Block] = []
            try s.object { key, s throws(JSONScanner.Malformed) in
                guard JSONScanner.key(key, is: "content") else { try s.skipValue(); return }
                switch s.peek() {
                case UInt8(ascii: "[")?:
                    try s.array { s throws(JSONScanner.Malformed) in
                        guard s.peek() == UInt8(ascii: "{") else { try s.skipValue(); return }
                        var b = Block()
                        try s.object { key, s throws(JSONScanner.Malformed) in try b.read(key, &s) }
                        blocks.append(b)
                    }
                case UInt8(ascii: "\"")?:
                    var b = Block()
                    b.type = "text"
                    b.text = try s.string()
                    blocks = [b]
                default:
                    try s.skipValue()
                }
            }
            return blocks
        }
    }

    private struct Block {
        var type: String?
        var text, thinking, id, name, toolUseID: String?
        var input: JSONValue?
        var content: JSONValue?
        var isError: Bool?

        mutating func read(_ key: UnsafeRawBufferPointer, _ s: inout JSONScanner) throws(JSONScanner.Malformed) {
            func k(_ name: StaticString) -> Bool { JSONScanner.key(key, is: name) }
            if k("type") { type = try s.stringIfPresent() }
            else if k("text") { text = try s.stringIfPresent() }
            else if k("input") { input = try s.value() }
            else if k("name") { name = try s.stringIfPresent() }
            else if k("id") { id = try s.stringIfPresent() }
            else if k("tool_use_id") { toolUseID = try s.stringIfPresent() }
            else if k("content") { content = try s.value() }
            else if k("is_error") { isError = try s.boolIfPresent() }
            else if k("thinking") { thinking = try s.stringIfPresent() }
            else { try s.skipValue() }
        }

        var block: StreamEvent.ContentBlock {
            switch type {
            case "text": return .text(text ?? "")
            case "thinking": return .thinking(thinking ?? "")
            case "tool_use": return .toolUse(id: id ?? "", name: name ?? "?", input: input ?? .null)
            default: return .other(type: type ?? "")
            }
        }
    }
}
