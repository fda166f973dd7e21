/// A key press, decoded from the terminal by the adapter (or made up by tests).
public enum Key: Hashable, Sendable, CustomStringConvertible {
    case char(Character)
    case ctrl(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case tab, backTab, enter, escape, backspace, delete
    case function(Int)
    /// Text the terminal delivered as one bracketed paste: never a command, only text for a field.
    case paste(String)

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
        case .paste: return "paste"
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

    /// The key a character read from the terminal stands for (control codes included), if any.
    public static func character(_ v: UInt32) -> Key? {
        switch v {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        case 1...26: return .ctrl(Character(Unicode.Scalar(v + 96)!))
        default:
            guard let scalar = Unicode.Scalar(v), v >= 32 else { return nil }
            return .char(Character(scalar))
        }
    }
}

/// One unit of terminal input as the adapter reads it: a character, or a key the terminal
/// library already decoded from an escape sequence.
public enum TerminalInput: Equatable, Sendable {
    case scalar(UInt32)
    case key(Key)
}

/// Turns terminal input into keys, and a bracketed paste (`ESC [200~ … ESC [201~`, sent by the
/// terminal once the dashboard asks with `ESC [?2004h`) into one `.paste`: pasted newlines are
/// text, not Enter, and a paste costs one edit instead of one per character.
public struct InputDecoder: Sendable {
    static let pasteStart: [UInt32] = [27, 91, 50, 48, 48, 126]  // ESC [ 2 0 0 ~
    static let pasteEnd: [UInt32] = [27, 91, 50, 48, 49, 126]    // ESC [ 2 0 1 ~

    /// Pasted text past this many UTF-8 bytes is dropped (more than any field holds).
    public let maxPasteBytes: Int
    /// A prefix of a paste marker, held until it matches or cannot.
    private var pending: [UInt32] = []
    private var pasted: String?
    private var pastedBytes = 0
    private var afterCR = false

    public init(maxPasteBytes: Int = 4 << 20) { self.maxPasteBytes = maxPasteBytes }

    /// Inside a paste: the adapter hands over a pasted escape sequence as characters, not as a key.
    public var inPaste: Bool { pasted != nil }

    public mutating func feed(_ input: TerminalInput) -> [Key] {
        switch input {
        case .scalar(let v): return feed(scalar: v)
        case .key(let key):
            if pasted != nil {
                flushPendingIntoPaste()
                if key == .enter { appendPasted(13) } else if key == .tab { appendPasted(9) }
                return []
            }
            return pendingKeys() + [key]
        }
    }

    /// Nothing more is waiting: a held ESC was the escape key. A paste in progress waits for its end.
    public mutating func flush() -> [Key] {
        pasted == nil ? pendingKeys() : []
    }

    /// Every key in `scalars`, as if they arrived in one read.
    public mutating func decode(_ scalars: some Sequence<Unicode.Scalar>) -> [Key] {
        scalars.flatMap { feed(.scalar($0.value)) } + flush()
    }

    private mutating func feed(scalar v: UInt32) -> [Key] {
        let marker = pasted == nil ? Self.pasteStart : Self.pasteEnd
        if !pending.isEmpty || v == 27 {
            let candidate = pending + [v]
            if marker.starts(with: candidate) {
                pending = candidate
                guard candidate.count == marker.count else { return [] }
                pending = []
                if let text = pasted {
                    pasted = nil
                    return [.paste(text)]
                }
                pasted = ""
                pastedBytes = 0
                afterCR = false
                return []
            }
            if !pending.isEmpty {
                // Not a marker after all: what was held is ordinary input, then this one is looked at afresh.
                if pasted != nil {
                    flushPendingIntoPaste()
                    return feed(scalar: v)
                }
                return pendingKeys() + feed(scalar: v)
            }
        }
        if pasted != nil {
            appendPasted(v)
            return []
        }
        return Key.character(v).map { [$0] } ?? []
    }

    private mutating func pendingKeys() -> [Key] {
        defer { pending = [] }
        return pending.compactMap(Key.character)
    }

    private mutating func flushPendingIntoPaste() {
        for v in pending { appendPasted(v) }
        pending = []
    }

    /// Pasted line ends (CR, LF, CR LF: terminals send CR) all become one `\n`.
    private mutating func appendPasted(_ v: UInt32) {
        let wasCR = afterCR
        afterCR = v == 13
        if v == 10 && wasCR { return }
        let scalar = v == 13 ? "\n" : Unicode.Scalar(v) ?? "\u{FFFD}"
        let size = UTF8.width(scalar)
        guard pastedBytes + size <= maxPasteBytes else { return }
        pastedBytes += size
        pasted?.unicodeScalars.append(scalar)
    }
}

import Foundation
