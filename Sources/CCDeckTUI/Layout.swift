/// Where each pane goes for a terminal size. Pure, shared by the reducer (page sizes) and the view.
public struct Layout: Sendable, Equatable {
    public static let minWidth = 60
    public static let minHeight = 18

    public var runs: Rect
    public var output: Rect
    public var backends: Rect
    public var token: Rect
    public var orphans: Rect
    /// One line on top: the totals.
    public var header: Rect
    public var status: Rect
    public var footer: Rect

    public static func tooSmall(width: Int, height: Int) -> Bool { width < minWidth || height < minHeight }

    public init(width: Int, height: Int, runCount: Int, backendCount: Int = 6) {
        let panesHeight = max(0, height - 3)
        header = Rect(x: 0, y: 0, width: width, height: 1)
        let rightWidth = width >= 160 ? 56 : width >= 120 ? 46 : max(34, width * 2 / 5)
        let leftWidth = width - rightWidth
        let runsHeight = min(max(5, runCount + 3), max(5, panesHeight * 2 / 5))
        runs = Rect(x: 0, y: 1, width: leftWidth, height: runsHeight)
        output = Rect(x: 0, y: 1 + runsHeight, width: leftWidth, height: panesHeight - runsHeight)
        // Every backend gets its row (and one for the selected one's reason) while the token and orphans keep
        // theirs (the token pane shrinks to
        // its three key lines first); past that the Backends pane scrolls.
        let tokenHeight = panesHeight >= 22 ? 7 : 5
        let backendsHeight = max(3, min(backendCount + 3, panesHeight - tokenHeight - 4))
        backends = Rect(x: leftWidth, y: 1, width: rightWidth, height: backendsHeight)
        token = Rect(x: leftWidth, y: 1 + backendsHeight, width: rightWidth, height: tokenHeight)
        orphans = Rect(x: leftWidth, y: 1 + backendsHeight + tokenHeight, width: rightWidth,
                       height: panesHeight - backendsHeight - tokenHeight)
        status = Rect(x: 0, y: height - 2, width: width, height: 1)
        footer = Rect(x: 0, y: height - 1, width: width, height: 1)
    }

    public func rect(for pane: Pane) -> Rect {
        switch pane {
        case .runs: return runs
        case .output: return output
        case .backends: return backends
        case .token: return token
        case .orphans: return orphans
        }
    }

    /// Lines of output visible at once.
    public var outputPage: Int { max(1, output.height - 2) }
}
