import CCDeckCore
import Foundation

/// How the panes look: glyphs and whether colour is on. Colour never carries meaning alone.
public struct Theme: Sendable, Equatable {
    public var glyphs: Glyphs
    public var color: Bool

    public init(glyphs: Glyphs = .unicode, color: Bool = true) {
        self.glyphs = glyphs
        self.color = color
    }
}

/// Each pane draws its part of the state into its rectangle of the screen; nothing else.
enum Panes {
    static func stateStyle(_ s: RunState) -> (glyph: KeyPath<Glyphs, String>, style: TextStyle) {
        switch s {
        case .starting, .running: return (\.running, TextStyle(.accent, bold: true))
        case .succeeded: return (\.ok, TextStyle(.good))
        case .failed: return (\.fail, TextStyle(.bad, bold: true))
        case .stopped, .unknown: return (\.stopped, TextStyle(.warn))
        }
    }

    static func elapsed(_ entry: RunEntry, now: Date) -> String {
        let seconds = entry.record.wallTime ?? (entry.isLive ? now.timeIntervalSince(entry.record.createdAt) : 0)
        let s = wholeSeconds(seconds)
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m"
    }

    /// Seconds from dates in records and engine output, which may be absurd: never a crash.
    static func wholeSeconds(_ t: TimeInterval) -> Int {
        guard t.isFinite, t > 0 else { return 0 }
        return t < 1e12 ? Int(t) : 999_999_999_999
    }

    static func age(_ date: Date?, now: Date) -> String {
        guard let date else { return "?" }
        let s = wholeSeconds(now.timeIntervalSince(date))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s < 86_400 { return "\(s / 3600)h" }
        return "\(s / 86_400)d"
    }

    // MARK: Runs

    static func runs(_ screen: inout Screen, _ r: Rect, _ state: DashboardState, focused: Bool, theme: Theme) {
        let g = theme.glyphs
        screen.fill(r)
        let calling = state.attention.count
        let held = state.history.complete && !state.history.trimmedAbove
            ? "\(state.runs.count)" : "\(state.runs.count) of \(state.history.total ?? state.runs.count)"
        screen.box(r, title: "Runs (\(held))" + (calling > 0 ? " · \(calling) need\(calling == 1 ? "s" : "") you" : ""),
                   focused: focused, glyphs: g)
        let inner = r.inner
        guard inner.width > 0, inner.height > 0 else { return }
        let wide = inner.width >= 72
        let idWidth = wide ? 21 : 12
        var columns = [("", 2), ("ID", idWidth), ("MODE", 10), ("STATE", 12), ("TIME", 7)]
        if inner.width >= idWidth + 31 + 6 { columns.append(("TURNS", 6)) }
        // Tool calls that failed: a "succeeded" run with some deserves a look.
        if inner.width >= idWidth + 31 + 6 + 5 { columns.append(("ERR", 5)) }
        if inner.width >= idWidth + 31 + 6 + 5 + 9 { columns.append(("COST", 9)) }
        // Wide terminals have room to say what each run was asked to do.
        let used = columns.reduce(0) { $0 + $1.1 }
        if columns.count == 8 && inner.width - used >= 20 { columns.append(("PROMPT", inner.width - used)) }
        var x = inner.x
        for (name, w) in columns {
            screen.put(name, x: x, y: inner.y, style: TextStyle(.muted, bold: true), maxWidth: min(w, inner.maxX - x))
            x += w
        }
        let rows = inner.height - 1
        guard rows > 0 else { return }
        if state.runs.isEmpty {
            let hint = state.readonly ? "no runs yet" : "no runs yet: press n to launch one"
            screen.put(hint, x: inner.x + 2, y: inner.y + 1, style: TextStyle(.muted), maxWidth: inner.width - 2)
            return
        }
        let selected = state.selectedRunIndex ?? 0
        let first = max(0, min(selected - rows + 1, state.runs.count - rows))
        let top = max(0, min(first, selected))
        for (row, entry) in state.runs[top..<min(state.runs.count, top + rows)].enumerated() {
            let y = inner.y + 1 + row
            let (glyph, style) = stateStyle(entry.record.state)
            var stateText = entry.record.state.rawValue
            var rowStyle = style
            if entry.driverGone { stateText = RunState.lostDriverLabel; rowStyle = TextStyle(.warn) }
            let stalled = entry.stalledFor(now: state.now, after: state.stallAfter) != nil
            if stalled { stateText = "stalled"; rowStyle = TextStyle(.warn, bold: true) }
            // "Succeeded", and the workspace is as it was: worth a look.
            let changedNothing = entry.record.state == .succeeded && entry.record.changes?.isEmpty == true
            if changedNothing { stateText = "no changes"; rowStyle = TextStyle(.warn) }
            let toolErrors = entry.toolErrors
            if entry.record.state == .succeeded && toolErrors > 0 { rowStyle = TextStyle(.warn) }
            let id = wide ? entry.record.id : String(entry.record.id.suffix(11))
            // A lost driver, or a "success" with failed tool calls, is marked even where ERR has no room.
            let flagged = entry.driverGone || stalled || changedNothing || (entry.record.state == .succeeded && toolErrors > 0)
            // gVisor is a boundary of its own: `docker+gV`.
            let mode = entry.record.mode.displayName + (entry.record.isolation == .gvisor ? "+gV" : "")
            var cells = [flagged ? g.warn : g[keyPath: glyph], id, mode, stateText,
                         elapsed(entry, now: state.now)]
            if columns.count > 5 { cells.append(entry.turns.map(String.init) ?? "-") }
            if columns.count > 6 { cells.append(toolErrors > 0 ? "\(toolErrors)" : "-") }
            if columns.count > 7 { cells.append(entry.cost.map(RunSummary.formatCost) ?? "-") }
            // Only what fits is looked at: a pasted prompt may be a megabyte.
            if columns.count > 8 {
                // A comparison's runs say so (they sit together: launched at once).
                cells.append((entry.record.group == nil ? "" : "compare: ")
                             + InertText.line(entry.record.prompt.prefix(inner.width).replacingOccurrences(of: "\n", with: " ")))
            }
            var x = inner.x
            for (i, (_, w)) in columns.enumerated() {
                let cellStyle = i == 0 || i == 3 || (i == 6 && toolErrors > 0) ? rowStyle : TextStyle.plain
                // One column of each is a gap, so a cell filled to its width never runs into the next.
                screen.put(Screen.pad(cells[i], w - 1, glyphs: g) + " ", x: x, y: y, style: cellStyle, maxWidth: min(w, inner.maxX - x))
                x += w
            }
            if entry.record.id == state.selectedRunID {
                screen.restyle(x: inner.x, y: y, width: inner.width, style: TextStyle(.normal, bold: focused, reverse: true))
            }
        }
    }

