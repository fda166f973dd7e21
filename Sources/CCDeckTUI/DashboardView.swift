import CCDeckCore
import Foundation

/// Composes the panes into a screen. It keeps the previous frame and redraws only the panes
/// whose inputs changed (a fingerprint per pane); overlays and resizes redraw everything.
public final class DashboardView {
    public let theme: Theme
    public private(set) var screen = Screen(width: 0, height: 0)
    private var fingerprints: [String: Int] = [:]
    private var hadOverlay = false
    /// Panes drawn in the last `render` (for tests and the idle benchmark).
    public private(set) var lastDrawn: [String] = []

    public init(theme: Theme) { self.theme = theme }

    public func render(_ dashboard: Dashboard, source: OutputSource) -> Screen {
        let state = dashboard.state
        lastDrawn = []
        if screen.width != state.width || screen.height != state.height {
            screen = Screen(width: state.width, height: state.height)
            fingerprints = [:]
        }
        if Layout.tooSmall(width: state.width, height: state.height) {
            fingerprints = [:]
            drawTooSmall(state)
            lastDrawn = ["too-small"]
            return screen
        }
        let overlay = state.overlay != nil
        if overlay || hadOverlay { fingerprints = [:] }
        hadOverlay = overlay
        let layout = dashboard.layout
        if fingerprints["layout"] != hash(layout.runs.height, layout.output.height, layout.backends.height) { fingerprints = [:] }
        fingerprints["layout"] = hash(layout.runs.height, layout.output.height, layout.backends.height)

        func pane(_ name: String, _ fp: Int, _ draw: () -> Void) {
            guard fingerprints[name] != fp else { return }
            fingerprints[name] = fp
            lastDrawn.append(name)
            draw()
        }
        let focus = state.focus
        pane("runs", runsFingerprint(state)) {
            Panes.runs(&screen, layout.runs, state, focused: focus == .runs, theme: theme)
        }
        pane("output", outputFingerprint(state, source: source)) {
            Panes.output(&screen, layout.output, state, focused: focus == .output, theme: theme, source: source,
                         renderer: dashboard.renderer, cache: source === dashboard.output ? dashboard.renderedLines : nil)
        }
        pane("backends", hash(focus == .backends, state.selectedBackend, state.probed.count,
                              state.backends.map { "\($0.state)\($0.version ?? "")\($0.detail)" })) {
            Panes.backends(&screen, layout.backends, state, focused: focus == .backends, theme: theme)
        }
        pane("token", tokenFingerprint(state)) {
            Panes.token(&screen, layout.token, state, focused: focus == .token, theme: theme)
        }
        pane("orphans", hash(focus == .orphans, state.selectedOrphan, state.orphansListed,
                             state.orphans.map { "\($0.id)\($0.state)\(Panes.age($0.createdAt, now: state.now))" })) {
            Panes.orphans(&screen, layout.orphans, state, focused: focus == .orphans, theme: theme)
        }
        // Counted once a frame (every record is looked at), drawn only when it changed.
        let totals = state.totals().line
        pane("header", hash(totals, state.attention.count)) {
            Panes.header(&screen, layout.header, totals: totals, attention: state.attention.count, theme: theme)
        }
        pane("status", hash(state.notice?.text, state.notice.map { "\($0.level)" })) {
            Panes.status(&screen, layout.status, state, theme: theme)
        }
        pane("footer", hash(state.readonly)) {
            Panes.footer(&screen, layout.footer, actions: dashboard.actions, readonly: state.readonly, theme: theme)
        }
        if let overlay = state.overlay {
            lastDrawn.append("overlay")
            Overlays.draw(overlay, on: &screen, state: state, actions: dashboard.actions, theme: theme)
        }
        return screen
    }

    private func drawTooSmall(_ state: DashboardState) {
        screen.fill(Rect(x: 0, y: 0, width: state.width, height: state.height))
        let lines = ["terminal too small (need \(Layout.minWidth)×\(Layout.minHeight))",
                     "now \(state.width)×\(state.height); q quits"]
        for (i, l) in lines.enumerated() {
            let w = DisplayWidth.of(l)
            screen.put(l, x: max(0, (state.width - w) / 2), y: max(0, state.height / 2 - 1 + i),
                       style: i == 0 ? TextStyle(.warn, bold: true) : .plain, maxWidth: state.width)
        }
    }

