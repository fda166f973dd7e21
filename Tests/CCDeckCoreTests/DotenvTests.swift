import CCDeckCore
import Testing

@Suite struct DotenvTests {
    @Test func singleQuotesAreLiteral() throws {
        let env = try Dotenv.parse("A='$HOME \\n # x'\nB=\"tab\\tend\"")
        #expect(env["A"] == "$HOME \\n # x")
        #expect(env["B"] == "tab\tend")
    }

    @Test func valuesAndOrder() throws {
        let env = try Dotenv.parse("""
            # a comment
            export TOKEN=sk-ant-oat01-abc   # trailing comment

            PLAIN = value with spaces
            DOUBLE="line1\\nline2 \\"quoted\\" # kept"
            EMPTY=
            HASH=a#b
            MULTI="first
            second"
            \texport\tTABBED=yes
            CRLF=value\r
            TOKEN=later-wins
            """)
        #expect(env["TOKEN"] == "later-wins")
        #expect(env["PLAIN"] == "value with spaces")
        #expect(env["DOUBLE"] == "line1\nline2 \"quoted\" # kept")
        #expect(env["EMPTY"] == "")
        #expect(env["HASH"] == "a#b")
        #expect(env["MULTI"] == "first\nsecond")
        #expect(env["TABBED"] == "yes")
        #expect(env["CRLF"] == "value")
        #expect(env.keys == ["TOKEN", "PLAIN", "DOUBLE", "EMPTY", "HASH", "MULTI", "TABBED", "CRLF"])
    }

    @Test(arguments: [
        ("JUST_A_WORD", 1, "expected KEY=value"),
        ("OK=1\n=value", 2, "missing variable name before '='"),
        ("1BAD=x", 1, "invalid variable name"),
        ("BAD-NAME=x", 1, "invalid variable name"),
        ("A='unterminated", 1, "unterminated single quote"),
        ("A=\"unterminated\nB=2", 1, "unterminated double quote"),
        ("A=\"x\" trailing", 1, "unexpected text after closing quote"),
    ])
    func malformedLinesNameTheLineButNotItsContent(text: String, line: Int, problem: String) {
        do {
            _ = try Dotenv.parse(text)
            Issue.record("expected an error")
        } catch {
            #expect(error == Dotenv.ParseError(line: line, problem: problem))
            #expect(!error.description.contains("unterminated\"") && !error.description.contains("trailing"))
        }
    }

    @Test func secretNeverAppearsInErrors() {
        do {
            _ = try Dotenv.parse("CLAUDE_CODE_OAUTH_TOKEN='sk-ant-oat01-SECRETSECRET")
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("SECRET"))
        }
    }
}
