import CCDeckBackends
import CCDeckCore
import Foundation

/// The dashboard's controller: owns the state and turns each message into a new state and
/// effects. No terminal, no processes: every key and every backend event is testable here.
public final class Dashboard {
    public private(set) var state: DashboardState
    public let actions: ActionTable
    public let renderer: EventRenderer
    let output: OutputSource
    /// Rendered stored lines, shared by scrolling and drawing (the stored output only grows).
    let renderedLines = RenderedLineCache()
    /// Resolves the launch form's workspace to an absolute folder, or says why it cannot be one.
    let checkWorkspace: (String) -> Result<String, WorkspaceProblem>

    public init(state: DashboardState, actions: ActionTable, output: OutputSource,
                renderer: EventRenderer = EventRenderer(maxToolResultLines: 8, maxLineLength: 2_000),
                checkWorkspace: @escaping (String) -> Result<String, WorkspaceProblem> = { WorkspaceCheck.resolve($0) }) {
        self.state = state
        self.actions = actions
        self.output = output
        self.renderer = renderer
        self.checkWorkspace = checkWorkspace
    }

    public var layout: Layout {
        Layout(width: state.width, height: state.height, runCount: state.runs.count, backendCount: state.backends.count)
    }

    /// Applies one message; returns what the runtime must do.
    @discardableResult
    public func handle(_ message: DashboardMessage) -> [Effect] {
        let comparisonsBefore = state.comparisons.count
        var effects = apply(message)
        effects += noticeAttention(after: message, comparisonsBefore: comparisonsBefore)
        // What is selected has been seen.
        if let selected = state.selectedRunID { state.attention.removeAll { $0 == selected } }
        return effects
    }

    /// Runs launched or adopted here that end or stall call for attention: a bell, and a count
    /// (in the Runs title and the window's title) of those not looked at yet.
    /// A comparison's runs call once, when its table is ready, not one by one.
    private func noticeAttention(after message: DashboardMessage, comparisonsBefore: Int) -> [Effect] {
        var called: [String] = []
        switch message {
        case .runFinished(let record):
            state.stallsSeen.remove(record.id)
            if record.group != nil {
                return state.comparisons.count < comparisonsBefore && state.ringBell ? [.bell] : []
            }
            if let entry = state.runs.first(where: { $0.record.id == record.id }), entry.drivenHere { called.append(record.id) }
        case .tick:
            for entry in state.runs where entry.drivenHere && entry.isLive {
                let stalled = entry.stalledFor(now: state.now, after: state.stallAfter) != nil
                if stalled && state.stallsSeen.insert(entry.record.id).inserted { called.append(entry.record.id) }
                if !stalled { state.stallsSeen.remove(entry.record.id) }
            }
        default:
            break
        }
        for id in called where id != state.selectedRunID && !state.attention.contains(id) { state.attention.append(id) }
        return !called.isEmpty && state.ringBell ? [.bell] : []
    }

