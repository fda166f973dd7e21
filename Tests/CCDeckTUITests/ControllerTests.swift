import CCDeckBackends
import CCDeckCore
@testable import CCDeckTUI
import Foundation
import Testing
import _CCDeckTestSupport

/// Every key action and background event through the controller, with no terminal.
@Suite struct ControllerTests {
    let output = MemoryOutput()

    func dashboard(readonly: Bool = false, width: Int = 120, height: Int = 40) -> Dashboard {
        TUIFixtures.dashboard(width: width, height: height, output: output, readonly: readonly)
    }

    func press(_ d: Dashboard, _ keys: Key...) -> [Effect] {
        keys.flatMap { d.handle(.key($0)) }
    }

    @Test func launchFormOffersReadyRunnableModesAndLaunches() {
        let ws = TemporaryDirectory("ccdeck-ws")
        let d = dashboard()
        #expect(press(d, .char("n")).isEmpty)
        guard case .launch(let form)? = d.state.overlay else { Issue.record("no launch form"); return }
        #expect(form.modes == [.docker, .podman])
        #expect(form.prompt.text == RunRequest.defaultPrompt)
        #expect(form.field == .prompt)
        // Replace the prompt, pick podman, name a workspace.
        _ = press(d, .ctrl("u"), .char("h"), .char("i"), .backTab, .right, .tab, .tab)
        for c in ws.path { _ = press(d, .char(c)) }
        let effects = press(d, .enter)
        #expect(effects == [.launch(mode: .podman, prompt: "hi", workspace: ws.path)])
        #expect(d.state.overlay == nil)
    }

    /// The mode field's last choice runs the prompt on every ready mode at once; each run is
    /// marked with the comparison, and the table shows when the last one finishes.
    /// The form's Timeout: a duration goes with the launch; anything else keeps the form open on it.
    @Test func theLaunchFormTakesATimeout() {
        #expect(LaunchForm(modes: [.docker], prompt: "p", timeout: 300).timeout.text == "5m")  // dashboard --timeout 5m
        let d = dashboard()
        _ = press(d, .char("n"))
        guard case .launch(let form)? = d.state.overlay else { Issue.record("no launch form"); return }
        #expect(form.timeout.isEmpty)
        _ = press(d, .tab, .tab)  // prompt → workspace → timeout
        _ = press(d, .ctrl("u"), .char("x"))
        #expect(press(d, .enter).isEmpty)
        guard case .launch(let refused)? = d.state.overlay else { Issue.record("the form closed"); return }
        #expect(refused.field == .timeout && refused.problem?.contains("a duration like 90s") == true)
        _ = press(d, .ctrl("u"), .char("9"), .char("0"), .char("s"))
        #expect(press(d, .enter) == [.launch(mode: .docker, prompt: RunRequest.defaultPrompt, workspace: nil, timeout: 90)])
        _ = press(d, .char("n"), .tab, .tab, .ctrl("u"))
        #expect(press(d, .enter) == [.launch(mode: .docker, prompt: RunRequest.defaultPrompt, workspace: nil, timeout: nil)])
    }

