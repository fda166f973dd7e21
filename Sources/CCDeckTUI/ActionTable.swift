import Foundation

/// Everything a key can do. One table drives dispatch, the footer, the help overlay and
/// `--readonly` (which drops the dangerous actions).
public enum Action: String, Sendable, CaseIterable, Hashable {
    case launch, attach, stop, remove, prune, compare, changes, totals
    case repushToken = "token"
    case focusNext = "focus-next"
    case focusPrevious = "focus-prev"
    case up, down
    case pageUp = "page-up"
    case pageDown = "page-down"
    case top, bottom, help, quit
}

public struct ActionSpec: Sendable {
    public var action: Action
    public var keys: [Key]
    /// Short footer label; nil keeps the action out of the footer.
    public var hint: String?
    public var help: String
    /// Changes or deletes something: hidden by `--readonly`.
    public var dangerous: Bool
}

public struct ActionTable: Sendable {
    public private(set) var specs: [ActionSpec]
    public let readonly: Bool
    private var byKey: [Key: Action] = [:]

    public static let defaults: [ActionSpec] = [
        ActionSpec(action: .launch, keys: [.char("n")], hint: "launch", help: "launch a run (mode, prompt, workspace)", dangerous: true),
        ActionSpec(action: .attach, keys: [.char("a")], hint: "attach", help: "open a shell in the selected live run's sandbox", dangerous: true),
        ActionSpec(action: .stop, keys: [.char("s")], hint: "stop", help: "stop the selected live run", dangerous: true),
        ActionSpec(action: .remove, keys: [.char("d")], hint: "remove", help: "remove the selected finished run or orphan (asks first)", dangerous: true),
        ActionSpec(action: .prune, keys: [.char("P")], hint: nil, help: "remove every leftover in Orphans (asks first)", dangerous: true),
        ActionSpec(action: .changes, keys: [.char("c")], hint: nil, help: "what the selected run changed in its workspace, to scroll", dangerous: false),
        ActionSpec(action: .totals, keys: [.char("T")], hint: nil, help: "today's and this week's runs and cost, per backend", dangerous: false),
        ActionSpec(action: .compare, keys: [.char("C")], hint: nil, help: "show the last comparison (launch one with n, mode \"all ready modes\")", dangerous: false),
        ActionSpec(action: .repushToken, keys: [.char("t")], hint: "token", help: "read the token again and push it to backends that keep a copy", dangerous: true),
        ActionSpec(action: .focusNext, keys: [.tab], hint: "focus", help: "focus the next pane", dangerous: false),
        ActionSpec(action: .focusPrevious, keys: [.backTab], hint: nil, help: "focus the previous pane", dangerous: false),
        ActionSpec(action: .up, keys: [.up, .char("k")], hint: nil, help: "move up / scroll up", dangerous: false),
        ActionSpec(action: .down, keys: [.down, .char("j")], hint: nil, help: "move down / scroll down", dangerous: false),
        ActionSpec(action: .pageUp, keys: [.pageUp], hint: nil, help: "scroll the output up a page", dangerous: false),
        ActionSpec(action: .pageDown, keys: [.pageDown], hint: nil, help: "scroll the output down a page", dangerous: false),
        ActionSpec(action: .top, keys: [.char("g"), .home], hint: nil, help: "go to the top", dangerous: false),
        ActionSpec(action: .bottom, keys: [.char("G"), .end], hint: nil, help: "go to the bottom and follow new output", dangerous: false),
        ActionSpec(action: .help, keys: [.char("?")], hint: "help", help: "show or hide this help", dangerous: false),
        ActionSpec(action: .quit, keys: [.char("q")], hint: "quit", help: "quit (live runs keep running)", dangerous: false),
    ]

    public struct ConfigError: Error, CustomStringConvertible, Equatable {
        public var line: Int
        public var problem: String
        public var description: String { "line \(line): \(problem)" }
    }