    private func apply(_ message: DashboardMessage) -> [Effect] {
        switch message {
        case .key(let key): return handleKey(key)
        case .resize(let w, let h):
            state.width = w
            state.height = h
        case .tick(let now):
            state.now = now
        case .runsLoaded(let entries):
            let live = Dictionary(uniqueKeysWithValues: state.runs.filter(\.drivenHere).map { ($0.record.id, $0) })
            var fresh = entries.filter { live[$0.record.id] == nil }.map { e -> RunEntry in
                var e = e
                e.tail = RunTail(capacity: state.tailCapacity)
                return e
            }
            if state.history.trimmedAbove {
                // Scrolled deep into the history: the newest page is not joined to the window
                // (it would leave a gap); what the window holds is refreshed, the live runs added.
                let held = Set(state.runs.map(\.record.id))
                fresh = fresh.filter { held.contains($0.record.id) || $0.record.state.isLive }
            }
            var merged = fresh + Array(live.values)
            // History paged in before, older than what was read again, stays.
            if let oldest = entries.map(\.record.createdAt).min() {
                let have = Set(merged.map(\.record.id))
                merged += state.runs.filter { !$0.drivenHere && $0.record.createdAt < oldest && !have.contains($0.record.id) }
            } else if state.history.trimmedAbove {
                merged += state.runs.filter { !$0.drivenHere }
            }
            state.runs = merged.sorted(by: Self.newestFirst)
            if state.selectedRunID == nil || state.selectedRunIndex == nil { state.selectedRunID = state.runs.first?.record.id }
        case .runsHistory(let complete, let total, let totals):
            if state.history.total == nil { state.history.complete = complete }  // later reloads read only the top
            state.history.total = total
            state.history.totals = totals
        case .olderRunsLoaded(let entries, let complete):
            state.history.loading = false
            state.history.complete = complete
            let have = Set(state.runs.map(\.record.id))
            state.runs += entries.filter { !have.contains($0.record.id) }.sorted(by: Self.newestFirst)
            trimHistory(keepingBelow: true)
            return pageIfNeeded()
        case .newerRunsLoaded(let entries, let reachedTop):
            state.history.loading = false
            state.history.trimmedAbove = !reachedTop
            let have = Set(state.runs.map(\.record.id))
            state.runs = (state.runs + entries.filter { !have.contains($0.record.id) }).sorted(by: Self.newestFirst)
            trimHistory(keepingBelow: false)
            return pageIfNeeded()
        case .runStarted(let record):
            if let i = index(of: record.id) {
                state.runs[i].record = record
                state.runs[i].drivenHere = true
                state.runs[i].driverGone = false  // launched here, or just taken over
            } else {
                state.runs.insert(RunEntry(record: record, drivenHere: true, tailCapacity: state.tailCapacity), at: 0)
                state.runs.sort { $0.record.createdAt > $1.record.createdAt }
                // A run you just launched is the one you want to watch.
                state.selectedRunID = record.id
                state.outputPosition = .follow
                if record.adoptedAt == nil && state.pendingLaunches > 0 {
                    state.pendingLaunches -= 1
                    if state.stopNextLaunch {
                        state.stopNextLaunch = false
                        state.notice = Notice("stopping \(record.id)…")
                        return [.stop(runID: record.id)]
                    }
                }
            }
        case .runEvent(let id, let event):
            guard let i = index(of: id) else { break }
            state.runs[i].progress.apply(event, at: state.now)
            state.runs[i].tail.append(contentsOf: renderer.render(event))
            if state.runs[i].record.state == .starting { state.runs[i].record.state = .running }
        case .runStderr(let id, let line):
            guard let i = index(of: id) else { break }
            state.runs[i].tail.append(RenderedLine(kind: .toolError, text: "stderr: " + InertText.line(line)))
        case .changesLoaded(let id, let lines):
            if case .changes(var view)? = state.overlay, view.runID == id {
                view.lines = lines
                state.overlay = .changes(view)
            }
        case .runEgress(let id, let decision):
            guard let i = index(of: id) else { break }
            var egress = state.runs[i].record.egress ?? EgressRecord(enforcement: .allowlist, hosts: [])
            let first = !egress.denied.contains { $0.host == decision.host && $0.port == decision.port }
            egress.note(decision)
            state.runs[i].record.egress = egress
            // In the output where it happened, once a host; the line above the output counts them all.
            if first {
                state.runs[i].tail.append(RenderedLine(kind: .toolError,
                                                       text: "egress denied: \(InertText.line(decision.host)):\(decision.port)"))
            }
        case .runFinished(let record):
            if let i = index(of: record.id) {
                state.runs[i].record = record
            } else {
                state.runs.append(RunEntry(record: record, tailCapacity: state.tailCapacity))
                state.runs.sort { $0.record.createdAt > $1.record.createdAt }
            }
            if let group = record.group { finishComparison(group) }
        case .runRemoved(let id):
            state.runs.removeAll { $0.record.id == id }
            if state.selectedRunID == id {
                state.selectedRunID = state.runs.first?.record.id
                state.outputPosition = .follow
            }
        case .backends(let statuses):
            for s in statuses {
                if let i = state.backends.firstIndex(where: { $0.kind == s.kind }) { state.backends[i] = s }
                state.probed.insert(s.kind)
            }
        case .token(let info):
            state.token = info
        case .keptTokens(let kept):
            state.keptTokens = kept
        case .orphans(let list):
            // Said once, when the dashboard first sees what earlier runs left behind.
            let leftovers = list.filter { !$0.persistent }.count
            if !state.orphansListed && leftovers > 0 && state.notice == nil && !state.readonly {
                state.notice = Notice("\(leftovers) leftover\(leftovers == 1 ? "" : "s") from earlier runs in Orphans: "
                                      + "d removes one, \(actions.keys(for: .prune).first?.description ?? "P") all", .warning)
            }
            state.orphans = list
            state.orphansListed = true
            state.selectedOrphan = min(state.selectedOrphan, max(0, list.count - 1))
        case .notice(let n):
            state.notice = n
        case .launchFailed(let why):
            state.pendingLaunches = max(0, state.pendingLaunches - 1)
            if state.pendingLaunches == 0 { state.stopNextLaunch = false }
            state.notice = Notice("launch failed: \(why)", .error)
        case .compareLaunchFailed(let group, let mode, let why):
            state.pendingLaunches = max(0, state.pendingLaunches - 1)
            if state.pendingLaunches == 0 { state.stopNextLaunch = false }
            state.notice = Notice("compare: \(mode.displayName) did not start: \(why)", .error)
            if let i = state.comparisons.firstIndex(where: { $0.group == group }) {
                state.comparisons[i].launchFailures[mode] = InertText.line(why)
            }
            finishComparison(group)
        }
        return []
    }

