import CCDeckBackends
import CCDeckCore
@testable import CCDeckTUI
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What a hostile tester tried: workspaces the engine would mangle, pastes, config files from
/// other systems, and one output line of 60 MB.

private func press(_ d: Dashboard, _ keys: Key...) -> [Effect] {
    keys.flatMap { d.handle(.key($0)) }
}

private func launchForm(_ d: Dashboard) -> LaunchForm? {
    if case .launch(let form)? = d.state.overlay { return form }
    return nil
}

/// Types `text` into the workspace field of an open launch form.
private func typeWorkspace(_ d: Dashboard, _ text: String) {
    while launchForm(d)?.field != .workspace { _ = press(d, .tab) }
    _ = press(d, .ctrl("u"))
    for c in text { _ = press(d, .char(c)) }
}

@Suite struct WorkspaceCheckTests {
    let dir = TemporaryDirectory("ccdeck-wscheck")

    func resolve(_ typed: String) -> Result<String, WorkspaceProblem> {
        WorkspaceCheck.resolve(typed, cwd: dir.path, home: dir.path + "/home")
    }

    func problem(_ typed: String) -> String? {
        if case .failure(let p) = resolve(typed) { return p.description }
        return nil
    }

    init() throws {
        for sub in ["home/x", "rel/inner", "a:b", "a,b", "sp ace"] {
            try FileManager.default.createDirectory(atPath: dir.path + "/" + sub, withIntermediateDirectories: true)
        }
        dir.write("file.txt", "not a folder\n")
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/link", withDestinationPath: dir.path + "/rel")
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/filelink", withDestinationPath: dir.path + "/file.txt")
    }

    var root: String { URL(fileURLWithPath: dir.path).standardizedFileURL.path }

    @Test func expandsTildeMakesAbsoluteAndStandardizes() {
        #expect(resolve("~") == .success(root + "/home"))
        #expect(resolve("~/x") == .success(root + "/home/x"))
        #expect(resolve("~/x/") == .success(root + "/home/x"))
        #expect(resolve("rel") == .success(root + "/rel"))
        #expect(resolve("./rel/inner/..") == .success(root + "/rel"))
        #expect(resolve(dir.path + "/rel/../home/./x") == .success(root + "/home/x"))
        #expect(resolve("  rel\n") == .success(root + "/rel"), "a pasted path's trailing newline is not part of it")
        #expect(resolve("link") == .success(root + "/link"), "a link to a folder is a folder")
        #expect(resolve("sp ace") == .success(root + "/sp ace"))
    }

    @Test func aColonAloneOrACommaAloneIsFineButNotBoth() throws {
        #expect(resolve("a:b") == .success(root + "/a:b"))
        #expect(resolve("a,b") == .success(root + "/a,b"))
        try FileManager.default.createDirectory(atPath: dir.path + "/c,d:e", withIntermediateDirectories: true)
        #expect(problem("c,d:e")?.contains("both `,` and `:`") == true)
    }

    @Test func saysWhatIsWrongInOneLineOfPlainWords() {
        #expect(problem("~/nope") == "~/nope: no such folder")
        #expect(problem(dir.path + "/file.txt") == "\(dir.path)/file.txt is a file, not a folder")
        #expect(problem("filelink") == "filelink (\(root)/filelink) is a file, not a folder")
        #expect(problem("missing") == "missing (\(root)/missing): no such folder")
        #expect(problem("file.txt/below") == "file.txt/below (\(root)/file.txt/below): no such folder")
        #expect(problem("/dev/null") == "/dev/null is not a folder")
        #expect(problem("rel\ninner")?.contains("line break or NUL") == true)
        #expect(problem("rel\u{0}") != nil)
        #expect(problem("   ") == "no folder given")
        #expect(problem("~no-such-user-here/x") == "~no-such-user-here/x: no user named no-such-user-here")
        // The path is made inert: an escape sequence in a typed name shows as text.
        let hostile = problem("\u{1B}]0;pwned\u{7}")
        #expect(hostile?.contains("␛]0;pwned␇") == true)
        #expect(hostile.map { InertText.isInert($0) } == true)
        for p in [problem("~/nope"), problem("file.txt"), hostile] { #expect(p?.contains("\n") == false) }
    }

    @Test func notWritableByTheUserIsRefused() throws {
        let locked = dir.path + "/locked"
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: true)
        chmod(locked, 0o555)
        defer { chmod(locked, 0o755) }
        // root may write anywhere: the check follows access(2), so only another user sees the refusal.
        if getuid() != 0 {
            #expect(problem("locked")?.contains("is not writable by you") == true)
        } else {
            #expect(resolve("locked") == .success(root + "/locked"))
        }
    }

