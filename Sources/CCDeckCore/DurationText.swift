import Foundation

/// Durations as people type them: `90s`, `5m`, `1h30m`, `2d`, `1.5h`, or a bare number of seconds.
public enum DurationText {
    static let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]

    /// Seconds, or nil when the text is not a positive duration under about 30 years.
    public static func parse(_ text: String) -> TimeInterval? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard !t.isEmpty, t.utf8.count <= 32 else { return nil }
        if let plain = Double(t) { return plain > 0 && plain < 1e9 ? plain : nil }
        var total = 0.0
        var number = ""
        var sawUnit = false
        for c in t {
            if c.isASCII && (c.isNumber || c == ".") {
                number.append(c)
            } else if let unit = units[c], let n = Double(number), n >= 0 {
                total += n * unit
                number = ""
                sawUnit = true
            } else {
                return nil
            }
        }
        guard number.isEmpty, sawUnit, total > 0, total < 1e9 else { return nil }
        return total
    }

    /// `45s`, `5m`, `1h30m`, `2d3h`: the shortest exact-enough form.
    public static func format(_ seconds: TimeInterval) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(max(s, 0))s" }
        if s < 3600 { return s % 60 == 0 ? "\(s / 60)m" : "\(s / 60)m\(s % 60)s" }
        if s < 86_400 { return (s % 3600) / 60 == 0 ? "\(s / 3600)h" : "\(s / 3600)h\((s % 3600) / 60)m" }
        return (s % 86_400) / 3600 == 0 ? "\(s / 86_400)d" : "\(s / 86_400)d\((s % 86_400) / 3600)h"
    }
}
