import CCDeckCore
import Foundation
import Testing

@Suite struct InertTextTests {
    @Test func escapeSequencesBecomeVisibleText() {
        let hostile = "a\u{1B}]0;pwned\u{07}b\u{1B}[2Jc\u{1B}]52;c;Zm9v\u{07}d\u{1B}[10;10He\rf\u{9B}31mg\u{7F}"
        let line = InertText.line(hostile)
        #expect(InertText.isInert(line))
        #expect(line == "a␛]0;pwned␇b␛[2Jc␛]52;c;Zm9v␇d␛[10;10He␍f\u{FFFD}31mg␡")
    }

    @Test func linesAreInertAllowsNewlinesOnly() {
        #expect(InertText.linesAreInert("one\ntwo 日本語\n"))
        #expect(!InertText.linesAreInert("one\r\ntwo"))
        #expect(!InertText.linesAreInert("a\u{1B}[2Jb\nc"))
        #expect(!InertText.linesAreInert("a\u{9B}31m"))
        #expect(!InertText.linesAreInert("tab\there"))
    }

    @Test func tabsExpand() {
        #expect(InertText.line("a\tb", tabWidth: 4) == "a   b")
        #expect(InertText.line("\tx", tabWidth: 4) == "    x")
    }

    @Test func linesSplitOnNewlinesAndDropCR() {
        #expect(InertText.lines("one\r\ntwo\nthree\n") == ["one", "two", "three"])
        #expect(InertText.lines("") == [""])
    }

    @Test func wideAndCombiningCharactersPassUnchanged() {
        let s = "日本語 😀 e\u{301}"
        #expect(InertText.line(s) == s)
    }

    @Test func jsonLinesEscapeC1Only() {
        let raw = Array("{\"t\":\"a\u{85}b\"}".utf8)
        #expect(InertText.jsonLine(raw) == "{\"t\":\"a\\u0085b\"}")
        #expect(InertText.jsonLine(Array("{\"ok\":1}".utf8)) == "{\"ok\":1}")
    }
}

@Suite struct SecretRedactorTests {
    let secret = "sk-ant-oat01-CANARYCANARYCANARYCANARYCANARY0000"

    @Test func replacesEveryOccurrence() {
        let r = SecretRedactor(secret: secret)
        let text = "env: CLAUDE_CODE_OAUTH_TOKEN=\(secret) and again \(secret)!"
        let out = r.redact(text)
        #expect(!out.contains("CANARY"))
        #expect(out == "env: CLAUDE_CODE_OAUTH_TOKEN=\(Token.redact(secret)) and again \(Token.redact(secret))!")
        #expect(!String(decoding: r.redact(Data(text.utf8)), as: UTF8.self).contains("CANARY"))
    }

    @Test func leavesOtherTextAlone() {
        let r = SecretRedactor(secret: secret)
        #expect(r.redact("nothing here sk-ant-oat01-") == "nothing here sk-ant-oat01-")
        #expect(SecretRedactor(secret: "ab").redact("abab") == "abab")
    }
}

@Suite struct EventRendererTests {
    let renderer = EventRenderer(maxToolResultLines: 2, maxLineLength: 50)

    @Test func toolCallsShowTheirMainArgument() {
        let lines = renderer.render(.assistant([
            .text("I'll write it."),
            .toolUse(id: "1", name: "Write", input: .object(["file_path": .string("/workspace/hello.mjs")])),
            .toolUse(id: "2", name: "Bash", input: .object(["command": .string("node hello.mjs\necho 2")])),
            .toolUse(id: "3", name: "mcp__x__y", input: .object(["url": .string("https://e.x")])),
        ]))
        #expect(lines.map(\.text) == ["I'll write it.", "→ Write /workspace/hello.mjs", "→ Bash node hello.mjs …",
                                      "→ mcp__x__y https://e.x"])
        #expect(lines.map(\.kind) == [.text, .toolCall, .toolCall, .toolCall])
    }

    @Test func toolResultsAreCutAndErrorsMarked() {
        let lines = renderer.render(.toolResults([
            .init(toolUseID: "1", content: "a\nb\nc\nd", isError: false),
            .init(toolUseID: "2", content: "No such file\nmore", isError: true),
        ]))
        #expect(lines.map { $0.text } == ["  a", "  b", "  … 2 more lines", "✗ tool error: No such file"])
    }

    @Test func overlongLinesAreCutWithAMark() {
        let line = renderer.render(.assistant([.text(String(repeating: "x", count: 90_000))]))
        #expect(line.count == 1)
        #expect(line[0].text.hasSuffix(" …[cut]"))
        #expect(line[0].text.count == 50 + 7)
    }

    @Test func resultLine() {
        let ok = renderer.render(.result(ResultEvent(subtype: "success", isError: false, result: "All done.\nmore")))
        #expect(ok == [RenderedLine(kind: .result, text: "✓ success: All done.")])
        let bad = renderer.render(.result(ResultEvent(subtype: "success", isError: true, result: "API Error: 401",
                                                      terminalReason: "api_error")))
        #expect(bad == [RenderedLine(kind: .resultError, text: "✗ api_error: API Error: 401")])
    }

    @Test func hostileTextStaysInert() {
        let lines = renderer.render(.assistant([.text("x\u{1B}]0;t\u{07}\u{1B}[2J")])) +
            renderer.render(.toolResults([.init(toolUseID: "1", content: "\u{1B}[31mred", isError: false)])) +
            renderer.render(.assistant([.toolUse(id: "1", name: "Bash", input: .object(["command": .string("printf '\u{1B}c'")]))]))
        #expect(lines.allSatisfy { InertText.isInert($0.text) })
    }

    @Test func quietEvents() {
        #expect(renderer.render(.unknown(type: "rate_limit_event")).isEmpty)
        #expect(renderer.render(.system(subtype: "status")).isEmpty)
        #expect(renderer.render(.invalid("not JSON")) == [RenderedLine(kind: .invalid, text: "(unreadable output line: not JSON)")])
    }
}