    public init(readonly: Bool = false, overrides: [Action: [Key]] = [:]) {
        self.readonly = readonly
        specs = Self.defaults.filter { !(readonly && $0.dangerous) }.map { spec in
            var s = spec
            if let keys = overrides[spec.action] { s.keys = keys }
            return s
        }
        for spec in specs { for key in spec.keys where byKey[key] == nil { byKey[key] = spec.action } }
    }

    public func action(for key: Key) -> Action? { byKey[key] }

    public func keys(for action: Action) -> [Key] { specs.first { $0.action == action }?.keys ?? [] }

    /// `n launch  a attach  …  q quit` for the footer.
    public var footerHints: [(key: String, label: String)] {
        specs.compactMap { s in s.hint.map { (s.keys.first?.description ?? "?", $0) } }
    }

    /// Parses `keys.conf`: `action = key[, key…]` lines, `#` comments. Unknown actions or keys,
    /// and one key bound to two actions, are errors naming the line.
    /// Files from anywhere parse alike: CR LF and lone CR line ends, a UTF-8 byte order mark and
    /// trailing white space are all accepted.
    public static func parseConfig(_ text: String) throws(ConfigError) -> [Action: [Key]] {
        var result: [Action: [Key]] = [:]
        var owner: [Key: (Action, Int)] = [:]
        let body = text.hasPrefix("\u{FEFF}") ? text.dropFirst() : Substring(text)
        // Swift reads CR LF as one Character, so splitting on "\n" alone left a Windows file one line.
        for (i, raw) in body.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            // `#` itself is a key: "help = #" would be cut above, so allow quoting it as "hash".
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty else { throw ConfigError(line: i + 1, problem: "expected `action = key`") }
            guard let action = Action(rawValue: parts[0]) else {
                throw ConfigError(line: i + 1, problem: "unknown action '\(parts[0].prefix(40))' (known: \(Action.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            var keys: [Key] = []
            for name in parts[1].split(separator: ",") {
                let n = name.trimmingCharacters(in: .whitespaces)
                guard let key = n == "hash" ? Key.char("#") : Key(name: n) else {
                    throw ConfigError(line: i + 1, problem: "unknown key '\(n.prefix(20))'")
                }
                if key == .ctrl("c") { throw ConfigError(line: i + 1, problem: "ctrl-c always quits and cannot be bound") }
                if let (other, otherLine) = owner[key], other != action {
                    throw ConfigError(line: i + 1, problem: "key \(key) is already bound to \(other.rawValue) on line \(otherLine)")
                }
                owner[key] = (action, i + 1)
                keys.append(key)
            }
            guard !keys.isEmpty else { throw ConfigError(line: i + 1, problem: "no key given") }
            result[action] = keys
        }
        // A remapped key must not silently keep triggering its default action too.
        for spec in defaults where result[spec.action] == nil {
            for key in spec.keys {
                if let (other, line) = owner[key] {
                    throw ConfigError(line: line, problem: "key \(key) is \(spec.action.rawValue)'s default; rebind \(spec.action.rawValue) too to give it to \(other.rawValue)")
                }
            }
        }
        return result
    }
}

extension ActionTable {
    /// docs/keybindings.md: every action, its default keys, what it does, and whether --readonly
    /// hides it. Generated from the table itself (`ccdeck dashboard --print-keybindings`); a test
    /// fails when the file is stale.
    public static var keybindingsMarkdown: String {
        var out = """
            # Dashboard keys

            Generated from the dashboard's action table by `ccdeck dashboard --print-keybindings`
            (a test fails when this file is stale). Remap any of them in
            `$XDG_CONFIG_HOME/ccdeck/keys.conf`, one `action = key[, key]` a line.

            | action | keys | what it does | in --readonly |
            |---|---|---|---|

            """
        for spec in defaults {
            let keys = spec.keys.map { "`\($0.description)`" }.joined(separator: ", ")
            out += "| `\(spec.action.rawValue)` | \(keys) | \(spec.help) | \(spec.dangerous ? "hidden" : "yes") |\n"
        }
        return out
    }
}