    @Test func theUsersOwnHomeByName() throws {
        guard let pw = getpwuid(getuid()), let name = pw.pointee.pw_name, let home = pw.pointee.pw_dir else { return }
        let user = String(cString: name), dirPath = String(cString: home)
        guard FileManager.default.fileExists(atPath: dirPath), access(dirPath, W_OK) == 0 else { return }
        #expect(resolve("~\(user)") == .success(URL(fileURLWithPath: dirPath).standardizedFileURL.path))
    }
}

@Suite struct LaunchFormWorkspaceTests {
    let dir = TemporaryDirectory("ccdeck-form-ws")
    let output = MemoryOutput()

    func dashboard() -> Dashboard {
        try? FileManager.default.createDirectory(atPath: dir.path + "/home/proj", withIntermediateDirectories: true)
        dir.write("notes.txt", "x")
        return TUIFixtures.dashboard(width: 120, height: 40, output: output, cwd: dir.path, home: dir.path + "/home")
    }

    var root: String { URL(fileURLWithPath: dir.path).standardizedFileURL.path }

    @Test func aMissingFolderKeepsTheFormOpenAndSaysWhyInIt() {
        let d = dashboard()
        _ = press(d, .char("n"))
        typeWorkspace(d, "~/x")
        #expect(press(d, .enter).isEmpty, "nothing launches")
        let form = launchForm(d)
        #expect(form != nil, "the form stays open")
        #expect(form?.problem == "~/x: no such folder")
        #expect(form?.workspace.text == "~/x", "what was typed is kept to be fixed")
        #expect(d.state.notice?.text == "~/x: no such folder")
        let screen = DashboardView(theme: Theme()).render(d, source: output)
        #expect(screen.text.contains("! ~/x: no such folder"), "\(screen.text)")
        // Fixing the name clears the problem; Enter then launches with the absolute path.
        typeWorkspace(d, "~/proj")
        #expect(launchForm(d)?.problem == nil)
        #expect(press(d, .enter) == [.launch(mode: .docker, prompt: RunRequest.defaultPrompt, workspace: root + "/home/proj")])
        #expect(d.state.overlay == nil)
    }

    @Test(arguments: [
        ("notes.txt", "notes.txt (ROOT/notes.txt) is a file, not a folder"),
        ("volume-name", "volume-name (ROOT/volume-name): no such folder"),
        ("/no/such/place", "/no/such/place: no such folder"),
        ("~/proj/../nope", "~/proj/../nope: no such folder"),
    ])
    func refusedWorkspaces(typed: String, problem: String) {
        let d = dashboard()
        _ = press(d, .char("n"))
        typeWorkspace(d, typed)
        #expect(press(d, .enter).isEmpty)
        #expect(launchForm(d)?.problem == problem.replacingOccurrences(of: "ROOT", with: root))
        #expect(launchForm(d)?.field == .workspace, "the field at fault is focused")
    }

    @Test func relativeAndEmptyWorkspaces() {
        let d = dashboard()
        _ = press(d, .char("n"))
        typeWorkspace(d, "home/proj")
        #expect(press(d, .enter) == [.launch(mode: .docker, prompt: RunRequest.defaultPrompt, workspace: root + "/home/proj")])
        _ = press(d, .char("n"))
        typeWorkspace(d, "   ")
        #expect(press(d, .enter) == [.launch(mode: .docker, prompt: RunRequest.defaultPrompt, workspace: nil)],
                "an empty workspace still means a fresh one")
    }

    @Test func aPromptWithANulIsRefusedInTheForm() {
        let d = dashboard()
        _ = press(d, .char("n"), .ctrl("u"), .paste("hello\u{0}world"))
        #expect(press(d, .enter).isEmpty)
        #expect(launchForm(d)?.problem?.contains("NUL") == true)
    }
}