    @Test func compareLaunchesEveryReadyModeAndShowsTheTableWhenAllFinish() {
        let d = dashboard()
        #expect(press(d, .char("C")).isEmpty)
        #expect(d.state.notice?.text.hasPrefix("no comparison yet") == true)
        _ = press(d, .char("n"), .ctrl("u"), .char("h"), .char("i"), .backTab, .left)
        guard case .launch(let form)? = d.state.overlay, form.comparing else { Issue.record("compare not chosen"); return }
        let effects = press(d, .enter)
        guard case .compare(let modes, let prompt, let group, _)? = effects.first, effects.count == 1 else {
            Issue.record("no compare effect: \(effects)"); return
        }
        #expect(modes == [.docker, .podman] && prompt == "hi" && group.hasPrefix("cmp-"))
        #expect(d.state.pendingLaunches == 2 && d.state.overlay == nil)

        var a = TUIFixtures.record("20261129-030000-0a01", .docker, .starting, startedAgo: 0, wall: nil)
        var b = TUIFixtures.record("20261129-030000-0b02", .podman, .starting, startedAgo: 0, wall: nil)
        a.group = group
        b.group = group
        d.handle(.runStarted(a))
        d.handle(.runStarted(b))
        #expect(d.state.pendingLaunches == 0)
        _ = press(d, .char("C"))
        #expect(d.state.notice?.text == "comparison running: 0 of 2 runs finished")
        a.state = .succeeded
        a.endedAt = a.createdAt.addingTimeInterval(3.5)
        a.costUSD = 0.01
        d.handle(.runFinished(a))
        #expect(d.state.overlay == nil, "one mode still running")
        b.state = .failed
        b.reason = "the agent said no"
        b.endedAt = b.createdAt.addingTimeInterval(2)
        d.handle(.runFinished(b))
        guard case .comparison(let c)? = d.state.overlay else { Issue.record("no table"); return }
        #expect(c.variants.map(\.name) == ["docker", "podman"])
        #expect(c.variants[0].succeeded == 1 && c.variants[1].failed == 1)
        #expect(c.findings.contains { $0.hasPrefix("fastest overall: docker") })
        #expect(c.findings.contains { $0.contains("the agent said no") })
        #expect(d.state.comparisons.isEmpty)
        // Any key closes it; C brings it back.
        _ = press(d, .char("x"))
        #expect(d.state.overlay == nil)
        _ = press(d, .char("C"))
        #expect(d.state.overlay == .comparison(c))
    }

    /// A mode whose run never came to be is in the table with why; a workspace is refused (each
    /// mode gets a fresh one).
    @Test func compareCountsARunThatNeverStartedAndRefusesAWorkspace() {
        let ws = TemporaryDirectory("ccdeck-ws")
        let d = dashboard()
        _ = press(d, .char("n"), .backTab, .left, .tab, .tab)
        for c in ws.path { _ = press(d, .char(c)) }
        #expect(press(d, .enter).isEmpty)
        guard case .launch(let form)? = d.state.overlay else { Issue.record("form closed"); return }
        #expect(form.problem?.contains("fresh workspace") == true && form.field == .workspace)
        _ = press(d, .ctrl("u"))
        guard case .compare(_, _, let group, _)? = press(d, .enter).first else { Issue.record("no compare"); return }
        var a = TUIFixtures.record("20261129-030000-0a03", .docker, .starting, startedAgo: 0, wall: nil)
        a.group = group
        d.handle(.runStarted(a))
        d.handle(.compareLaunchFailed(group: group, mode: .podman, why: "no \u{1b}[31mtoken"))
        #expect(d.state.pendingLaunches == 0)
        #expect(d.state.notice?.text.contains("\u{1b}") == false)
        a.state = .succeeded
        a.endedAt = a.createdAt.addingTimeInterval(1)
        // Something else is open when it finishes: the table waits for C.
        _ = press(d, .char("?"))
        d.handle(.runFinished(a))
        #expect(d.state.overlay == .help)
        #expect(d.state.notice?.text == "comparison finished: C shows it")
        #expect(d.state.lastComparison?.variants[1].ready == false)
        #expect(d.state.lastComparison?.findings.contains { $0.hasPrefix("podman did not run: no ") } == true)
    }

    /// `s` pressed before the launched run could even be selected: the stop waits for the run and
    /// goes out the moment it shows up; a launch that fails lets go of the wait.
    @Test func aStopPressedBeforeTheLaunchedRunShowsUpIsNotLost() {
        let d = dashboard()
        d.handle(.runsLoaded([]))
        #expect(press(d, .char("n"), .enter).count == 1)
        #expect(press(d, .char("s")).isEmpty)
        #expect(d.state.stopNextLaunch && d.state.notice?.text == "stopping the run being launched…")
        let record = TUIFixtures.record("20261129-030000-0abc", .docker, .starting, startedAgo: 0, wall: nil)
        #expect(d.handle(.runStarted(record)) == [.stop(runID: record.id)])
        #expect(!d.state.stopNextLaunch && d.state.pendingLaunches == 0)
        // Its second start message (the sandbox started) asks nothing again.
        #expect(d.handle(.runStarted(record)).isEmpty)

        _ = press(d, .char("n"), .enter)
        _ = press(d, .char("k"), .char("k"))  // whatever is selected, a launch is pending
        d.handle(.launchFailed("no token"))
        #expect(d.state.pendingLaunches == 0 && !d.state.stopNextLaunch)
        #expect(d.state.notice?.text == "launch failed: no token")
    }