    private func index(of id: String) -> Int? { state.runs.firstIndex { $0.record.id == id } }

    /// Once every mode of a comparison has a finished run (or never started), its table is made
    /// from the runs' records and shown, unless something else is open (then `C` shows it).
    private func finishComparison(_ group: String) {
        guard let i = state.comparisons.firstIndex(where: { $0.group == group }) else { return }
        let pending = state.comparisons[i]
        let runs = state.runs.filter { $0.record.group == group }.map(\.record)
        let finished = pending.modes.filter { mode in
            pending.launchFailures[mode] != nil || runs.contains { $0.mode == mode && !$0.state.isLive }
        }
        guard finished.count == pending.modes.count else { return }
        state.comparisons.remove(at: i)
        let comparison = Comparison(prompt: pending.prompt, repeatCount: 1, parallel: true, variants: pending.modes.map { mode in
            let records = runs.filter { $0.mode == mode }
            return (name: mode.displayName, mode: mode.rawValue, isolation: nil,
                    notReady: records.isEmpty ? pending.launchFailures[mode] ?? "did not start" : nil, records: records)
        })
        state.lastComparison = comparison
        if state.overlay == nil {
            state.overlay = .comparison(comparison)
        } else {
            state.notice = Notice("comparison finished: \(actions.keys(for: .compare).first?.description ?? "C") shows it")
        }
    }

    // MARK: keys

    private func handleKey(_ key: Key) -> [Effect] {
        if Layout.tooSmall(width: state.width, height: state.height) {
            return actions.action(for: key) == .quit || key == .char("q") ? quit() : []
        }
        switch state.overlay {
        case .help?, .comparison?, .totals?:
            state.overlay = nil
            return []
        case .changes(var view)?:
            let page = max(1, state.height - 6)
            let last = max(0, (view.lines?.count ?? 0) - page)
            switch actions.action(for: key) {
            case .down?: view.top = min(last, view.top + 1)
            case .up?: view.top = max(0, view.top - 1)
            case .pageDown?: view.top = min(last, view.top + page)
            case .pageUp?: view.top = max(0, view.top - page)
            case .top?: view.top = 0
            case .bottom?: view.top = last
            default:
                state.overlay = nil
                return []
            }
            state.overlay = .changes(view)
            return []
        case .confirm(let c)?:
            switch key {
            case .char("y"), .char("Y"), .enter:
                state.overlay = nil
                return [c.onYes]
            case .char("n"), .char("N"), .escape, .char("q"):
                state.overlay = nil
                state.notice = Notice("cancelled")
            default: break
            }
            return []
        case .launch(var form)?:
            // Out of the state while edited: a second reference would copy the prompt's text on every key.
            state.overlay = nil
            return handleLaunchForm(&form, key)
        case nil:
            break
        }
        state.notice = nil
        if case .paste = key {
            // A paste is text, never a command: pasted "nnn" must not launch three forms.
            state.notice = Notice(state.readonly ? "nothing to paste into" : "nothing to paste into: open the launch form first",
                                  .warning)
            return []
        }
        guard let action = actions.action(for: key) else { return [] }
        return perform(action)
    }