    // MARK: Output

    static func outputTitle(_ state: DashboardState, lineInfo: String) -> String {
        guard let run = state.selectedRun else { return "Output" }
        let follow = state.outputPosition == .follow ? (run.isLive ? "following" : "end") : "scrolled: G follows"
        let errors = run.toolErrors > 0 ? "\(run.toolErrors) tool error\(run.toolErrors == 1 ? "" : "s"), " : ""
        return "Output \(run.record.id.suffix(11)) \(lineInfo)(\(errors)\(follow))"
    }

    static func output(_ screen: inout Screen, _ r: Rect, _ state: DashboardState, focused: Bool, theme: Theme,
                       source: OutputSource, renderer: EventRenderer, cache: RenderedLineCache? = nil) {
        let g = theme.glyphs
        screen.fill(r)
        let inner = r.inner
        guard let run = state.selectedRun else {
            screen.box(r, title: "Output", focused: focused, glyphs: g)
            return
        }
        // What needs a look stands above the output: a stall, the hosts the run was refused.
        let banner = inner.height < 4 ? [] : Array(banners(run, state).prefix(inner.height / 3))
        let top = banner.count
        let page = max(0, inner.height - top)
        let cursor = OutputCursor(source: source, run: run.record.id, renderer: renderer, wrapWidth: inner.width, cache: cache)
        var lines: [RenderedLine]
        var info = ""
        switch state.outputPosition {
        case .follow:
            // A run streaming here follows from memory; any other reads its stored output.
            if run.drivenHere && run.tail.totalAppended > 0 {
                lines = Array(OutputCursor.wrap(run.tail.last(page), inner.width).suffix(page))
            } else {
                lines = cursor.window(from: cursor.bottomAnchor(page), page)
            }
        case .anchored(let raw, let sub):
            lines = cursor.window(from: (raw, sub), page)
            info = "event \(min(raw + 1, cursor.count))/\(cursor.count) "
        }
        screen.box(r, title: outputTitle(state, lineInfo: info), focused: focused, glyphs: g)
        // The run's details ride on the bottom border, where they cost no line of output.
        let details = runDetails(run.record)
        if !details.isEmpty && r.width > 8 {
            screen.put(" \(details) ", x: r.x + 2, y: r.y + r.height - 1, style: TextStyle(.muted), maxWidth: r.width - 4)
        }
        for (i, line) in banner.enumerated() {
            screen.put(line, x: inner.x, y: inner.y + i, style: TextStyle(.warn, bold: true), maxWidth: inner.width)
        }
        if lines.isEmpty {
            let text = run.isLive ? "waiting for the agent's first event…" : "no output was recorded"
            screen.put(text, x: inner.x + 1, y: inner.y + top, style: TextStyle(.muted), maxWidth: inner.width - 1)
            return
        }
        for (i, line) in lines.prefix(page).enumerated() {
            screen.put(line.text, x: inner.x, y: inner.y + top + i, style: style(line.kind), maxWidth: inner.width)
        }
    }