    @Test func launchWithAnEmptyPromptIsRefusedAndEscCancels() {
        let d = dashboard()
        _ = press(d, .char("n"), .ctrl("u"))
        #expect(press(d, .enter).isEmpty)
        #expect(d.state.notice?.text == "the prompt is empty")
        _ = press(d, .escape)
        #expect(d.state.overlay == nil)
    }

    @Test func launchNeedsAReadyBackend() {
        let d = dashboard()
        d.handle(.backends([BackendStatus(kind: .docker, state: .daemonDown), BackendStatus(kind: .podman, state: .notInstalled)]))
        #expect(press(d, .char("n")).isEmpty)
        #expect(d.state.overlay == nil)
        #expect(d.state.notice?.text.contains("no ready backend") == true)
    }

    @Test func attachAndStopOnlyForLiveRuns() {
        let d = dashboard()
        let live = d.state.runs[0].record
        #expect(live.state == .running)
        #expect(press(d, .char("a")) == [.attach(live)])
        #expect(press(d, .char("s")) == [.stop(runID: live.id)])
        _ = press(d, .down)  // a finished run
        #expect(press(d, .char("a")).isEmpty)
        #expect(d.state.notice?.text == "select a live run to attach to")
        #expect(press(d, .char("s")).isEmpty)
    }

    @Test func removeAsksFirstAndNamesWhatGoes() {
        let d = dashboard()
        #expect(press(d, .char("d")).isEmpty)  // live: refused
        #expect(d.state.notice?.text.contains("stop it first") == true)
        _ = press(d, .down)
        let finished = d.state.selectedRun!.record
        #expect(press(d, .char("d")).isEmpty)
        guard case .confirm(let c)? = d.state.overlay else { Issue.record("no confirmation"); return }
        #expect(c.lines.contains { $0.contains(finished.id) })
        #expect(c.lines.contains { $0.contains(finished.workspace) })
        #expect(press(d, .char("n")).isEmpty)
        #expect(d.state.overlay == nil)
        _ = press(d, .char("d"))
        #expect(press(d, .char("y")) == [.removeRun(finished)])
    }

    @Test func removeAnOrphanFromTheOrphansPane() {
        let d = dashboard()
        _ = press(d, .backTab)  // runs → orphans
        #expect(d.state.focus == .orphans)
        _ = press(d, .down)
        let orphan = d.state.orphans[1]
        _ = press(d, .char("d"))
        guard case .confirm(let c)? = d.state.overlay else { Issue.record("no confirmation"); return }
        #expect(c.lines.joined().contains(orphan.name))
        #expect(press(d, .enter) == [.removeOrphan(orphan)])
    }

    @Test func repushTokenAndQuit() {
        let d = dashboard()
        #expect(press(d, .char("t")) == [.repushToken])
        // A live run driven here: quitting asks first.
        #expect(press(d, .char("q")).isEmpty)
        guard case .confirm(let c)? = d.state.overlay else { Issue.record("no confirmation"); return }
        #expect(c.lines.joined().contains("keep running"))
        #expect(press(d, .char("y")) == [.quit])
        // No live run: quit at once.
        var finished = d.state.runs[0].record
        finished.state = .stopped
        d.handle(.runFinished(finished))
        #expect(press(d, .char("q")) == [.quit])
    }

    @Test func readonlyDropsEveryDangerousAction() {
        let d = dashboard(readonly: true)
        for key in ["n", "a", "s", "d", "t"] {
            #expect(press(d, .char(Character(key))).isEmpty)
            #expect(d.state.overlay == nil)
        }
        #expect(!d.actions.footerHints.contains { ["launch", "attach", "stop", "remove", "token"].contains($0.label) })
        #expect(d.actions.footerHints.contains { $0.label == "quit" })
    }