@Suite struct PasteTests {
    let output = MemoryOutput()

    func openForm() -> Dashboard {
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        _ = press(d, .char("n"), .ctrl("u"))
        return d
    }

    @Test func aMultiLinePasteIsPromptTextAndLaunchesNothing() {
        let d = openForm()
        let text = "first line\nsecond line\n\n  indented third\nq\nn\n"
        #expect(press(d, .paste(text)).isEmpty)
        #expect(launchForm(d)?.prompt.text == text, "newlines stay part of the prompt")
        #expect(launchForm(d)?.field == .prompt)
        // More typing goes after the paste; only an explicit Enter launches.
        #expect(press(d, .char("!")).isEmpty)
        let effects = press(d, .enter)
        #expect(effects == [.launch(mode: .docker, prompt: "first line\nsecond line\n\n  indented third\nq\nn\n!", workspace: nil)])
    }

    @Test func aPasteGoesInAtTheCursor() {
        let d = openForm()
        _ = press(d, .char("a"), .char("d"), .left, .paste("b\nc"))
        #expect(launchForm(d)?.prompt.text == "ab\ncd")
        #expect(launchForm(d)?.prompt.cursor == 4)
        _ = press(d, .backspace, .delete)
        #expect(launchForm(d)?.prompt.text == "ab\n")
    }

    @Test func aBigPasteIsOneEditAndTypingAfterItStaysCheap() {
        let d = openForm()
        var text = ""
        while text.utf8.count < 32 * 1024 { text += "line \(text.count) of a long pasted prompt, with ünïcödé 日本\n" }
        _ = press(d, .paste(text))
        #expect(launchForm(d)?.prompt.byteCount == text.utf8.count)
        for _ in 0..<2_000 { _ = d.handle(.key(.char("x"))) }
        #expect(launchForm(d)?.prompt.byteCount == text.utf8.count + 2_000)
        #expect(launchForm(d)?.prompt.text == text + String(repeating: "x", count: 2_000))
        let screen = DashboardView(theme: Theme()).render(d, source: output)
        #expect(screen.text.contains("xxxx▏"))
    }

    @Test func thePromptIsCappedWithANotice() {
        let d = openForm()
        let big = String(repeating: "y", count: LaunchForm.maxPromptBytes + 10)
        _ = press(d, .paste(big))
        #expect(launchForm(d)?.prompt.byteCount == LaunchForm.maxPromptBytes)
        #expect(d.state.notice?.text.contains("the prompt is full") == true)
        _ = press(d, .char("z"))
        #expect(launchForm(d)?.prompt.byteCount == LaunchForm.maxPromptBytes)
        // Room again after deleting: a multi-byte character that does not fit is refused whole.
        _ = press(d, .backspace, .char("é"))
        #expect(launchForm(d)?.prompt.byteCount == LaunchForm.maxPromptBytes - 1)
        _ = press(d, .char("z"))
        #expect(launchForm(d)?.prompt.byteCount == LaunchForm.maxPromptBytes)
    }

    @Test func aPasteIsNeverACommand() {
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        #expect(press(d, .paste("nnn\nq\n")).isEmpty)
        #expect(d.state.overlay == nil)
        #expect(d.state.notice?.text.contains("nothing to paste into") == true)
        // Nor an answer: a pasted "y" does not confirm a removal.
        _ = press(d, .down, .char("d"))
        guard case .confirm? = d.state.overlay else { Issue.record("no confirmation"); return }
        #expect(press(d, .paste("y")).isEmpty)
        guard case .confirm? = d.state.overlay else { Issue.record("the paste answered"); return }
    }

    @Test func pastedEscapeSequencesAreDrawnInert() {
        let d = openForm()
        _ = press(d, .paste("title\u{1B}]0;pwned\u{7}\nclear\u{1B}[2J c1\u{9B}31m\ttab"))
        let screen = DashboardView(theme: Theme()).render(d, source: output)
        #expect(screen.cells.allSatisfy { InertText.isInert($0.text) })
        let row = (0..<screen.height).map { screen.row($0) }.first { $0.contains("Prompt") } ?? ""
        #expect(row.contains("title␛]0;pwned␇⏎clear␛[2J c1�31m    tab▏"), "\(row)")
        // The workspace field too.
        _ = press(d, .tab, .paste("\u{1B}[31mred"))
        let again = DashboardView(theme: Theme()).render(d, source: output)
        #expect(again.cells.allSatisfy { InertText.isInert($0.text) })
        #expect(again.text.contains("␛[31mred▏"))
    }

