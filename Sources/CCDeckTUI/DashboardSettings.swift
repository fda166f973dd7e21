import CCDeckCore
import Foundation

/// `$XDG_CONFIG_HOME/ccdeck/dashboard.conf`: how the dashboard calls for attention and when a
/// quiet run counts as stalled. One `name = value` a line, `#` comments:
///
///     bell = off          # no terminal bell when a run here ends or stalls (default on)
///     title = off         # leave the window's title alone (default on: "ccdeck: 2 runs need you")
///     stall-after = 10m   # default 5m
///     timeout = 30m       # the launch form's Timeout to start with (default none)
///
/// Command-line flags win over the file.
public struct DashboardSettings: Sendable, Equatable {
    public var bell = true
    public var title = true
    public var stallAfter: TimeInterval = 300
    public var timeout: TimeInterval?

    public init() {}

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    public static func parse(_ text: String) throws -> DashboardSettings {
        var s = DashboardSettings()
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = (raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
                .trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ParseError(line: i + 1, message: "expected name = value, got \"\(InertText.line(String(line.prefix(60))))\"")
            }
            let (name, value) = (parts[0].lowercased(), parts[1])
            func onOff() throws -> Bool {
                switch value.lowercased() {
                case "on", "yes", "true": return true
                case "off", "no", "false": return false
                default: throw ParseError(line: i + 1, message: "\(name) takes on or off, not \"\(InertText.line(String(value.prefix(40))))\"")
                }
            }
            func duration() throws -> TimeInterval {
                guard let d = DurationText.parse(value) else {
                    throw ParseError(line: i + 1, message: "\(name) takes a duration like 90s or 5m, not \"\(InertText.line(String(value.prefix(40))))\"")
                }
                return d
            }
            switch name {
            case "bell": s.bell = try onOff()
            case "title": s.title = try onOff()
            case "stall-after": s.stallAfter = try duration()
            case "timeout": s.timeout = try duration()
            default:
                throw ParseError(line: i + 1, message: "unknown setting \"\(InertText.line(String(name.prefix(40))))\" "
                                 + "(bell, title, stall-after, timeout)")
            }
        }
        return s
    }
}