    @Test func focusCyclesAndMovementFollowsFocus() {
        let d = dashboard()
        #expect(d.state.focus == .runs)
        let order = (0..<5).map { _ -> Pane in _ = press(d, .tab); return d.state.focus }
        #expect(order == [.output, .backends, .token, .orphans, .runs])
        _ = press(d, .char("j"))
        #expect(d.state.selectedRunIndex == 1)
        _ = press(d, .char("G"))
        #expect(d.state.selectedRunIndex == 2)
        _ = press(d, .char("g"))
        #expect(d.state.selectedRunIndex == 0)
        _ = press(d, .tab, .tab, .down, .down)
        #expect(d.state.focus == .backends && d.state.selectedBackend == 2)
    }

    @Test func outputScrollsOverTheStoredOutputAndFollowsAgainAtTheEnd() {
        let d = dashboard(height: 24)  // a short pane: the recording does not fit
        _ = press(d, .down, .tab)  // the finished run, focus output
        #expect(d.state.outputPosition == .follow)
        _ = press(d, .char("k"))
        guard case .anchored = d.state.outputPosition else { Issue.record("not scrolled"); return }
        _ = press(d, .char("g"))
        #expect(d.state.outputPosition == .anchored(raw: 0, sub: 0))
        _ = press(d, .pageDown, .pageDown, .pageDown, .pageDown)
        #expect(d.state.outputPosition == .follow)
        _ = press(d, .pageUp)
        #expect(d.state.outputPosition != .follow)
        _ = press(d, .char("G"))
        #expect(d.state.outputPosition == .follow)
    }

    @Test func runStateTransitions() {
        let d = dashboard()
        var r = TUIFixtures.record("20261129-024000-0fff", .podman, .starting, startedAgo: 0, wall: nil)
        d.handle(.runStarted(r))
        #expect(d.state.selectedRunID == r.id)  // a new run is selected
        #expect(d.state.runs.first { $0.record.id == r.id }?.isLive == true)
        d.handle(.runEvent(id: r.id, .systemInit(.init(sessionID: nil, model: "m", cwd: nil, claudeCodeVersion: nil,
                                                        apiKeySource: nil, tools: []))))
        #expect(d.state.runs.first { $0.record.id == r.id }?.record.state == .running)
        d.handle(.runEvent(id: r.id, .result(ResultEvent(subtype: "success", isError: false, numTurns: 2, totalCostUSD: 0.01))))
        #expect(d.state.runs.first { $0.record.id == r.id }?.turns == 2)
        r.state = .succeeded
        r.turns = 2
        d.handle(.runFinished(r))
        #expect(d.state.runs.first { $0.record.id == r.id }?.isLive == false)
        d.handle(.runRemoved(id: r.id))
        #expect(!d.state.runs.contains { $0.record.id == r.id })
        #expect(d.state.selectedRunID != nil)
    }

    @Test func backendsComeAndGo() {
        let d = dashboard()
        d.handle(.backends([BackendStatus(kind: .docker, state: .daemonDown, detail: "Cannot connect")]))
        #expect(d.state.readyModes == [.podman])
        d.handle(.backends([BackendStatus(kind: .docker, state: .ready, clientVersion: "28")]))
        #expect(d.state.readyModes == [.docker, .podman])
    }

    @Test func tokenExpiresAsTheClockMoves() {
        let d = dashboard()
        let theme = Theme()
        func tokenText() -> String {
            guard case .resolved(let t) = d.state.token else { return "" }
            return Panes.countdown(t, now: d.state.now, glyphs: theme.glyphs).0
        }
        #expect(tokenText() == "✓ expires in 5h 12m")
        d.handle(.tick(TUIFixtures.now.addingTimeInterval(3 * 3600 + 13 * 60)))
        #expect(tokenText() == "! expires in 1h 59m")
        d.handle(.tick(TUIFixtures.now.addingTimeInterval(5 * 3600 + 13 * 60)))
        #expect(tokenText() == "✗ EXPIRED 30s ago")
        d.handle(.token(.failed("no Claude Code token found")))
        let screen = DashboardView(theme: theme).render(d, source: output)
        #expect(screen.text.contains("none usable"))
    }