    @Test func aHugeCombiningCharacterIsDrawnBounded() {
        let d = openForm()
        _ = press(d, .paste("a" + String(repeating: "\u{301}", count: 100_000)))
        let screen = DashboardView(theme: Theme()).render(d, source: output)
        #expect(screen.cells.allSatisfy { $0.text.unicodeScalars.count <= 16 })
    }
}

@Suite struct TextFieldTests {
    @Test func editsAtTheCursorAndCountsBytes() {
        var f = TextField("héllo", maxBytes: 10)
        #expect(f.byteCount == 6 && f.cursor == 5)
        #expect(f.edit(.home) == .edited)
        #expect(f.edit(.char("¡")) == .edited)
        #expect(f.text == "¡héllo" && f.byteCount == 8)
        #expect(f.edit(.paste("abc")) == .full, "only what fits goes in")
        #expect(f.text == "¡abhéllo" && f.byteCount == 10 && f.cursor == 3)
        #expect(f.edit(.char("z")) == .full)
        #expect(f.edit(.ctrl("e")) == .edited && f.cursor == 8)
        #expect(f.edit(.ctrl("u")) == .edited && f.text.isEmpty && f.byteCount == 0)
        #expect(f.edit(.pageUp) == .notAnEdit)
        #expect(TextField(String(repeating: "é", count: 10), maxBytes: 5).text == "éé")
    }
}

@Suite struct InputDecoderTests {
    func decode(_ text: String) -> [Key] {
        var d = InputDecoder()
        return d.decode(text.unicodeScalars)
    }

    @Test func aBracketedPasteIsOneKey() {
        #expect(decode("\u{1B}[200~hello\rworld\u{1B}[201~") == [.paste("hello\nworld")])
        // Line ends as terminals send them (CR), as files hold them (LF, CR LF): one newline each.
        #expect(decode("\u{1B}[200~a\rb\nc\r\nd\r\re\u{1B}[201~") == [.paste("a\nb\nc\nd\n\ne")])
        #expect(decode("\u{1B}[200~\u{1B}[201~") == [.paste("")])
    }

    @Test func keysAroundAPasteStayKeys() {
        #expect(decode("n\u{1B}[200~x\ry\u{1B}[201~\r") == [.char("n"), .paste("x\ny"), .enter])
        #expect(decode("\u{1B}") == [.escape])
        #expect(decode("\u{1B}x") == [.escape, .char("x")])
        #expect(decode("\u{1B}\u{1B}") == [.escape, .escape])
        #expect(decode("\u{1B}[20q") == [.escape, .char("["), .char("2"), .char("0"), .char("q")])
        #expect(decode("ab\tc\u{7F}\u{3}") == [.char("a"), .char("b"), .tab, .char("c"), .backspace, .ctrl("c")])
    }

    @Test func escapeSequencesInsideAPasteAreText() {
        let hostile = "\u{1B}]0;pwned\u{7}\u{1B}[2J\u{1B}[20\u{1B}[201x\u{1B}[200~nested\u{1B}"
        #expect(decode("\u{1B}[200~" + hostile + "\u{1B}[201~") == [.paste(hostile)])
    }

    @Test func aPasteArrivingInPiecesWaitsForItsEnd() {
        var d = InputDecoder()
        #expect(d.decode("\u{1B}[200~first\r".unicodeScalars).isEmpty)
        #expect(d.inPaste)
        #expect(d.decode("second\u{1B}[20".unicodeScalars).isEmpty, "half an end marker is held, not flushed")
        #expect(d.decode("1~q".unicodeScalars) == [.paste("first\nsecond"), .char("q")])
        #expect(!d.inPaste)
    }

    @Test func keysTheTerminalLibraryDecodedInsideAPaste() {
        var d = InputDecoder()
        var keys = d.decode("\u{1B}[200~a".unicodeScalars)
        keys += d.feed(.key(.enter)) + d.feed(.key(.up))
        keys += d.decode("b\u{1B}[201~".unicodeScalars)
        #expect(keys == [.paste("a\nb")])
        #expect(d.feed(.key(.up)) == [.up])
    }

