import CCDeckBackends
import CCDeckCore
@testable import CCDeckTUI
import Foundation
import Testing
import _CCDeckTestSupport

/// The screen model, pane by pane, at the sizes people use. Golden files live in
/// Tests/CCDeckTUITests/Golden; CCDECK_UPDATE_GOLDEN=1 rewrites them (then read the diff).
@Suite struct GoldenTests {
    static let goldenDir = TestPaths.repositoryRoot + "/Tests/CCDeckTUITests/Golden"

    func check(_ screen: Screen, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = Self.goldenDir + "/\(name).txt"
        let text = screen.text + "\n"
        if ProcessInfo.processInfo.environment["CCDECK_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: Self.goldenDir, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == expected, "screen differs from \(name).txt:\n\(text)", sourceLocation: sourceLocation)
        // Every row is exactly the screen's width: nothing misaligned, nothing spilling.
        for y in 0..<screen.height {
            #expect(DisplayWidth.of(screen.row(y)) == screen.width, "row \(y) of \(name)", sourceLocation: sourceLocation)
        }
    }

    func render(_ d: Dashboard, _ output: OutputSource, theme: Theme = Theme()) -> Screen {
        DashboardView(theme: theme).render(d, source: output)
    }

    /// The 80x24 fixture dashboard after its live run printed one more stream-json line.
    func liveRunPrinted(_ line: String) -> Screen {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 80, height: 24, output: output)
        d.handle(.runEvent(id: "20261129-023900-00aa", StreamEventParser().parse(line)))
        return render(d, output)
    }

    @Test(arguments: [(80, 24), (120, 40), (250, 70)])
    func everyPane(width: Int, height: Int) throws {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: width, height: height, output: output)
        try check(render(d, output), "dashboard-\(width)x\(height)")
    }

    @Test(arguments: [(80, 24), (120, 40)])
    func finishedRunSelectedWithFocusOnOutput(width: Int, height: Int) throws {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: width, height: height, output: output)
        d.handle(.key(.down))
        d.handle(.key(.tab))
        try check(render(d, output), "finished-output-\(width)x\(height)")
    }

    @Test func firstFrameWhileProbesArePending() throws {
        let output = MemoryOutput()
        let d = Dashboard(state: DashboardState(width: 80, height: 24, now: TUIFixtures.now), actions: ActionTable(), output: output)
        let screen = render(d, output)
        try check(screen, "first-frame-80x24")
        #expect(screen.text.contains("probing…") && screen.text.contains("reading…") && screen.text.contains("looking…"))
    }

    @Test func tooSmall() throws {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 50, height: 12, output: output)
        let screen = render(d, output)
        try check(screen, "too-small-50x12")
        #expect(screen.text.contains("terminal too small (need 60×18)"))
    }

    @Test func monochromeAsciiStillShowsEveryState() throws {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        let screen = render(d, output, theme: Theme(glyphs: .ascii, color: false))
        try check(screen, "monochrome-ascii-120x40")
        // States read without colour: glyph and word for each.
        let text = screen.text
        for word in ["running", "succeeded", "failed", "ready", "not installed", "daemon down", "not responding"] {
            #expect(text.contains(word), "\(word)")
        }
        // The selection is reverse video, not a colour.
        let selectedRow = (0..<screen.height).first { screen.row($0).contains("20261129-023900-00aa") }!
        #expect(screen[3, selectedRow].style.reverse)
    }

    @Test func helpOverlayAndLaunchForm() throws {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        d.handle(.key(.char("?")))
        try check(render(d, output), "help-120x40")
        d.handle(.key(.escape))
        d.handle(.key(.char("n")))
        try check(render(d, output), "launch-120x40")
    }

    @Test func comparisonOverlay() throws {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        d.handle(.key(.char("n")))
        d.handle(.key(.backTab))
        d.handle(.key(.left))
        try check(render(d, output), "launch-compare-120x40")
        guard case .compare(_, _, let group, _)? = d.handle(.key(.enter)).first else { Issue.record("no compare"); return }
        var a = TUIFixtures.record("20261129-030000-0a01", .docker, .succeeded, startedAgo: 0, wall: 3.5, turns: 2, cost: 0.0123)
        a.phases.firstEvent = a.createdAt.addingTimeInterval(0.8)
        var b = TUIFixtures.record("20261129-030000-0b02", .podman, .failed, startedAgo: 0, wall: 2, turns: 1, cost: 0.004)
        b.reason = "\u{1b}]0;pwned\u{7}exit 1"
        a.group = group
        b.group = group
        d.handle(.runStarted(a))
        d.handle(.runStarted(b))
        d.handle(.runFinished(a))
        d.handle(.runFinished(b))
        let screen = render(d, output)
        #expect(!screen.text.contains("\u{1b}"))
        try check(screen, "comparison-120x40")
    }

    /// On a wide screen a failure's whole reason shows; the table is not cut to its own width.
    @Test func comparisonOverlayWidensForALongReason() throws {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 250, height: 70, output: output)
        _ = d.handle(.key(.char("n")))
        _ = d.handle(.key(.backTab))
        _ = d.handle(.key(.left))
        guard case .compare(_, _, let group, _)? = d.handle(.key(.enter)).first else { Issue.record("no compare"); return }
        let reason = "api_error: API Error: Connection refused — a firewall or proxy may be blocking it (ECONNREFUSED)"
        for (id, mode) in [("20261129-030000-0a01", BackendKind.docker), ("20261129-030000-0b02", .podman)] {
            var r = TUIFixtures.record(id, mode, .failed, startedAgo: 0, wall: 1)
            r.reason = reason
            r.group = group
            d.handle(.runStarted(r))
            d.handle(.runFinished(r))
        }
        #expect(render(d, output).text.contains(reason))
    }

    @Test func cjkAndEmojiKeepColumnsAligned() throws {
        let screen = liveRunPrinted(#"{"type":"assistant","message":{"content":[{"type":"text","text":"日本語のテキスト 😀 emoji 👩‍💻 and 한국어 mixed with ascii, long enough to reach the border of the pane and be cut there"}]}}"#)
        try check(screen, "cjk-emoji-80x24")
        #expect(screen.text.contains("日本語のテキスト 😀"))
    }

    @Test func escapeSequencesInOutputAreInertOnScreen() throws {
        let screen = liveRunPrinted(#"{"type":"assistant","message":{"content":[{"type":"text","text":"title\u001b]0;pwned\u0007 clear\u001b[2J osc52\u001b]52;c;Zm9v\u0007 move\u001b[10;10H bell\u0007 c1\u009b31m"}]}}"#)
        try check(screen, "escapes-80x24")
        #expect(screen.cells.allSatisfy { InertText.isInert($0.text) })
        #expect(screen.text.contains("title␛]0;pwned␇ clear␛[2J"))
    }
}