    @Test func nextTickOnlyWhenSomethingCountsDown() {
        let state = DashboardState(width: 80, height: 24, now: TUIFixtures.now)
        #expect(state.nextTick() == nil)  // nothing live, no token: sleep until something happens
        var withToken = state
        withToken.token = .resolved(TUIFixtures.token)  // expires in 5h 12m: the minute changes in 60 s at most
        let next = withToken.nextTick()!
        #expect(next.timeIntervalSince(TUIFixtures.now) > 0 && next.timeIntervalSince(TUIFixtures.now) <= 60)
        let d = dashboard()  // a live run: elapsed time ticks each second
        #expect(d.state.nextTick()!.timeIntervalSince(d.state.now) <= 1)
    }

    @Test func tooSmallOnlyQuits() {
        let d = dashboard(width: 40, height: 10)
        #expect(press(d, .char("n")).isEmpty)
        #expect(d.state.overlay == nil)
        d.handle(.runFinished({ var r = d.state.runs[0].record; r.state = .failed; return r }()))
        #expect(press(d, .char("q")) == [.quit])
    }

    @Test func helpOpensAndAnyKeyCloses() {
        let d = dashboard()
        _ = press(d, .char("?"))
        #expect(d.state.overlay == .help)
        #expect(press(d, .char("n")).isEmpty)
        #expect(d.state.overlay == nil)
    }
}

@Suite struct ViewTests {
    @Test func redrawsOnlyWhatChanged() {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        let view = DashboardView(theme: Theme())
        _ = view.render(d, source: output)
        #expect(view.lastDrawn.count == 8)  // seven panes and the header
        _ = view.render(d, source: output)
        #expect(view.lastDrawn.isEmpty)
        d.handle(.runEvent(id: d.state.runs[0].record.id, .assistant([.text("more")])))
        _ = view.render(d, source: output)
        #expect(view.lastDrawn == ["runs", "output"])  // the turn count and the output changed
        d.handle(.tick(TUIFixtures.now.addingTimeInterval(0.4)))
        _ = view.render(d, source: output)
        #expect(view.lastDrawn.isEmpty)  // nothing visible changed within the second
    }

    @Test func screenDiffFindsChangedRows() {
        var a = Screen(width: 10, height: 3)
        var b = a
        b.put("x", x: 2, y: 1)
        #expect(b.changedRows(since: a) == [1])
        #expect(b.changedRows(since: nil) == [0, 1, 2])
        a.put("日本", x: 0, y: 0)
        #expect(a.row(0) == "日本      ")
        a.put("z", x: 1, y: 0)  // over the right half of 日
        #expect(a.row(0) == " z本      ")
    }

    @Test func tailIsBounded() {
        var tail = RunTail(capacity: 3)
        for i in 0..<10 { tail.append(RenderedLine(kind: .text, text: "\(i)")) }
        #expect(tail.count == 3 && tail.totalAppended == 10)
        #expect(tail.last(5).map(\.text) == ["7", "8", "9"])
    }
}

@Suite struct KeyConfigTests {
    @Test func remapsAndRejects() throws {
        let map = try ActionTable.parseConfig("""
            # my keys
            launch = N, ctrl-n
            quit = x
            help = f1
            """)
        #expect(map[.launch] == [.char("N"), .ctrl("n")])
        let table = ActionTable(overrides: map)
        #expect(table.action(for: .char("N")) == .launch)
        #expect(table.action(for: .char("n")) == nil)
        #expect(table.action(for: .char("x")) == .quit)
        #expect(table.footerHints.first { $0.label == "quit" }?.key == "x")
    }

    @Test(arguments: [
        ("launch n", 1, "expected `action = key`"),
        ("fly = f", 1, "unknown action"),
        ("launch = hyper-x", 1, "unknown key 'hyper-x'"),
        ("launch = x\nquit = x", 2, "already bound to launch"),
        ("quit = ctrl-c", 1, "ctrl-c always quits"),
        ("launch = q", 1, "default"),
    ])
    func errorsNameTheLine(text: String, line: Int, problem: String) {
        do {
            _ = try ActionTable.parseConfig(text)
            Issue.record("expected an error")
        } catch {
            #expect(error.line == line)
            #expect(error.problem.contains(problem), "\(error.problem)")
        }
    }