    func perform(_ action: Action) -> [Effect] {
        switch action {
        case .quit: return quit()
        case .help: state.overlay = .help
        case .focusNext: state.focus = Pane(rawValue: (state.focus.rawValue + 1) % Pane.allCases.count)!
        case .focusPrevious:
            state.focus = Pane(rawValue: (state.focus.rawValue + Pane.allCases.count - 1) % Pane.allCases.count)!
        case .up:
            move(-1)
            return pageIfNeeded()
        case .down:
            move(1)
            return pageIfNeeded()
        case .pageUp: scrollOutput(by: -layout.outputPage)
        case .pageDown: scrollOutput(by: layout.outputPage)
        case .top:
            jump(toTop: true)
            return pageIfNeeded()
        case .bottom:
            jump(toTop: false)
            return pageIfNeeded()
        case .launch:
            let modes = state.readyModes
            guard !modes.isEmpty else {
                state.notice = Notice(state.probed.isSuperset(of: state.runnableModes) ? "no ready backend to launch on: see Backends"
                                                           : "still probing the backends…", .warning)
                return []
            }
            state.overlay = .launch(LaunchForm(modes: modes, prompt: RunRequest.defaultPrompt, timeout: state.defaultTimeout))
        case .compare:
            if let last = state.lastComparison {
                state.overlay = .comparison(last)
            } else if let running = state.comparisons.first {
                let done = state.runs.filter { $0.record.group == running.group && !$0.record.state.isLive }.count
                    + running.launchFailures.count
                state.notice = Notice("comparison running: \(done) of \(running.modes.count) runs finished")
            } else {
                state.notice = Notice("no comparison yet: launch one with \(actions.keys(for: .launch).first?.description ?? "n") "
                                      + "and pick \"all ready modes\" as the mode", .warning)
            }
        case .totals:
            state.overlay = .totals
        case .changes:
            guard let run = state.selectedRun else {
                state.notice = Notice("select a run to see what it changed", .warning)
                return []
            }
            guard !run.isLive else {
                state.notice = Notice("its changes are known when it ends", .warning)
                return []
            }
            state.overlay = .changes(ChangesView(runID: run.record.id))
            return [.loadChanges(runID: run.record.id)]
        case .attach:
            guard let run = state.selectedRun, run.isLive else {
                state.notice = Notice("select a live run to attach to", .warning)
                return []
            }
            return [.attach(run.record)]
        case .stop:
            // Right after a launch the selection still shows an older run, and the new one has none
            // yet: the stop is meant for the launch, so it waits for that run, never lost or misplaced.
            if state.pendingLaunches > 0 {
                state.stopNextLaunch = true
                state.notice = Notice("stopping the run being launched…")
                return []
            }
            guard let run = state.selectedRun, run.isLive else {
                state.notice = Notice("select a live run to stop", .warning)
                return []
            }
            state.notice = Notice("stopping \(run.record.id)…")
            return [.stop(runID: run.record.id)]
        case .remove:
            return askToRemove()
        case .prune:
            let leftovers = state.orphans.filter { !$0.persistent }
            guard !leftovers.isEmpty else {
                state.notice = Notice("no leftovers to prune")
                return []
            }
            let names = leftovers.prefix(4).map { "\($0.backend.displayName) \($0.name)" }
            state.overlay = .confirm(Confirmation(
                title: "Remove \(leftovers.count) leftover\(leftovers.count == 1 ? "" : "s")?",
                lines: names + (leftovers.count > 4 ? ["and \(leftovers.count - 4) more"] : [])
                    + ["(persistent instances stay: remove those one by one with d)"],
                onYes: .pruneOrphans(leftovers)))
        case .repushToken:
            state.notice = Notice("reading the token again…")
            return [.repushToken]
        }
        return []
    }

    private func quit() -> [Effect] {
        let live = state.liveRunsDrivenHere
        guard !live.isEmpty else { return [.quit] }
        state.overlay = .confirm(Confirmation(
            title: "Quit ccdeck?",
            lines: ["\(live.count) run\(live.count == 1 ? " is" : "s are") live: \(live.map(\.record.id).prefix(3).joined(separator: ", "))",
                    "They keep running; ccdeck finds them again on restart."]
                + (live.contains { $0.record.egress?.enforcement == .allowlist }
                    ? ["Their egress proxy lives here: until then they can reach nothing."] : []),
            onYes: .quit))
        return []
    }

