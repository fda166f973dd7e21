/// Makes untrusted text (agent output, container logs, error messages from engines)
/// safe to put on a terminal: no escape sequence or control character survives.
///
/// ESC and every other C0 control become visible Unicode control pictures (`␛`, `␇`, …),
/// C1 controls become `�`, tabs expand to spaces, and a line never contains a newline.
/// A sequence such as `ESC ] 0 ; title BEL` therefore shows up as text and does nothing.
public enum InertText {
    /// One display line from arbitrary text: newlines and carriage returns are made visible too.
    public static func line(_ text: some StringProtocol, tabWidth: Int = 4) -> String {
        // Most text is already inert: one pass over the bytes decides.
        if isInertFast(text.utf8) { return String(text) }
        var out = String()
        out.reserveCapacity(text.utf8.count)
        var column = 0
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if v == 0x09 {
                let spaces = tabWidth - column % tabWidth
                out.append(String(repeating: " ", count: spaces))
                column += spaces
                continue
            }
            if v < 0x20 {
                out.unicodeScalars.append(Unicode.Scalar(0x2400 + v)!)
            } else if v == 0x7F {
                out.unicodeScalars.append("\u{2421}")
            } else if (0x80...0x9F).contains(v) {
                out.unicodeScalars.append("\u{FFFD}")
            } else {
                out.unicodeScalars.append(scalar)
            }
            column += 1
        }
        return out
    }

    /// Several display lines: split on newlines (CR LF and LF), each line made inert.
    public static func lines(_ text: some StringProtocol) -> [String] {
        var result: [String] = []
        for part in text.lineSlices {
            result.append(line(part))
        }
        if result.count > 1, result.last == "" { result.removeLast() }
        return result
    }

    /// No byte below 0x20, no DEL, no C1 control (UTF-8 `C2 80`…`C2 9F`).
    static func isInertFast(_ utf8: some Sequence<UInt8>) -> Bool {
        var afterC2 = false
        for b in utf8 {
            if b < 0x20 || b == 0x7F { return false }
            if afterC2 && b < 0xA0 { return false }
            afterC2 = b == 0xC2
        }
        return true
    }

    /// True when the text would reach a terminal unchanged.
    public static func isInert(_ text: some StringProtocol) -> Bool {
        !text.unicodeScalars.contains { v in
            v.value < 0x20 || v.value == 0x7F || (0x80...0x9F).contains(v.value)
        }
    }

    /// True when every line of the text would reach a terminal unchanged (its newlines aside).
    public static func linesAreInert(_ text: some StringProtocol) -> Bool {
        !text.unicodeScalars.contains { v in
            (v.value < 0x20 && v.value != 0x0A) || v.value == 0x7F || (0x80...0x9F).contains(v.value)
        }
    }
}

extension InertText {
    /// A JSON line made safe for a terminal: JSON already escapes C0 controls inside strings,
    /// so only C1 controls (valid unescaped in JSON) and stray controls need escaping.
    public static func jsonLine(_ raw: some Collection<UInt8>) -> String {
        let text = String(decoding: raw, as: UTF8.self)
        guard !isInert(text) else { return text }
        var out = String()
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) {
                out += String(format: "\\u%04x", v)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension StringProtocol {
    /// Lines split on LF and CR LF (a trailing CR is dropped). Works on the UTF-8 bytes: splitting
    /// Characters would be slower, and would miss CR LF, which Swift treats as one Character.
    public var lineSlices: [SubSequence] {
        var out: [SubSequence] = []
        let u = utf8
        var start = u.startIndex
        var crAt: String.UTF8View.Index? = nil  // a CR right before the current byte
        var i = start
        while i != u.endIndex {
            let b = u[i]
            if b == 0x0A {
                out.append(self[start..<(crAt ?? i)])
                start = u.index(after: i)
            }
            crAt = b == 0x0D ? i : nil
            i = u.index(after: i)
        }
        out.append(self[start..<u.endIndex])
        return out
    }

    /// The first line, or "" for empty text.
    public var firstLine: SubSequence {
        lineSlices.first ?? self[startIndex..<startIndex]
    }
}