    private func runsFingerprint(_ s: DashboardState) -> Int {
        var h = Hasher()
        h.combine(s.focus == .runs)
        h.combine(s.selectedRunID)
        h.combine(s.attention.count)
        h.combine(s.history.complete)
        h.combine(s.history.trimmedAbove)
        h.combine(s.history.total)
        for r in s.runs {
            h.combine(r.record.id)
            h.combine(r.record.state.rawValue)
            h.combine(r.driverGone)
            h.combine(r.stalledFor(now: s.now, after: s.stallAfter) != nil)
            h.combine(r.turns)
            h.combine(r.cost)
            h.combine(Panes.elapsed(r, now: s.now))
        }
        return h.finalize()
    }

    private func outputFingerprint(_ s: DashboardState, source: OutputSource) -> Int {
        var h = Hasher()
        h.combine(s.focus == .output)
        h.combine(s.selectedRunID)
        h.combine("\(s.outputPosition)")
        if let run = s.selectedRun {
            h.combine(run.record.state.rawValue)
            h.combine(run.tail.totalAppended)
            h.combine(Panes.banners(run, s))
            if !(run.drivenHere && run.tail.totalAppended > 0) { h.combine(source.lineCount(run: run.record.id)) }
        }
        return h.finalize()
    }

    private func tokenFingerprint(_ s: DashboardState) -> Int {
        var h = Hasher()
        h.combine(s.focus == .token)
        switch s.token {
        case .loading: h.combine(0)
        case .failed(let why): h.combine(why)
        case .resolved(let t):
            h.combine(t.redacted)
            h.combine(Panes.countdown(t, now: s.now, glyphs: theme.glyphs).0)
            h.combine(Panes.shortSource(t.source))
            h.combine(t.fingerprint)
        }
        for kept in s.keptTokens {
            // The age shown moves by the minute.
            h.combine(kept.fingerprint)
            h.combine(kept.place)
            h.combine(TokenStatus.format(duration: max(0, s.now.timeIntervalSince(kept.pushedAt))))
        }
        return h.finalize()
    }

    private func hash(_ values: AnyHashable?...) -> Int {
        var h = Hasher()
        for v in values { h.combine(v) }
        return h.finalize()
    }
}

/// Help, launch form and confirmation, drawn over the panes.
enum Overlays {
    static func centered(_ w: Int, _ h: Int, in state: DashboardState) -> Rect {
        let width = min(w, state.width - 2), height = min(h, state.height - 2)
        return Rect(x: (state.width - width) / 2, y: (state.height - height) / 2, width: width, height: height)
    }

