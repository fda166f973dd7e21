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

/// Decodes stream-json lines. One instance per stream; not thread-safe.
public struct StreamEventParser {
    private let decoder = JSONDecoder()

    public init() {}

    public func parse(_ line: some StringProtocol) -> StreamEvent {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.first == "{" else {
            return .invalid(trimmed.isEmpty ? "empty line" : "not JSON")
        }
        return parse(data: Data(trimmed.utf8))
    }

    public func parse(data: Data) -> StreamEvent {
        let raw: RawEvent
        do {
            raw = try decoder.decode(RawEvent.self, from: data)
        } catch {
            return .invalid("malformed JSON")
        }
        switch raw.type {
        case "system":
            if raw.subtype == "init" {
                return .systemInit(.init(sessionID: raw.session_id, model: raw.model, cwd: raw.cwd,
                                         claudeCodeVersion: raw.claude_code_version,
                                         apiKeySource: raw.apiKeySource, tools: raw.tools ?? []))
            }
            if raw.subtype == "api_retry" {
                return .apiRetry(attempt: raw.attempt ?? 0, httpStatus: raw.error_status, error: raw.error)
            }
            return .system(subtype: raw.subtype ?? "")
        case "assistant":
            return .assistant((raw.message?.content ?? []).map(\.block))
        case "user":
            let results = (raw.message?.content ?? []).compactMap { block -> StreamEvent.ToolResult? in
                guard block.type == "tool_result" else { return nil }
                return .init(toolUseID: block.tool_use_id ?? "", content: block.content?.text ?? "",
                             isError: block.is_error ?? false)
            }
            return .toolResults(results)
        case "result":
            guard let result = try? decoder.decode(ResultEvent.self, from: data) else {
                return .invalid("result event without subtype or is_error")
            }
            return .result(result)
        default:
            return .unknown(type: raw.type)
        }
    }

    // Only the fields ccdeck reads; everything else is ignored.
    private struct RawEvent: Decodable {
        var type: String
        var subtype: String?
        var session_id: String?
        var model: String?
        var cwd: String?
        var claude_code_version: String?
        var apiKeySource: String?
        var tools: [String]?
        var message: RawMessage?
        var attempt: Int?
        var error_status: Int?
        var error: String?

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            type = try c.decode(String.self, forKey: .type)
            subtype = try? c.decodeIfPresent(String.self, forKey: .subtype)
            session_id = try? c.decodeIfPresent(String.self, forKey: .session_id)
            model = try? c.decodeIfPresent(String.self, forKey: .model)
            cwd = try? c.decodeIfPresent(String.self, forKey: .cwd)
            claude_code_version = try? c.decodeIfPresent(String.self, forKey: .claude_code_version)
            apiKeySource = try? c.decodeIfPresent(String.self, forKey: .apiKeySource)
            tools = try? c.decodeIfPresent([String].self, forKey: .tools)
            message = try? c.decodeIfPresent(RawMessage.self, forKey: .message)
            if subtype == "api_retry" {
                attempt = try? c.decodeIfPresent(Int.self, forKey: .attempt)
                error_status = try? c.decodeIfPresent(Int.self, forKey: .error_status)
                error = try? c.decodeIfPresent(String.self, forKey: .error)
            }
        }

        enum Keys: String, CodingKey {
            case type, subtype, session_id, model, cwd, claude_code_version, apiKeySource, tools, message
            case attempt, error_status, error
        }
    }

    private struct RawMessage: Decodable {
        var content: [RawBlock]?

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            if let blocks = try? c.decodeIfPresent([RawBlock].self, forKey: .content) {
                content = blocks
            } else if let text = try? c.decodeIfPresent(String.self, forKey: .content) {
                content = [RawBlock(type: "text", text: text)]
            }
        }

        enum Keys: String, CodingKey { case content }
    }

    private struct RawBlock: Decodable {
        var type: String
        var text: String?
        var thinking: String?
        var id: String?
        var name: String?
        var input: JSONValue?
        var tool_use_id: String?
        var content: JSONValue?
        var is_error: Bool?

        init(type: String, text: String) {
            self.type = type
            self.text = text
        }

        var block: StreamEvent.ContentBlock {
            switch type {
            case "text": return .text(text ?? "")
            case "thinking": return .thinking(thinking ?? "")
            case "tool_use": return .toolUse(id: id ?? "", name: name ?? "?", input: input ?? .null)
            default: return .other(type: type)
            }
        }
    }
}
