/// What colour a piece of text means; the terminal adapter maps roles to colour pairs,
/// or to nothing on a monochrome screen (where glyphs and attributes carry the meaning).
public enum ColorRole: UInt8, Sendable, Hashable, CaseIterable {
    case normal, accent, good, warn, bad, muted, focus
}

public struct TextStyle: Sendable, Hashable {
    public var color: ColorRole
    public var bold: Bool
    public var reverse: Bool
    public var underline: Bool
    public var dim: Bool

    public init(_ color: ColorRole = .normal, bold: Bool = false, reverse: Bool = false, underline: Bool = false,
                dim: Bool = false) {
        self.color = color
        self.bold = bold
        self.reverse = reverse
        self.underline = underline
        self.dim = dim
    }

    public static let plain = TextStyle()
}

public struct Rect: Sendable, Equatable {
    public var x, y, width, height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = max(0, width)
        self.height = max(0, height)
    }

    public var maxX: Int { x + width }
    public var maxY: Int { y + height }
    /// The area inside a one-cell border.
    public var inner: Rect { Rect(x: x + 1, y: y + 1, width: width - 2, height: height - 2) }
}

/// One terminal cell: a grapheme (empty for the right half of a wide character) and its style.
public struct Cell: Sendable, Equatable {
    public var text: String
    public var style: TextStyle

    public static let blank = Cell(text: " ", style: .plain)
}

/// The in-memory screen panes draw into. Tests read it; the terminal adapter copies the
/// rows that changed to ncurses.
public struct Screen: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: .blank, count: self.width * self.height)
    }

    public subscript(x: Int, y: Int) -> Cell {
        cells[y * width + x]
    }

    /// Writes inert text at (x, y), clipped to `maxWidth` columns (and the screen).
    /// Returns the columns used. A wide character that does not fit becomes a space.
    @discardableResult
    public mutating func put(_ text: some StringProtocol, x: Int, y: Int, style: TextStyle = .plain,
                             maxWidth: Int? = nil) -> Int {
        guard y >= 0, y < height, x < width else { return 0 }
        let limit = min(width, x + (maxWidth ?? width))
        var col = x
        for ch in text {
            let w = DisplayWidth.of(ch)
            if w == 0 {
                // Combining marks join the previous cell.
                if col > x, col - 1 >= 0 { cells[y * width + col - 1].text.append(ch) }
                continue
            }
            if col + w > limit {
                if w == 2, col < limit { set(col, y, Cell(text: " ", style: style)); col += 1 }
                break
            }
            if col >= 0 {
                set(col, y, Cell(text: String(ch), style: style))
                if w == 2 { set(col + 1, y, Cell(text: "", style: style)) }
            }
            col += w
        }
        return col - x
    }

    public mutating func fill(_ rect: Rect, with cell: Cell = .blank) {
        for y in max(0, rect.y)..<min(height, rect.maxY) {
            for x in max(0, rect.x)..<min(width, rect.maxX) { set(x, y, cell) }
        }
    }

    /// Sets the style of a row segment without changing its text (selection bars).
    public mutating func restyle(x: Int, y: Int, width w: Int, style: TextStyle) {
        guard y >= 0, y < height else { return }
        for col in max(0, x)..<min(width, x + w) { cells[y * width + col].style = style }
    }

    private mutating func set(_ x: Int, _ y: Int, _ cell: Cell) {
        guard x >= 0, x < width, y >= 0, y < height else { return }
        // Overwriting half of a wide character blanks its other half.
        let i = y * width + x
        if cells[i].text.isEmpty, x > 0 { cells[i - 1] = Cell(text: " ", style: cells[i - 1].style) }
        if x + 1 < width, cells[i + 1].text.isEmpty, DisplayWidth.of(cells[i].text) == 2, DisplayWidth.of(cell.text) != 2 {
            cells[i + 1] = Cell(text: " ", style: cells[i + 1].style)
        }
        cells[i] = cell
    }

    /// One row as text (wide characters once, trailing spaces kept).
    public func row(_ y: Int) -> String {
        (0..<width).map { self[$0, y].text }.joined()
    }

    /// The whole screen as text, one line per row, trailing spaces trimmed: what golden files hold.
    public var text: String {
        (0..<height).map { y in
            var line = row(y)
            while line.last == " " { line.removeLast() }
            return line
        }.joined(separator: "\n")
    }

    /// Rows that differ from `other` (all rows when the sizes differ).
    public func changedRows(since other: Screen?) -> [Int] {
        guard let other, other.width == width, other.height == height else { return Array(0..<height) }
        return (0..<height).filter { y in
            let start = y * width
            return cells[start..<(start + width)] != other.cells[start..<(start + width)]
        }
    }
}