    @Test func aPasteIsBounded() {
        var d = InputDecoder(maxPasteBytes: 10)
        #expect(d.decode(("\u{1B}[200~" + String(repeating: "é", count: 100) + "\u{1B}[201~").unicodeScalars)
                == [.paste(String(repeating: "é", count: 5))])
    }
}

@Suite struct TerminalCheckTests {
    @Test func unusableTerminalsAreNamedInCCDecksWords() {
        #expect(TerminalError.unusable(term: "dumb", check: 5).description
                == "TERM=dumb cannot address the cursor: run it in a terminal like xterm, or use `ccdeck runs ls`")
        #expect(TerminalError.unusable(term: "nonexistent-term", check: 2).description
                == "TERM=nonexistent-term is not a terminal type this system knows (no terminfo entry): set TERM to one it knows, like xterm-256color, or use `ccdeck runs ls`")
        #expect(TerminalError.unusable(term: nil, check: 1).description
                == "TERM is not set, so the dashboard cannot know what this terminal can do: set it (e.g. TERM=xterm-256color), or use `ccdeck runs ls`")
        #expect(TerminalError.unusable(term: "", check: 1).description.hasPrefix("TERM is empty"))
        #expect(TerminalError.unusable(term: "lpr", check: 4).description.contains("hardcopy"))
        // TERM itself is untrusted text.
        let hostile = TerminalError.unusable(term: "x\u{1B}]0;t\u{7}", check: 2).description
        #expect(InertText.isInert(hostile) && hostile.contains("TERM=x␛]0;t␇"))
    }
}

@Suite struct KeyConfigLineEndingTests {
    let expected: [Action: [Key]] = [.launch: [.char("N")], .quit: [.char("x")], .help: [.function(1)]]

    @Test(arguments: [
        ("CRLF", "# mine\r\nlaunch = N\r\nquit = x\r\nhelp = f1\r\n"),
        ("CR", "# mine\rlaunch = N\rquit = x\rhelp = f1\r"),
        ("BOM", "\u{FEFF}launch = N\nquit = x\nhelp = f1\n"),
        ("BOM+CRLF", "\u{FEFF}launch = N\r\nquit = x\r\n\r\nhelp = f1"),
        ("trailing white space", "launch = N   \nquit = x\t\t\nhelp = f1 \u{A0}\n   \n"),
        ("mixed", "launch = N\r\nquit = x\rhelp = f1\n"),
    ])
    func lineEndsFromEverywhere(name: String, text: String) throws {
        #expect(try ActionTable.parseConfig(text) == expected, "\(name)")
    }

    @Test func errorsStillNameTheRightLineInACRLFFile() {
        do {
            _ = try ActionTable.parseConfig("\u{FEFF}# keys\r\nlaunch = N\r\nfly = f\r\n")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 3)
            #expect(error.problem.contains("unknown action 'fly'"))
        }
    }

    @Test func theBOMIsNotPartOfTheFirstAction() throws {
        #expect(try ActionTable.parseConfig("\u{FEFF}quit = x")[.quit] == [.char("x")])
    }
}

@Suite struct HugeLineTests {
    static let runID = "20261129-020000-00bb"  // the fixture's finished run

    /// A text event whose text is `size` bytes: one line, or `lineLength`-byte lines.
    static func hugeEvent(_ size: Int, lineLength: Int? = nil) -> String {
        var text: String
        if let lineLength {
            let line = String(repeating: "z", count: lineLength - 2) + "\\n"
            text = String(repeating: line, count: size / lineLength)
        } else {
            text = String(repeating: "x", count: size)
        }
        return #"{"type":"assistant","message":{"content":[{"type":"text","text":""# + text + #""}]}}"#
    }

    func dashboard(_ lines: [String]) -> (Dashboard, MemoryOutput) {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        output.lines[Self.runID] = Array(TUIFixtures.recording.prefix(2)) + lines + [TUIFixtures.recording.last!]
        return (d, output)
    }