    private func askToRemove() -> [Effect] {
        if state.focus == .orphans {
            guard state.orphans.indices.contains(state.selectedOrphan) else {
                state.notice = Notice("no orphan selected", .warning)
                return []
            }
            let o = state.orphans[state.selectedOrphan]
            state.overlay = .confirm(Confirmation(
                title: "Remove this orphan?",
                lines: ["\(o.backend.displayName) \(o.name) (\(o.state))",
                        "id \(o.id.prefix(12))" + (o.runID.map { ", run \($0)" } ?? "")],
                onYes: .removeOrphan(o)))
            return []
        }
        guard let run = state.selectedRun else {
            state.notice = Notice("no run selected", .warning)
            return []
        }
        guard !run.isLive else {
            state.notice = Notice("\(run.record.id) is live: stop it first (\(actions.keys(for: .stop).first?.description ?? "s"))", .warning)
            return []
        }
        var lines = ["run record and full output of \(run.record.id)"]
        if run.record.workspaceIsTemporary { lines.append("its workspace \(run.record.workspace)") }
        if let o = state.orphans.first(where: { $0.runID == run.record.id }) {
            lines.append("\(o.backend.displayName) \(o.name)")
        }
        state.overlay = .confirm(Confirmation(title: "Remove this run?", lines: lines, onYes: .removeRun(run.record)))
        return []
    }

    /// Edits the form (taken out of the state) and puts it back unless it closed.
    private func handleLaunchForm(_ form: inout LaunchForm, _ key: Key) -> [Effect] {
        var open = true
        defer { if open { state.overlay = .launch(form) } }
        switch key {
        case .escape:
            open = false
        case .enter:
            form.problem = nil
            let prompt = form.prompt.text.trimmingCharacters(in: .whitespacesAndNewlines)
            if let problem = RunRequest.problem(with: prompt) {
                return refuse(&form, problem, field: .prompt)
            }
            var workspace: String?
            let typed = form.workspace.text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !typed.isEmpty {
                switch checkWorkspace(typed) {
                case .success(let path): workspace = path
                case .failure(let problem): return refuse(&form, problem.description, field: .workspace)
                }
            }
            var timeout: TimeInterval?
            let typedTimeout = form.timeout.text.trimmingCharacters(in: .whitespaces)
            if !typedTimeout.isEmpty {
                guard let seconds = DurationText.parse(typedTimeout) else {
                    return refuse(&form, "the timeout is a duration like 90s, 5m or 1h30m (or empty: none)", field: .timeout)
                }
                timeout = seconds
            }
            if form.comparing {
                guard workspace == nil else {
                    return refuse(&form, "a comparison runs each mode in its own fresh workspace: leave Workspace empty",
                                  field: .workspace)
                }
                open = false
                let group = Comparison.newGroupID()
                state.comparisons.append(PendingComparison(group: group, prompt: prompt, modes: form.modes))
                state.notice = Notice("comparing \(form.modes.map(\.displayName).joined(separator: ", "))…")
                state.pendingLaunches += form.modes.count
                return [.compare(modes: form.modes, prompt: prompt, group: group, timeout: timeout)]
            }
            open = false
            state.notice = Notice("launching on \(form.mode.displayName)…")
            state.pendingLaunches += 1
            return [.launch(mode: form.mode, prompt: prompt, workspace: workspace, timeout: timeout)]
        case .tab, .down:
            form.field = LaunchForm.Field(rawValue: (form.field.rawValue + 1) % LaunchForm.Field.allCases.count)!
        case .backTab, .up:
            let count = LaunchForm.Field.allCases.count
            form.field = LaunchForm.Field(rawValue: (form.field.rawValue + count - 1) % count)!
        default:
            switch form.field {
            case .mode:
                if key == .left || key == .char("h") { form.modeIndex = (form.modeIndex + form.choiceCount - 1) % form.choiceCount }
                if key == .right || key == .char("l") || key == .char(" ") { form.modeIndex = (form.modeIndex + 1) % form.choiceCount }
                if case .paste = key { state.notice = Notice("paste into the prompt, workspace or timeout field", .warning) }
            case .prompt:
                if form.prompt.edit(key) == .full {
                    state.notice = Notice("the prompt is full: it holds at most \(LaunchForm.maxPromptBytes >> 20) MiB, the rest was dropped",
                                          .warning)
                }
            case .workspace:
                let before = form.workspace.byteCount
                if form.workspace.edit(key) == .full {
                    state.notice = Notice("a folder name holds at most \(LaunchForm.maxWorkspaceBytes) bytes", .warning)
                }
                // What was wrong with the old text may not be wrong with the new.
                if form.workspace.byteCount != before { form.problem = nil }
            case .timeout:
                let before = form.timeout.text
                if case .paste = key {} else { _ = form.timeout.edit(key) }
                if form.timeout.text != before { form.problem = nil }
            }
        }
        return []
    }