    /// The lines above a run's output: `stalled 5m12s: Bash in flight: npm install`, the hosts it
    /// was refused (inert).
    static func banners(_ run: RunEntry, _ state: DashboardState) -> [String] {
        var lines: [String] = []
        if let quiet = run.stalledFor(now: state.now, after: state.stallAfter) {
            lines.append("stalled: nothing from the agent for \(DurationText.format(quiet)); " + run.progress.activity.label)
        }
        if let egress = run.record.egress, !egress.denied.isEmpty { lines.append("egress denied: " + egress.deniedSummary) }
        return lines
    }

    /// What the selected run's sandbox was and held: `shared kernel · held a short-lived access token · uid 1000`.
    static func runDetails(_ r: RunRecord) -> String {
        var parts: [String] = []
        if r.group != nil { parts.append("part of a comparison") }
        if r.adoptedAt != nil { parts.append("adopted after its ccdeck died") }
        if let isolation = r.isolation { parts.append(isolation.label) }
        if let held = r.credentials?.exposure { parts.append("held \(held.label)") }
        if let user = r.agentUser { parts.append(user) }
        if let changes = r.changes { parts.append(changes.label) }
        if let egress = r.egress { parts.append(egress.label) }
        return InertText.line(parts.joined(separator: " · "))
    }

    static func style(_ kind: RenderedLine.Kind) -> TextStyle {
        switch kind {
        case .system: return TextStyle(.muted)
        case .text: return .plain
        case .thinking: return TextStyle(.muted, dim: true)
        case .toolCall: return TextStyle(.accent, bold: true)
        case .toolResult: return TextStyle(.muted)
        case .toolError: return TextStyle(.bad)
        case .result: return TextStyle(.good, bold: true)
        case .resultError: return TextStyle(.bad, bold: true)
        case .invalid: return TextStyle(.warn)
        }
    }

    // MARK: Backends

    static func backendState(_ s: BackendStatus, probed: Bool, glyphs g: Glyphs) -> (String, String, TextStyle) {
        if !probed { return (g.unknown, "probing…", TextStyle(.muted)) }
        switch s.state {
        case .ready: return (g.ok, s.state.label, TextStyle(.good))
        case .notInstalled: return ("-", s.state.label, TextStyle(.muted))
        case .daemonDown, .error: return (g.fail, s.state.label, TextStyle(.bad))
        case .notResponding: return (g.warn, s.state.label, TextStyle(.warn, bold: true))
        }
    }

    static func backends(_ screen: inout Screen, _ r: Rect, _ state: DashboardState, focused: Bool, theme: Theme) {
        let g = theme.glyphs
        screen.fill(r)
        screen.box(r, title: "Backends", focused: focused, glyphs: g)
        let inner = r.inner
        let rows = max(0, inner.height)
        // More backends than rows: the window follows the selection.
        let top = max(0, min(state.selectedBackend - rows + 1, state.backends.count - rows))
        for (i, s) in state.backends.dropFirst(top).prefix(rows).enumerated() {
            let y = inner.y + i
            let (glyph, label, style) = backendState(s, probed: state.probed.contains(s.kind), glyphs: g)
            screen.put(glyph, x: inner.x, y: y, style: style, maxWidth: 1)
            screen.put(Screen.pad(s.kind.displayName, 15, glyphs: g), x: inner.x + 2, y: y, maxWidth: inner.width - 2)
            let used = screen.put(label, x: inner.x + 17, y: y, style: style, maxWidth: max(0, inner.width - 17))
            if let v = s.version, inner.width - 17 - used > 3 {
                screen.put(Screen.fit(v, inner.width - 18 - used, glyphs: g), x: inner.x + 18 + used, y: y,
                           style: TextStyle(.muted), maxWidth: inner.width - 18 - used)
            }
            if focused && top + i == state.selectedBackend {
                screen.restyle(x: inner.x, y: y, width: inner.width, style: TextStyle(.normal, bold: true, reverse: true))
            }
        }
        // The selected backend's reason, where there is room below the list.
        if focused, state.backends.indices.contains(state.selectedBackend), inner.height > state.backends.count {
            let detail = state.backends[state.selectedBackend].detail
            screen.put(detail, x: inner.x, y: inner.y + state.backends.count, style: TextStyle(.muted), maxWidth: inner.width)
        }
    }