/// Box and status glyphs: Unicode where the locale is UTF-8, ASCII otherwise.
public struct Glyphs: Sendable, Equatable {
    public var horizontal, vertical, topLeft, topRight, bottomLeft, bottomRight, teeLeft, teeRight: String
    public var ok, fail, warn, stopped, running, unknown, arrow, ellipsis, focus: String

    public static let unicode = Glyphs(horizontal: "─", vertical: "│", topLeft: "┌", topRight: "┐", bottomLeft: "└",
                                       bottomRight: "┘", teeLeft: "├", teeRight: "┤", ok: "✓", fail: "✗", warn: "!",
                                       stopped: "■", running: "●", unknown: "?", arrow: "→", ellipsis: "…", focus: "▶")
    public static let ascii = Glyphs(horizontal: "-", vertical: "|", topLeft: "+", topRight: "+", bottomLeft: "+",
                                     bottomRight: "+", teeLeft: "+", teeRight: "+", ok: "+", fail: "x", warn: "!",
                                     stopped: "#", running: "*", unknown: "?", arrow: ">", ellipsis: "~", focus: ">")
}

extension Screen {
    /// A border with a title; the focused pane's border is bold and its title marked.
    public mutating func box(_ r: Rect, title: String, focused: Bool, glyphs: Glyphs) {
        guard r.width >= 2, r.height >= 2 else { return }
        let style = focused ? TextStyle(.focus, bold: true) : TextStyle(.muted)
        let h = String(repeating: glyphs.horizontal, count: max(0, r.width - 2))
        put(glyphs.topLeft + h + glyphs.topRight, x: r.x, y: r.y, style: style)
        put(glyphs.bottomLeft + h + glyphs.bottomRight, x: r.x, y: r.maxY - 1, style: style)
        for y in (r.y + 1)..<(r.maxY - 1) {
            put(glyphs.vertical, x: r.x, y: y, style: style)
            put(glyphs.vertical, x: r.maxX - 1, y: y, style: style)
        }
        let label = focused ? " \(glyphs.focus) \(title) " : " \(title) "
        put(label, x: r.x + 2, y: r.y, style: focused ? TextStyle(.focus, bold: true, reverse: true) : TextStyle(bold: true),
            maxWidth: r.width - 4)
    }

    /// Text cut to `width` columns with an ellipsis when it does not fit.
    public static func fit(_ text: String, _ width: Int, glyphs: Glyphs) -> String {
        guard width > 0 else { return "" }
        if DisplayWidth.of(text) <= width { return text }
        var out = "", used = 0
        for ch in text {
            let w = DisplayWidth.of(ch)
            if used + w > width - 1 { break }
            out.append(ch)
            used += w
        }
        return out + glyphs.ellipsis
    }

    /// Text cut from the left (`…/.claude/.credentials.json`): for paths, whose end says most.
    public static func fitTail(_ text: String, _ width: Int, glyphs: Glyphs) -> String {
        guard width > 0 else { return "" }
        if DisplayWidth.of(text) <= width { return text }
        var out = "", used = 0
        for ch in text.reversed() {
            let w = DisplayWidth.of(ch)
            if used + w > width - 1 { break }
            out.insert(ch, at: out.startIndex)
            used += w
        }
        return glyphs.ellipsis + out
    }

    /// Splits text into rows of at most `width` columns (wide characters never split).
    public static func wrap(_ text: String, _ width: Int) -> [String] {
        guard width > 0, DisplayWidth.of(text) > width else { return [text] }
        var rows: [String] = [], current = "", used = 0
        for ch in text {
            let w = DisplayWidth.of(ch)
            if used + w > width {
                rows.append(current)
                current = ""
                used = 0
            }
            current.append(ch)
            used += w
        }
        if !current.isEmpty { rows.append(current) }
        return rows
    }

    /// Text padded with spaces to exactly `width` columns (cut if longer).
    public static func pad(_ text: String, _ width: Int, glyphs: Glyphs) -> String {
        let t = fit(text, width, glyphs: glyphs)
        return t + String(repeating: " ", count: max(0, width - DisplayWidth.of(t)))
    }
}