    @Test func keyNames() {
        for name in ["n", "ctrl-x", "tab", "shift-tab", "pgup", "pgdn", "f5", "space", "?", "G"] {
            #expect(Key(name: name)?.description == name)
        }
        #expect(Key(name: "") == nil)
    }
}

@Suite struct KeybindingsDocTests {
    /// docs/keybindings.md is generated from the action table: regenerate it with
    /// `ccdeck dashboard --print-keybindings > docs/keybindings.md` when this fails.
    @Test func theKeybindingsPageIsTheActionTable() throws {
        let file = try String(contentsOfFile: TestPaths.repositoryRoot + "/docs/keybindings.md", encoding: .utf8)
        #expect(file == ActionTable.keybindingsMarkdown + "\n", "docs/keybindings.md is stale: regenerate it")
    }
}

/// The run history paged in as the list is scrolled (issue 16): the dashboard holds the newest
/// page, asks for the next one near the end, one at a time, and lets go of what is far above
/// the selection past a bound, asking for it again on the way back up.
@Suite struct HistoryPagingTests {
    let output = MemoryOutput()

    func page(_ from: Int, _ count: Int) -> [RunEntry] {
        (from..<(from + count)).map {
            RunEntry(record: TUIFixtures.record(String(format: "20261129-%06d-0000", 999_999 - $0), .docker, .succeeded,
                                                startedAgo: Double($0) * 60, wall: 10))
        }
    }

    @Test func theNextPageIsAskedNearTheEndOnceAtATime() throws {
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        d.handle(.runsLoaded(page(0, 200)))
        d.handle(.runsHistory(complete: false, total: 100_000, totals: nil))
        #expect(d.handle(.key(.home)).isEmpty)  // the newest run (and the fixtures' live one among them)
        #expect(d.state.selectedRunID == page(0, 1)[0].record.id)
        #expect(d.handle(.key(.down)).isEmpty)
        let effects = d.handle(.key(.end))
        #expect(effects == [.loadOlderRuns(before: RunCursor(page(199, 1)[0].record))])
        #expect(d.handle(.key(.up)).isEmpty, "one page at a time")
        _ = d.handle(.olderRunsLoaded(page(200, 200), complete: false))
        #expect(d.state.runs.count == 401 && !d.state.history.loading)  // and the live one
        let screen = DashboardView(theme: Theme()).render(d, source: output)
        #expect(screen.text.contains("Runs (401 of 100000)"))
    }

    @Test func farAboveTheSelectionIsLetGoAndPagedBackIn() throws {
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        d.handle(.runsLoaded(page(0, 200)))
        d.handle(.runsHistory(complete: false, total: 100_000, totals: nil))
        var next = 200
        // Scroll to the end again and again: the window stays bounded.
        for _ in 0..<20 {
            let effects = d.handle(.key(.end))
            guard effects.first != nil else { break }
            _ = d.handle(.olderRunsLoaded(page(next, 200), complete: false))
            next += 200
        }
        #expect(d.state.runs.count <= RunHistoryWindow.maxHeld + 200)
        #expect(d.state.history.trimmedAbove)
        // Back to the top of what is held: the page above is asked for.
        let effects = d.handle(.key(.home))
        let first = try #require(d.state.runs.first { !$0.drivenHere && !$0.record.state.isLive })
        #expect(effects == [.loadNewerRuns(after: RunCursor(first.record))])
        #expect(first.record.id != page(0, 1)[0].record.id, "the newest were let go")
    }

    @Test func aWholeHistoryAsksForNothing() {
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        d.handle(.runsLoaded(page(0, 20)))
        d.handle(.runsHistory(complete: true, total: 20, totals: nil))
        #expect(d.handle(.key(.end)).isEmpty)
        let screen = DashboardView(theme: Theme()).render(d, source: output)
        #expect(screen.text.contains("Runs (23)"))  // and the fixtures' three
    }
}