    // MARK: Token

    static func countdown(_ token: Token, now: Date, glyphs g: Glyphs) -> (String, TextStyle) {
        let status = TokenStatus(token: token, now: now)
        guard let left = status.timeLeft else { return ("\(g.unknown) expiry unknown", TextStyle(.muted)) }
        let precise = TokenStatus.format(duration: abs(left))
        switch status.urgency {
        case .fine: return ("\(g.ok) expires in \(precise)", TextStyle(.good))
        case .expiringSoon: return ("\(g.warn) expires in \(precise)", TextStyle(.warn, bold: true))
        case .expired: return ("\(g.fail) EXPIRED \(precise) ago", TextStyle(.bad, bold: true, reverse: true))
        case .unknown: return ("\(g.unknown) expiry unknown", TextStyle(.muted))
        }
    }

    static func token(_ screen: inout Screen, _ r: Rect, _ state: DashboardState, focused: Bool, theme: Theme) {
        let g = theme.glyphs
        screen.fill(r)
        screen.box(r, title: "Token", focused: focused, glyphs: g)
        let inner = r.inner
        func row(_ i: Int, _ label: String, _ value: String, _ style: TextStyle = .plain) {
            guard i < inner.height else { return }
            screen.put(Screen.pad(label, 8, glyphs: g), x: inner.x, y: inner.y + i, style: TextStyle(.muted), maxWidth: inner.width)
            screen.put(value, x: inner.x + 8, y: inner.y + i, style: style, maxWidth: max(0, inner.width - 8))
        }
        switch state.token {
        case .loading:
            row(0, "token", "reading…", TextStyle(.muted))
        case .failed(let why):
            row(0, "token", "\(g.fail) none usable", TextStyle(.bad, bold: true))
            let words = InertText.line(why)
            var y = 1
            var rest = Substring(words)
            while !rest.isEmpty && y < inner.height {
                let chunk = Screen.fit(String(rest), inner.width, glyphs: g)
                let taken = chunk.hasSuffix(g.ellipsis) ? chunk.count - 1 : chunk.count
                screen.put(String(rest.prefix(taken)), x: inner.x, y: inner.y + y, style: TextStyle(.muted), maxWidth: inner.width)
                rest = rest.dropFirst(max(1, taken))
                y += 1
            }
        case .resolved(let t):
            let (text, style) = countdown(t, now: state.now, glyphs: g)
            row(0, "expiry", text, style)
            row(1, "token", t.redacted)
            row(2, "kind", t.kind.label + (t.kindIsGuessed ? "?" : "") + (t.subscriptionType.map { ", plan \($0)" } ?? ""))
            row(3, "source", Screen.fitTail(shortSource(t.source), max(0, inner.width - 8), glyphs: g))
            // Where a copy is kept (a Fly app's secret): the same token as here, and how old.
            for (i, kept) in state.keptTokens.enumerated() {
                let same = kept.fingerprint == t.fingerprint
                let age = TokenStatus.format(duration: max(0, state.now.timeIntervalSince(kept.pushedAt)))
                row(4 + i, String(kept.place.prefix(while: { $0 != " " })),
                    (same ? "\(g.ok) same, pushed \(age) ago" : "\(g.warn) ANOTHER token: press t"),
                    same ? TextStyle(.good) : TextStyle(.warn, bold: true))
            }
        }
    }

    static func shortSource(_ s: TokenSource) -> String {
        switch s {
        case .environment(let v): return "$\(v)"
        case .dotenv(let p): return p
        case .keychain: return "macOS Keychain"
        case .credentialsFile(let p): return p
        }
    }