    /// Every row the output pane would show for the whole stored output, by walking it with the cursor.
    func allRendered(_ d: Dashboard, _ output: MemoryOutput) -> [[RenderedLine]] {
        let cursor = OutputCursor(source: output, run: Self.runID, renderer: d.renderer, wrapWidth: d.layout.output.inner.width)
        return (0..<cursor.count).map { cursor.rendered($0) }
    }

    @Test(arguments: [("one line", nil), ("short lines", 40)] as [(String, Int?)])
    func aSixtyMegabyteLineRendersBounded(name: String, lineLength: Int?) {
        let (d, output) = dashboard([Self.hugeEvent(60_000_000, lineLength: lineLength)])
        let rendered = allRendered(d, output)
        let huge = rendered[2]
        let width = d.layout.output.inner.width
        #expect(huge.count <= EventRenderer.maxStoredLineBytes / max(1, (lineLength ?? width) - 2) + 64, "\(name): \(huge.count) rows")
        #expect(huge.allSatisfy { DisplayWidth.of($0.text) <= width })
        #expect(huge.reduce(0) { $0 + $1.text.utf8.count } <= EventRenderer.maxStoredLineBytes * 2)
        #expect(huge.first?.text.hasPrefix(lineLength == nil ? "xxxx" : "zzzz") == true, "the event still reads as itself")
        #expect(huge.last?.text.contains("more bytes)") == true, "\(huge.last?.text ?? "")")
        // The lines around it are untouched.
        #expect(rendered[3].first?.text.hasPrefix("✓") == true)
    }

    @Test func selectingAndScrollingARunWithAHugeLine() {
        let (d, output) = dashboard([Self.hugeEvent(60_000_000)])
        let view = DashboardView(theme: Theme())
        _ = press(d, .down)  // select the finished run: its stored output is drawn
        let screen = view.render(d, source: output)
        #expect(screen.text.contains("more bytes)"))
        _ = press(d, .tab, .char("g"))
        for _ in 0..<30 { _ = press(d, .char("j")) }
        _ = press(d, .pageDown, .pageUp, .char("G"), .pageUp)
        let scrolled = view.render(d, source: output)
        #expect((0..<scrolled.height).allSatisfy { DisplayWidth.of(scrolled.row($0)) == scrolled.width })
    }

    @Test func aHugeLiveEventIsBoundedInTheTail() {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        let live = d.state.runs[0].record.id
        let before = d.state.runs[0].tail.totalAppended
        d.handle(.runEvent(id: live, .assistant([.text(String(repeating: "y\n", count: 8_000_000))])))
        d.handle(.runEvent(id: live, .toolResults([.init(toolUseID: "t", content: String(repeating: "w", count: 20_000_000), isError: false)])))
        let added = d.state.runs[0].tail.totalAppended - before
        #expect(added <= EventRenderer.maxStoredLineBytes / 2 + 4, "\(added) lines")
        let last = d.state.runs[0].tail.last(2).map(\.text)
        #expect(last.first?.hasSuffix(" …[cut]") == true)
        #expect(last.last == "  … (19,934,464 more bytes)")
    }