    static func draw(_ overlay: Overlay, on screen: inout Screen, state: DashboardState, actions: ActionTable, theme: Theme) {
        let g = theme.glyphs
        switch overlay {
        case .help:
            var lines: [(String, String)] = actions.specs.map { ($0.keys.map(\.description).joined(separator: " "), $0.help) }
            lines.append(("ctrl-c", "quit at once (live runs keep running)"))
            lines.append(("ctrl-z", "suspend; fg brings the dashboard back"))
            let r = centered(84, lines.count + 4, in: state)
            screen.fill(r)
            screen.box(r, title: "Help: keys" + (state.readonly ? " (readonly)" : ""), focused: true, glyphs: g)
            for (i, (k, text)) in lines.prefix(max(0, r.height - 4)).enumerated() {
                screen.put(Screen.pad(k, 16, glyphs: g), x: r.x + 2, y: r.y + 1 + i, style: TextStyle(.accent, bold: true),
                           maxWidth: r.width - 4)
                screen.put(text, x: r.x + 19, y: r.y + 1 + i, maxWidth: max(0, r.width - 21))
            }
            screen.put("keys can be remapped in $XDG_CONFIG_HOME/ccdeck/keys.conf; any key closes",
                       x: r.x + 2, y: r.maxY - 2, style: TextStyle(.muted), maxWidth: r.width - 4)
        case .confirm(let c):
            let r = centered(max(40, (c.lines.map { DisplayWidth.of($0) }.max() ?? 0) + 8), c.lines.count + 5, in: state)
            screen.fill(r)
            screen.box(r, title: c.title, focused: true, glyphs: g)
            for (i, l) in c.lines.enumerated() {
                screen.put(l, x: r.x + 2, y: r.y + 1 + i, maxWidth: r.width - 4)
            }
            screen.put("y: yes    n or esc: no", x: r.x + 2, y: r.maxY - 2, style: TextStyle(.warn, bold: true), maxWidth: r.width - 4)
        case .totals:
            let t = state.totals(byBackend: true)
            let lines = [t.line, ""] + (t.backendLines.isEmpty ? ["no runs yet"] : t.backendLines)
            let r = centered(min(state.width - 4, 90), lines.count + 4, in: state)
            screen.fill(r)
            screen.box(r, title: "Totals (today and this week, local time)", focused: true, glyphs: g)
            for (i, l) in lines.enumerated() { screen.put(l, x: r.x + 2, y: r.y + 1 + i, maxWidth: r.width - 4) }
            screen.put("any key closes; ccdeck runs ls --by-backend prints them", x: r.x + 2, y: r.maxY - 2,
                       style: TextStyle(.muted), maxWidth: r.width - 4)
        case .changes(let view):
            let r = Rect(x: 2, y: 1, width: max(0, state.width - 4), height: max(0, state.height - 2))
            screen.fill(r)
            screen.box(r, title: "Changes \(view.runID.suffix(11))", focused: true, glyphs: g)
            let page = max(0, r.height - 4)
            guard let lines = view.lines else {
                screen.put("reading…", x: r.x + 2, y: r.y + 1, style: TextStyle(.muted), maxWidth: r.width - 4)
                break
            }
            for (i, line) in lines.dropFirst(view.top).prefix(page).enumerated() {
                let style: TextStyle = line.hasPrefix("+") && !line.hasPrefix("+++") ? TextStyle(.good)
                    : line.hasPrefix("-") && !line.hasPrefix("---") ? TextStyle(.bad)
                    : line.hasPrefix("@@") ? TextStyle(.accent) : line.hasPrefix("diff ") ? TextStyle(bold: true) : .plain
                screen.put(line, x: r.x + 2, y: r.y + 1 + i, style: style, maxWidth: r.width - 4)
            }
            let shown = lines.isEmpty ? "" : "lines \(view.top + 1)–\(min(lines.count, view.top + page)) of \(lines.count)   "
            screen.put(shown + "j/k pgup/pgdn g/G scroll   any other key closes", x: r.x + 2, y: r.maxY - 2,
                       style: TextStyle(.muted), maxWidth: r.width - 4)
        case .comparison(let c):
            // The columns a reader compares first; `ccdeck compare` prints every phase.
            let (header, rows) = c.table
            let keep = ["MODE", "OK", "FAILED", "STOPPED", "FIRST EVENT", "WALL", "API", "TURNS", "COST"]
            let picks = keep.compactMap { header.firstIndex(of: $0) }
            let cells = [picks.map { header[$0] }] + rows.map { row in
                picks.enumerated().map { k, i in
                    // A mode that did not run says why in the last cell; show it where the numbers would be.
                    if row.count == header.count, row[header.count - 1].hasPrefix("not ready"), k == 1 { return row[header.count - 1] }
                    return i < row.count ? row[i] : ""
                }
            }
            let widths = picks.indices.map { k in min(28, cells.map { DisplayWidth.of($0[k]) }.max() ?? 0) + 2 }
            let prompt = "prompt: " + InertText.line(String(c.prompt.prefix(200)).replacingOccurrences(of: "\n", with: " "))
            let lines = cells.map { row in row.enumerated().map { Screen.pad($1, widths[$0] - 1, glyphs: g) + " " }.joined() }
            // As wide as the table or the longest finding (a failure's reason), within the screen.
            let findings = c.findings.map { "\(g.arrow) " + InertText.line($0) }
            let width = max(86, ((lines + findings).map { DisplayWidth.of($0) }.max() ?? 0) + 4)
            let r = centered(width, lines.count + c.findings.count + 6, in: state)
            screen.fill(r)
            screen.box(r, title: "Comparison", focused: true, glyphs: g)
            screen.put(prompt, x: r.x + 2, y: r.y + 1, style: TextStyle(.muted), maxWidth: r.width - 4)
            for (i, line) in lines.enumerated() where r.y + 2 + i < r.maxY - 2 {
                screen.put(line, x: r.x + 2, y: r.y + 2 + i, style: TextStyle(.normal, bold: i == 0), maxWidth: r.width - 4)
            }
            for (i, f) in findings.enumerated() where r.y + 3 + lines.count + i < r.maxY - 2 {
                screen.put(f, x: r.x + 2, y: r.y + 3 + lines.count + i, maxWidth: r.width - 4)
            }
            screen.put("any key closes; C shows it again; ccdeck compare --markdown for every phase", x: r.x + 2, y: r.maxY - 2,
                       style: TextStyle(.muted), maxWidth: r.width - 4)
        case .launch(let form):
            let r = centered(76, 8, in: state)
            screen.fill(r)
            screen.box(r, title: "Launch a run", focused: true, glyphs: g)
            let labelWidth = 12
            let fieldWidth = max(0, r.width - 4 - labelWidth)
            func field(_ row: Int, _ f: LaunchForm.Field, _ label: String, _ value: String, placeholder: Bool = false) {
                let active = form.field == f
                let y = r.y + 1 + row
                screen.put((active ? g.focus + " " : "  ") + label, x: r.x + 1, y: y, style: TextStyle(bold: active),
                           maxWidth: labelWidth + 1)
                screen.put(Screen.pad(value, fieldWidth, glyphs: g), x: r.x + 2 + labelWidth, y: y,
                           style: TextStyle(placeholder ? .muted : .normal, reverse: active && f != .mode, underline: active),
                           maxWidth: fieldWidth)
            }
            let newline = g == .ascii ? "|" : "⏎"
            field(0, .mode, "Mode", form.comparing
                  ? "< all ready modes >  (compare \(form.modes.map(\.displayName).joined(separator: ", ")))"
                  : "< \(form.mode.displayName) >  (\(form.modes.map(\.displayName).joined(separator: ", "))"
                    + (form.choiceCount > form.modes.count ? ", all" : "") + ")")
            field(1, .prompt, "Prompt", visibleTail(form.prompt, fieldWidth, newline: newline))
            field(2, .workspace, "Workspace", form.workspace.isEmpty ? "(a fresh one)" : visibleTail(form.workspace, fieldWidth, newline: newline),
                  placeholder: form.workspace.isEmpty)
            field(3, .timeout, "Timeout", form.timeout.isEmpty ? "(none)" : visibleTail(form.timeout, fieldWidth, newline: newline),
                  placeholder: form.timeout.isEmpty)
            if let problem = form.problem {
                screen.put("\(g.warn) \(problem)", x: r.x + 2, y: r.y + 5, style: TextStyle(.warn, bold: true), maxWidth: r.width - 4)
            }
            screen.put("enter: launch   tab/arrows: field   left/right: mode   esc: cancel", x: r.x + 2, y: r.maxY - 2,
                       style: TextStyle(.muted), maxWidth: r.width - 4)
        }
    }

    /// The part of a field around its cursor that fits, with the cursor shown as `▏`. Only the
    /// characters near the cursor are looked at (a field may hold a megabyte), and they are drawn
    /// inert: a pasted escape sequence shows as text, a pasted line break as `newline`.
    static func visibleTail(_ f: TextField, _ width: Int, newline: String = "⏎") -> String {
        let chars = f.characters
        let cursor = min(max(0, f.cursor), chars.count)
        let span = max(0, width)
        var head = shown(chars[max(0, cursor - span)..<cursor], newline: newline)
        while DisplayWidth.of(head) > width - 2, !head.isEmpty { head.removeFirst() }
        return head + "▏" + shown(chars[cursor..<min(chars.count, cursor + span)], newline: newline)
    }

    private static func shown(_ chars: ArraySlice<Character>, newline: String) -> String {
        var out = ""
        for c in chars {
            if c == "\n" { out += newline; continue }
            // A pasted run of combining marks is one character of any size: draw a bounded part of it.
            let scalars = c.unicodeScalars
            if scalars.count > 8 {
                out.unicodeScalars.append(contentsOf: scalars.prefix(8))
            } else {
                out.append(c)
            }
        }
        return InertText.line(out)
    }
}