    // MARK: Orphans

    static func orphans(_ screen: inout Screen, _ r: Rect, _ state: DashboardState, focused: Bool, theme: Theme) {
        let g = theme.glyphs
        screen.fill(r)
        screen.box(r, title: "Orphans (\(state.orphans.count))", focused: focused, glyphs: g)
        let inner = r.inner
        guard inner.height > 0 else { return }
        if state.orphans.isEmpty {
            screen.put(state.orphansListed ? "none" : "looking…", x: inner.x, y: inner.y, style: TextStyle(.muted),
                       maxWidth: inner.width)
            return
        }
        let top = max(0, state.selectedOrphan - inner.height + 1)
        for (row, o) in state.orphans[top..<min(state.orphans.count, top + inner.height)].enumerated() {
            let y = inner.y + row
            let running = o.state == "running"
            let glyph = running ? g.running : g.stopped
            let ageText = age(o.createdAt, now: state.now)
            let right = "\(o.state) \(ageText)"
            let nameWidth = max(4, inner.width - 2 - 7 - DisplayWidth.of(right) - 1)
            screen.put(glyph, x: inner.x, y: y, style: TextStyle(running ? .warn : .muted, bold: running), maxWidth: 1)
            screen.put(Screen.pad(o.backend.displayName, 7, glyphs: g), x: inner.x + 2, y: y, maxWidth: 7)
            // The run id's tail tells orphans apart; the common `ccdeck-2026…` prefix does not.
            // A persistent instance outlives its first run: its own name says which it is.
            let label = o.persistent ? o.name : o.runID.map { String($0.suffix(11)) } ?? o.name
            screen.put(Screen.pad(label, nameWidth, glyphs: g), x: inner.x + 9, y: y, maxWidth: nameWidth)
            screen.put(right, x: inner.x + 9 + nameWidth + 1, y: y, style: TextStyle(.muted),
                       maxWidth: max(0, inner.maxX - (inner.x + 10 + nameWidth)))
            if focused && state.orphans.indices.contains(state.selectedOrphan) && top + row == state.selectedOrphan {
                screen.restyle(x: inner.x, y: y, width: inner.width, style: TextStyle(.normal, bold: true, reverse: true))
            }
        }
    }

    // MARK: Status and footer

    /// The top line: the figures a glance is for, and how many runs need you.
    static func header(_ screen: inout Screen, _ r: Rect, totals: String, attention calling: Int, theme: Theme) {
        screen.fill(r)
        let line = "ccdeck · " + totals
        screen.put(line, x: r.x + 1, y: r.y, style: TextStyle(.muted), maxWidth: r.width - 1)
        if calling > 0 {
            let x = r.x + 1 + DisplayWidth.of(line)
            screen.put(" · \(calling) need\(calling == 1 ? "s" : "") you", x: x, y: r.y, style: TextStyle(.warn, bold: true),
                       maxWidth: max(0, r.maxX - x))
        }
    }

    static func status(_ screen: inout Screen, _ r: Rect, _ state: DashboardState, theme: Theme) {
        screen.fill(r)
        guard let n = state.notice else { return }
        let (glyph, style): (String, TextStyle) = {
            switch n.level {
            case .info: return (theme.glyphs.arrow, TextStyle(.accent))
            case .warning: return (theme.glyphs.warn, TextStyle(.warn, bold: true))
            case .error: return (theme.glyphs.fail, TextStyle(.bad, bold: true))
            }
        }()
        screen.put("\(glyph) \(n.text)", x: r.x + 1, y: r.y, style: style, maxWidth: r.width - 1)
    }

    static func footer(_ screen: inout Screen, _ r: Rect, actions: ActionTable, readonly: Bool, theme: Theme) {
        screen.fill(r)
        var x = r.x + 1
        for (key, label) in actions.footerHints {
            let needed = DisplayWidth.of(key) + 1 + DisplayWidth.of(label) + 2
            guard x + needed <= r.maxX else { break }
            x += screen.put(key, x: x, y: r.y, style: TextStyle(.accent, bold: true, reverse: true))
            x += screen.put(" " + label + "  ", x: x, y: r.y)
        }
        if readonly, x + 10 <= r.maxX { screen.put("[readonly]", x: r.maxX - 11, y: r.y, style: TextStyle(.warn, bold: true)) }
    }
}