    @Test func aCutLineIsClosedIntoJSON() {
        #expect(StoredLine.closedJSON(#"{"type":"assistant","message":{"content":[{"type":"text","text":"abc"#)
                == #"{"type":"assistant","message":{"content":[{"type":"text","text":"abc"}]}}"#)
        // Never inside an escape, a character, or a key.
        #expect(StoredLine.closedJSON(#"{"a":"x\"#) == #"{"a":"x"}"#)
        #expect(StoredLine.closedJSON(#"{"a":"x\u00"#) == #"{"a":"x"}"#)
        #expect(StoredLine.closedJSON(#"{"a":"xé"#) == #"{"a":"xé"}"#)
        #expect(StoredLine.closedJSON(#"{"a":1,"ke"#) == #"{"a":1}"#)
        #expect(StoredLine.closedJSON(#"{"a":[1,2"#) == #"{"a":[1]}"#)
        #expect(StoredLine.closedJSON(#"{"a":tr"#) == #"{}"#)
        #expect(StoredLine.closedJSON("not json") == nil)
        let parsed = StreamEventParser().parse(StoredLine.closedJSON(#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t","content":"line1\nline2"#)!)
        guard case .toolResults(let r) = parsed else { Issue.record("\(parsed)"); return }
        #expect(r.first?.content == "line1\nline2")
    }

    @Test func storedLinePrefixCutsWhereACharacterStarts() {
        let line = StoredLine("aé日本", maxBytes: 5)  // a(1) é(2) 日(3): 日 does not fit
        #expect(line == StoredLine(text: "aé", omittedBytes: 6))
        #expect(StoredLine(bytes: Array("aé日本".utf8), maxBytes: 5) == StoredLine(text: "aé", omittedBytes: 6))
        #expect(StoredLine("short", maxBytes: 64) == StoredLine(text: "short", omittedBytes: 0))
        #expect(EventRenderer.moreBytes(59_934_464) == "… (59,934,464 more bytes)")
        #expect(EventRenderer.moreBytes(12) == "… (12 more bytes)")
    }
}

@Suite struct EgressPaneTests {
    /// A live run's refused hosts: counted above its output, each in the output once, inert.
    @Test func refusedHostsStandAboveTheOutputAndInItOnce() {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        let live = "20261129-023900-00aa"
        let before = d.state.runs.first { $0.record.id == live }?.tail.totalAppended ?? -1
        for host in ["evil.test", "evil.test", "evil.test", "x\u{1b}]0;pwned\u{07}.test"] {
            d.handle(.runEgress(id: live, EgressDecision(at: TUIFixtures.now, method: "CONNECT", host: host, port: 443, allowed: false,
                                                         reason: "not on this run's egress allowlist")))
        }
        let screen = DashboardView(theme: Theme()).render(d, source: output)
        #expect(screen.text.contains("egress denied: evil.test:443 ×3, "), "\(screen.text)")
        #expect(screen.text.components(separatedBy: "egress denied: evil.test:443\n").count <= 2)
        #expect(screen.cells.allSatisfy { InertText.isInert($0.text) })
        let entry = d.state.runs.first { $0.record.id == live }
        #expect(entry?.tail.totalAppended == before + 2)  // two hosts, one line each
        #expect(entry?.record.egress?.denied.first?.count == 3)
    }
}

@Suite struct StallTests {
    /// A live run silent past the stall time: `stalled` in Runs, and above its output what it was doing.
    @Test func aSilentLiveRunShowsAsStalledWithWhatItWasDoing() {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        let live = "20261129-023900-00aa"
        d.handle(.runEvent(id: live, StreamEventParser().parse(
            #"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t9","name":"Bash","input":{"command":"npm install"}}]}}"#)))
        var screen = DashboardView(theme: Theme()).render(d, source: output)
        #expect(!screen.text.contains(" stalled ") && !screen.text.contains("stalled:"))  // ("not installed" is a backend's)
        d.handle(.tick(TUIFixtures.now.addingTimeInterval(301)))
        screen = DashboardView(theme: Theme()).render(d, source: output)
        #expect(screen.text.contains("docker    stalled "), "\(screen.text)")
        // The oldest call still unanswered is named (the recording's Write, then this Bash).
        #expect(screen.text.contains("stalled: nothing from the agent for 5m1s; Write in flight: /workspace/"), "\(screen.text)")
        // An event ends the stall.
        d.handle(.runEvent(id: live, StreamEventParser().parse(
            #"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t9","content":"added 3 packages"}]}}"#)))
        screen = DashboardView(theme: Theme()).render(d, source: output)
        #expect(!screen.text.contains(" stalled ") && !screen.text.contains("stalled:"), "\(screen.text)")
    }
}

@Suite struct AttentionTests {
    @Test func aRunHereThatEndsWhileAnotherIsSelectedIsCountedUntilSeen() {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        let live = "20261129-023900-00aa"
        _ = d.handle(.key(.char("j")))  // another run selected
        #expect(d.state.selectedRunID != live)
        var done = d.state.runs.first { $0.record.id == live }!.record
        done.state = .succeeded
        #expect(d.handle(.runFinished(done)) == [.bell])
        #expect(d.state.attention == [live] && d.state.windowTitle == "ccdeck: 1 run needs you")
        #expect(DashboardView(theme: Theme()).render(d, source: output).text.contains("Runs (3) · 1 needs you"))
        _ = d.handle(.key(.char("k")))  // back on it: seen
        #expect(d.state.attention.isEmpty && d.state.windowTitle == "ccdeck")
        // A finished run not launched here calls for nothing.
        var other = d.state.runs.first { $0.record.id != live }!.record
        other.state = .failed
        #expect(d.handle(.runFinished(other)).isEmpty)
    }

    @Test func aStallRingsOnceAndTheBellCanBeTurnedOff() {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        _ = d.handle(.key(.char("j")))
        #expect(d.handle(.tick(TUIFixtures.now.addingTimeInterval(400))) == [.bell])
        #expect(d.handle(.tick(TUIFixtures.now.addingTimeInterval(401))).isEmpty)
        #expect(d.state.attention == ["20261129-023900-00aa"])
        let quiet = TUIFixtures.dashboard(width: 120, height: 40, output: output, ringBell: false)
        _ = quiet.handle(.key(.char("j")))
        #expect(quiet.handle(.tick(TUIFixtures.now.addingTimeInterval(400))).isEmpty)
        #expect(quiet.state.attention.count == 1)
    }

    @Test func theSettingsFileTakesItsFourNamesAndNamesABadLine() throws {
        let s = try DashboardSettings.parse("# mine\nbell = off\ntitle=no\nstall-after = 10m # long tasks\ntimeout = 1h\n")
        #expect(!s.bell && !s.title && s.stallAfter == 600 && s.timeout == 3600)
        #expect(try DashboardSettings.parse("") == DashboardSettings())
        #expect(throws: DashboardSettings.ParseError.self) { try DashboardSettings.parse("bell = loud") }
        do { _ = try DashboardSettings.parse("\n\nbeep = on") } catch let e as DashboardSettings.ParseError {
            #expect(e.line == 3 && e.message.contains("unknown setting"))
        }
        #expect(throws: DashboardSettings.ParseError.self) { try DashboardSettings.parse("stall-after = soon") }
    }
}

@Suite struct ChangesPaneTests {
    @Test func aSuccessThatChangedNothingIsMarkedInRuns() {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 120, height: 40, output: output)
        var done = d.state.runs.first { $0.record.state == .succeeded }!.record
        done.changes = WorkspaceChanges.Summary(added: 0, modified: 0, deleted: 0, additions: 0, deletions: 0)
        d.handle(.runFinished(done))
        var text = DashboardView(theme: Theme()).render(d, source: output).text
        #expect(text.contains("! 20261129-020000-00bb podman    no changes"), "\(text)")
        done.changes = WorkspaceChanges.Summary(added: 1, modified: 2, deleted: 0, additions: 9, deletions: 3)
        d.handle(.runFinished(done))
        text = DashboardView(theme: Theme()).render(d, source: output).text
        #expect(!text.contains("no changes"))
    }
}

@Suite struct ChangesOverlayTests {
    @Test func cOpensTheSelectedRunsChangesScrollsAndCloses() {
        let output = MemoryOutput()
        let d = TUIFixtures.dashboard(width: 100, height: 30, output: output)
        #expect(d.handle(.key(.char("c"))).isEmpty)  // the live run is selected
        #expect(d.state.notice?.text == "its changes are known when it ends")
        _ = d.handle(.key(.char("j")))
        let id = d.state.selectedRunID!
        #expect(d.handle(.key(.char("c"))) == [.loadChanges(runID: id)])
        #expect(DashboardView(theme: Theme()).render(d, source: output).text.contains("reading…"))
        let lines = ["A added.txt  +1 −0 10 B", "1 added (+1 −0) against git HEAD", ""]
            + (0..<100).map { "+line \($0) \u{1b}]0;t\u{07}" }
        d.handle(.changesLoaded(id: id, lines.map { InertText.line($0) }))
        var text = DashboardView(theme: Theme()).render(d, source: output).text
        #expect(text.contains("A added.txt  +1 −0 10 B") && text.contains("lines 1–"))
        _ = d.handle(.key(.char("G")))
        text = DashboardView(theme: Theme()).render(d, source: output).text
        #expect(text.contains("+line 99") && !text.contains("A added.txt"))
        #expect(DashboardView(theme: Theme()).render(d, source: output).cells.allSatisfy { InertText.isInert($0.text) })
        _ = d.handle(.key(.escape))
        #expect(d.state.overlay == nil)
    }
}
