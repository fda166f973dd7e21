import CCDeckCore
import Foundation
import Testing

@Suite struct EgressPolicyTests {
    @Test func namesMatchExactlyOrUnderAWildcardAndNothingElse() {
        let p = EgressPolicy(hosts: ["api.anthropic.com", "*.Example.COM.", "127.0.0.1", "[::1]"])
        #expect(p.hosts == ["api.anthropic.com", "*.example.com", "127.0.0.1", "::1"])
        for ok in ["api.anthropic.com", "API.Anthropic.com.", "a.example.com", "x.y.example.com", "127.0.0.1", "[::1]", "::1"] {
            #expect(p.allows(ok), "\(ok)")
        }
        for no in ["anthropic.com", "evilapi.anthropic.com.evil", "example.com", "evilexample.com", "api.anthropic.com.evil.test",
                   "127.0.0.2", "2130706433", "localhost", "", "a b", "api.anthropic.com/x", "x\u{1b}[2J.example.com"] {
            #expect(!p.allows(no), "\(no.debugDescription)")
        }
    }

    @Test func aWildcardNeverCoversAnIPLiteral() {
        #expect(!EgressPolicy(hosts: ["*.0.0.1"]).allows("127.0.0.1"))
    }

    @Test func allowAllAllowsEverything() {
        #expect(EgressPolicy(hosts: [], allowAll: true).allows("anything.test"))
        #expect(!EgressPolicy(hosts: []).allows("anything.test"))
    }

    @Test func theDefaultIsClaudeCodesHostsOrTheBaseURLsHostAlone() {
        let plain = EgressPolicy.claudeCodeHosts(environment: [:])
        #expect(plain.contains("api.anthropic.com") && plain.contains("claude.ai"))
        #expect(EgressPolicy.claudeCodeHosts(environment: ["ANTHROPIC_BASE_URL": "http://127.0.0.1:8080/v1"]) == ["127.0.0.1"])
        #expect(EgressPolicy.claudeCodeHosts(environment: ["ANTHROPIC_BASE_URL": "https://gw.corp.example:443"]) == ["gw.corp.example"])
        let p = EgressPolicy.standard(environment: [:], extra: ["registry.npmjs.org", "api.anthropic.com"])
        #expect(p.allows("registry.npmjs.org") && p.hosts.filter { $0 == "api.anthropic.com" }.count == 1)
    }

    @Test func patternsRefuseWhatIsNotAHost() {
        for bad in ["*", "*.", "https://example.com", "example.com:443", "example.com/path", "-x.com", ".x.com", "a b", "*.*.x.com",
                    "x\u{1b}]0;t\u{07}"] {
            #expect(EgressPolicy.pattern(bad) == nil, "\(bad.debugDescription)")
        }
    }

    @Test func theListFileTakesOneHostALineAndNamesABadLine() throws {
        let hosts = try EgressPolicy.parseList("# mine\nregistry.npmjs.org\n\n  *.github.com  # code\n", source: "/c/egress.conf")
        #expect(hosts == ["registry.npmjs.org", "*.github.com"])
        #expect(throws: EgressListError(source: "/c/egress.conf", line: 2, text: "https://x.test/")) {
            try EgressPolicy.parseList("ok.test\nhttps://x.test/\n", source: "/c/egress.conf")
        }
        let error = EgressListError(source: "/c/e\u{1b}[2J", line: 1, text: "x")
        #expect(!error.description.contains("\u{1b}"))
    }

    @Test func aRecordCountsDenialsByHostAndPort() {
        var r = EgressRecord(enforcement: .allowlist, hosts: ["a.test"])
        let t = Date()
        r.note(EgressDecision(at: t, method: "CONNECT", host: "evil.test", port: 443, allowed: false))
        r.note(EgressDecision(at: t, method: "CONNECT", host: "evil.test", port: 443, allowed: false))
        r.note(EgressDecision(at: t, method: "GET", host: "a.test", port: 80, allowed: true))
        r.note(EgressDecision(at: t, method: "GET", host: "x\u{1b}[31m.test", port: 80, allowed: false))
        #expect(r.allowedConnections == 1 && r.denied.count == 2 && r.denied[0].count == 2)
        #expect(r.deniedSummary.hasPrefix("evil.test:443 ×2, ") && !r.deniedSummary.contains("\u{1b}"))
    }
}
