/// A key press, decoded from the terminal by the adapter (or made up by tests).
public enum Key: Hashable, Sendable, CustomStringConvertible {
    case char(Character)
    case ctrl(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case tab, backTab, enter, escape, backspace, delete
    case function(Int)

    /// The name used in the key config file and on screen: `n`, `ctrl-x`, `tab`, `pgup`, `f1`.
    public var description: String {
        switch self {
        case .char(" "): return "space"
        case .char(let c): return String(c)
        case .ctrl(let c): return "ctrl-\(c)"
        case .up: return "up"
        case .down: return "down"
        case .left: return "left"
        case .right: return "right"
        case .pageUp: return "pgup"
        case .pageDown: return "pgdn"
        case .home: return "home"
        case .end: return "end"
        case .tab: return "tab"
        case .backTab: return "shift-tab"
        case .enter: return "enter"
        case .escape: return "esc"
        case .backspace: return "backspace"
        case .delete: return "delete"
        case .function(let n): return "f\(n)"
        }
    }

    public init?(name: String) {
        let n = name.trimmingCharacters(in: .whitespaces)
        let lower = n.lowercased()
        let named: [String: Key] = [
            "space": .char(" "), "up": .up, "down": .down, "left": .left, "right": .right, "pgup": .pageUp,
            "pageup": .pageUp, "pgdn": .pageDown, "pagedown": .pageDown, "home": .home, "end": .end, "tab": .tab,
            "shift-tab": .backTab, "backtab": .backTab, "enter": .enter, "return": .enter, "esc": .escape,
            "escape": .escape, "backspace": .backspace, "delete": .delete, "del": .delete,
        ]
        if let k = named[lower] { self = k; return }
        if lower.hasPrefix("ctrl-"), lower.count == 6, let c = lower.last, c.isLetter { self = .ctrl(c); return }
        if lower.hasPrefix("f"), let num = Int(lower.dropFirst()), (1...12).contains(num) { self = .function(num); return }
        if n.count == 1, let c = n.first, !c.isWhitespace { self = .char(c); return }
        return nil
    }
}

import Foundation