    /// Keeps the form open with why it did not launch, on the field at fault.
    private func refuse(_ form: inout LaunchForm, _ problem: String, field: LaunchForm.Field) -> [Effect] {
        let notice = Notice(problem, .warning)
        form.problem = notice.text
        form.field = field
        state.notice = notice
        return []
    }

    // MARK: movement

    static func newestFirst(_ a: RunEntry, _ b: RunEntry) -> Bool {
        (a.record.createdAt, a.record.id) > (b.record.createdAt, b.record.id)
    }

    /// Near an end of the history held, the next page past it (one page at a time).
    private func pageIfNeeded() -> [Effect] {
        guard state.focus == .runs, !state.history.loading, let i = state.selectedRunIndex else { return [] }
        let ahead = RunHistoryWindow.loadAhead
        if !state.history.complete, i >= state.runs.count - ahead, let last = state.runs.last(where: { !$0.drivenHere }) {
            state.history.loading = true
            return [.loadOlderRuns(before: RunCursor(last.record))]
        }
        if state.history.trimmedAbove,
           let first = state.runs.firstIndex(where: { !$0.drivenHere && !$0.record.state.isLive }), i <= first + ahead {
            state.history.loading = true
            return [.loadNewerRuns(after: RunCursor(state.runs[first].record))]
        }
        return []
    }

    /// Lets go of the finished runs farthest from the selection once more are held than
    /// `RunHistoryWindow.maxHeld` (live runs and runs driven here always stay): above it when
    /// paging down (`keepingBelow`), below it when paging up.
    private func trimHistory(keepingBelow: Bool) {
        let finished = state.runs.indices.filter { !state.runs[$0].drivenHere && !state.runs[$0].record.state.isLive }
        let excess = finished.count - RunHistoryWindow.maxHeld
        guard excess > 0 else { return }
        let selected = state.selectedRunIndex ?? 0
        let half = RunHistoryWindow.maxHeld / 2
        let drop: [Int] = keepingBelow
            ? Array(finished.filter { $0 < selected - half }.prefix(excess))
            : Array(finished.filter { $0 > selected + half }.suffix(excess))
        guard !drop.isEmpty else { return }
        let gone = Set(drop)
        state.runs = state.runs.enumerated().filter { !gone.contains($0.offset) }.map(\.element)
        if keepingBelow { state.history.trimmedAbove = true } else { state.history.complete = false }
    }

    private func move(_ delta: Int) {
        switch state.focus {
        case .runs:
            guard !state.runs.isEmpty else { return }
            let i = state.selectedRunIndex ?? 0
            let next = min(max(0, i + delta), state.runs.count - 1)
            if next != i || state.selectedRunID == nil {
                state.selectedRunID = state.runs[next].record.id
                state.outputPosition = .follow
            }
        case .output: scrollOutput(by: delta)
        case .backends: state.selectedBackend = min(max(0, state.selectedBackend + delta), state.backends.count - 1)
        case .orphans: state.selectedOrphan = min(max(0, state.selectedOrphan + delta), max(0, state.orphans.count - 1))
        case .token: break
        }
    }

    private func jump(toTop: Bool) {
        switch state.focus {
        case .runs:
            guard let target = toTop ? state.runs.first : state.runs.last else { return }
            state.selectedRunID = target.record.id
            state.outputPosition = .follow
        case .output:
            state.outputPosition = toTop ? .anchored(raw: 0, sub: 0) : .follow
        case .backends: state.selectedBackend = toTop ? 0 : state.backends.count - 1
        case .orphans: state.selectedOrphan = toTop ? 0 : max(0, state.orphans.count - 1)
        case .token: break
        }
    }

    /// Scrolls the selected run's output by rendered lines; reaching the end resumes following.
    func scrollOutput(by delta: Int) {
        guard let id = state.selectedRunID else { return }
        let cursor = OutputCursor(source: output, run: id, renderer: renderer, wrapWidth: layout.output.inner.width,
                                  cache: renderedLines)
        let page = layout.outputPage
        var anchor: (raw: Int, sub: Int)
        switch state.outputPosition {
        case .follow:
            guard delta < 0 else { return }
            anchor = cursor.bottomAnchor(page)
        case .anchored(let raw, let sub):
            anchor = (raw, sub)
        }
        anchor = cursor.move(from: anchor, by: delta)
        if delta > 0 && cursor.reachesEnd(from: anchor, page) {
            state.outputPosition = .follow
        } else {
            state.outputPosition = .anchored(raw: anchor.raw, sub: anchor.sub)
        }
    }
}
