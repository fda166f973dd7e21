import CCDeckBackends
import Foundation
import Testing
import _CCDeckTestSupport

/// Golden tests of the command line, in the style of swift-argument-parser's
/// `AssertExecuteCommand(command:expected:)`: the real `ccdeck` executable runs, and its whole
/// output (stdout, stderr, exit status) is compared with the text written below.
///
/// They need no engine: backends are stand-in shell scripts on a private PATH, runs are records
/// written here, tokens are fake. So they always run (no CCDECK_E2E gate). Every invocation
/// gets a complete, private environment (nothing of the host's DOCKER_HOST, token or config
/// leaks in) and a private working directory (`./.env` is a token source).
@Suite struct CLIGoldenTests {
    let tmp = TemporaryDirectory("ccdeck-golden")
    /// The temporary folder with symlinks resolved: what ccdeck prints for paths under it.
    let root: String

    init() throws {
        root = URL(fileURLWithPath: tmp.path).resolvingSymlinksInPath().path
        for dir in [bin, home, cwd, home + "/config"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
    }

    /// Stand-in executables, and nothing else: no real docker, sbx, fly or incus is ever found.
    var bin: String { root + "/bin" }
    var home: String { root + "/home" }
    var state: String { home + "/state" }
    /// The working directory ccdeck runs in (empty: no `./.env`).
    var cwd: String { root + "/cwd" }

    /// The complete environment of one invocation; `extra` adds (or replaces) variables.
    func env(_ extra: [String: String] = [:]) -> [String: String] {
        let base = ["PATH": bin, "HOME": home, "XDG_STATE_HOME": state, "XDG_CONFIG_HOME": home + "/config",
                    "TZ": "UTC", "LANG": "C.UTF-8"]
        return base.merging(extra) { $1 }
    }

    // MARK: helpers

    /// Runs `ccdeck ARGS` in `cwd` with exactly `env`.
    func invoke(_ args: [String], env: [String: String]) throws -> CCDeckInvocation {
        // ProcessRunner has no working-directory option: a shell changes to it, then becomes ccdeck.
        let command = Command("/bin/sh", ["-c", #"cd "$1" && shift && exec "$@""#, "sh", cwd, TestPaths.ccdeckBinary] + args,
                              environment: env)
        let out = try ProcessRunner.run(command, timeout: 60)
        return CCDeckInvocation(status: out.status, stdout: out.stdout, stderr: out.stderr)
    }

    /// Runs `ccdeck ARGS` and expects exactly this stdout, stderr and exit status. Expected texts
    /// are written without their final newline (one is added to each non-empty one).
    /// `stderrFirstLine`: compare only the first line of stderr (ArgumentParser prints usage after it).
    /// `normalize` is applied to the actual stdout and stderr first (for durations that move with the clock).
    @discardableResult
    func expectOutput(_ args: [String], env: [String: String], stdout: String, stderr: String = "", status: Int32 = 0,
                      stderrFirstLine: Bool = false, normalize: (String) -> String = { $0 },
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> CCDeckInvocation {
        let result = try invoke(args, env: env)
        let command = "ccdeck " + args.joined(separator: " ")
        let wantOut = stdout.isEmpty ? "" : stdout + "\n"
        let wantErr = stderr.isEmpty ? "" : stderr + "\n"
        let gotOut = normalize(result.stdout)
        var gotErr = normalize(result.stderr)
        if stderrFirstLine, let newline = gotErr.firstIndex(of: "\n") { gotErr = String(gotErr[...newline]) }
        #expect(result.status == .exited(status),
                "\(command): exit status \(result.status), expected \(status)\nstdout:\n\(result.stdout)\nstderr:\n\(result.stderr)",
                sourceLocation: sourceLocation)
        if gotOut != wantOut {
            Issue.record(Comment(rawValue: "\(command): stdout differs (- expected, + actual):\n" + Self.diff(wantOut, gotOut)),
                         sourceLocation: sourceLocation)
        }
        if gotErr != wantErr {
            Issue.record(Comment(rawValue: "\(command): stderr differs (- expected, + actual):\n" + Self.diff(wantErr, gotErr)),
                         sourceLocation: sourceLocation)
        }
        return result
    }

    /// A line diff (longest common subsequence): `  ` same, `- ` expected only, `+ ` actual only.
    /// Lines end in `⏎` so that trailing spaces and a missing final newline show.
    static func diff(_ expected: String, _ actual: String) -> String {
        func lines(_ s: String) -> [String] {
            var parts = s.components(separatedBy: "\n")
            if parts.last == "" { parts.removeLast() } else if !parts.isEmpty { parts[parts.count - 1] += " (no final newline)" }
            return parts
        }
        let a = lines(expected), b = lines(actual)
        var lcs = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        var out: [String] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                out.append("  " + a[i] + "⏎"); i += 1; j += 1
            } else if i < a.count, j == b.count || lcs[i + 1][j] >= lcs[i][j + 1] {
                out.append("- " + a[i] + "⏎"); i += 1
            } else {
                out.append("+ " + b[j] + "⏎"); j += 1
            }
        }
        return out.joined(separator: "\n")
    }

    /// Parses JSON text into Foundation objects (for comparisons independent of formatting).
    static func parseJSON(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    /// Canonical text of a JSON value: sorted keys, pretty, so two values compare (and diff) as text.
    static func canonicalJSON(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys,
                                                                                        .fragmentsAllowed]),
               as: UTF8.self)
    }

    /// Runs `ccdeck ARGS` and expects its stdout to be JSON equal to `expected` (formatting aside).
    func expectJSON(_ args: [String], env: [String: String], _ expected: String, status: Int32 = 0,
                    sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try invoke(args, env: env)
        #expect(result.status == .exited(status), "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr == "", sourceLocation: sourceLocation)
        let want = try Self.canonicalJSON(Self.parseJSON(expected))
        let got = try Self.canonicalJSON(Self.parseJSON(result.stdout))
        if got != want {
            Issue.record(Comment(rawValue: "ccdeck \(args.joined(separator: " ")): JSON differs (- expected, + actual):\n"
                                 + Self.diff(want + "\n", got + "\n")), sourceLocation: sourceLocation)
        }
    }

    /// Durations that move with the clock (`26695d 17h`) read `<d>d <h>h`.
    static func fixDurations(_ text: String) -> String {
        text.replacingOccurrences(of: #"\b[0-9]+d [0-9]+h\b"#, with: "<d>d <h>h", options: .regularExpression)
    }

    // MARK: backends

    /// `docker` and `podman` answering `version --format …` with recorded outputs of the real
    /// clients; `docker sandbox version` answers like a Docker without the sandbox plugin.
    func installStandIns() {
        tmp.write("bin/docker", #"""
            #!/bin/sh
            if [ "$1 $2" = "version --format" ]; then
              echo '{"Client":{"Platform":{"Name":""},"Version":"28.2.2","ApiVersion":"1.50","Os":"linux"},"Server":{"Platform":{"Name":""},"Components":[],"Version":"26.1.5+dfsg1","ApiVersion":"1.45"}}'
              exit 0
            fi
            if [ "$1 $2" = "sandbox version" ]; then
              echo "docker: 'sandbox' is not a docker command." >&2
              echo "See 'docker --help'" >&2
              exit 1
            fi
            echo "stand-in docker: unexpected arguments: $*" >&2
            exit 1

            """#, mode: 0o755)
        tmp.write("bin/podman", #"""
            #!/bin/sh
            if [ "$1 $2" = "version --format" ]; then
              echo '{"Client":{"APIVersion":"4.3.1","Version":"4.3.1","GoVersion":"go1.19.8","GitCommit":"","BuiltTime":"Thu Jan  1 00:00:00 1970","Built":0,"OsArch":"linux/amd64","Os":"linux"}}'
              exit 0
            fi
            echo "stand-in podman: unexpected arguments: $*" >&2
            exit 1

            """#, mode: 0o755)
    }

    static let backendsTable = """
        BACKEND  MODE  STATE          VERSION       DETAIL
        docker   A     ready          26.1.5+dfsg1  gVisor: runsc is not installed (apt-get install runsc)
        podman   A     ready          4.3.1         gVisor: runsc is not installed (apt-get install runsc)
        sandbox  B     not installed  -             docker sandbox: the plugin is not installed (Docker Desktop 4.58+); sbx: not installed
        fly      C     not installed  -             neither fly nor flyctl found in PATH
        incus    D     not installed  -             incus not found in PATH
        local    L     not installed  -             bwrap not found (apt-get install bubblewrap; Linux only)
        """

    @Test func backendsTable() throws {
        installStandIns()
        try expectOutput(["backends"], env: env(), stdout: Self.backendsTable)
        // The same table under its alias, and twice in a row: it must not depend on probe timing.
        try expectOutput(["doctor"], env: env(), stdout: Self.backendsTable)
    }

    @Test func backendsJSON() throws {
        installStandIns()
        try expectOutput(["backends", "--json"], env: env(), stdout: """
            [
              {
                "backend" : "docker",
                "clientVersion" : "28.2.2",
                "detail" : "gVisor: runsc is not installed (apt-get install runsc)",
                "executable" : "\(bin)/docker",
                "installed" : true,
                "mode" : "A",
                "reachable" : true,
                "serverVersion" : "26.1.5+dfsg1",
                "state" : "ready"
              },
              {
                "backend" : "podman",
                "clientVersion" : "4.3.1",
                "detail" : "gVisor: runsc is not installed (apt-get install runsc)",
                "executable" : "\(bin)/podman",
                "installed" : true,
                "mode" : "A",
                "reachable" : true,
                "serverVersion" : "4.3.1",
                "state" : "ready"
              },
              {
                "backend" : "sandbox",
                "detail" : "docker sandbox: the plugin is not installed (Docker Desktop 4.58+); sbx: not installed",
                "installed" : false,
                "mode" : "B",
                "reachable" : false,
                "state" : "not-installed"
              },
              {
                "backend" : "fly",
                "detail" : "neither fly nor flyctl found in PATH",
                "installed" : false,
                "mode" : "C",
                "reachable" : false,
                "state" : "not-installed"
              },
              {
                "backend" : "incus",
                "detail" : "incus not found in PATH",
                "installed" : false,
                "mode" : "D",
                "reachable" : false,
                "state" : "not-installed"
              },
              {
                "backend" : "local",
                "detail" : "bwrap not found (apt-get install bubblewrap; Linux only)",
                "installed" : false,
                "mode" : "L",
                "reachable" : false,
                "state" : "not-installed"
              }
            ]
            """)
    }

    @Test func nothingInstalled() throws {
        try expectOutput(["backends"], env: env(), stdout: """
            BACKEND  MODE  STATE          VERSION  DETAIL
            docker   A     not installed  -        docker not found in PATH
            podman   A     not installed  -        podman not found in PATH
            sandbox  B     not installed  -        docker sandbox: not installed; sbx: not installed
            fly      C     not installed  -        neither fly nor flyctl found in PATH
            incus    D     not installed  -        incus not found in PATH
            local    L     not installed  -        bwrap not found (apt-get install bubblewrap; Linux only)
            """)
    }

    /// A bare `ccdeck` off a terminal (stdin is /dev/null, stdout a pipe): the table, then how to go on.
    @Test func bareCommandOffATerminal() throws {
        installStandIns()
        try expectOutput([], env: env(), stdout: Self.backendsTable + """


            No terminal here, so no dashboard: `ccdeck run --mode auto` runs Claude Code in the first ready engine; \
            `ccdeck --help` lists every command.
            """)
    }

    // MARK: runs

    static let succeededID = "20260301-101500-a1b2"
    static let failedID = "20260302-080000-c3d4"
    static let oldFormatID = "20250615-120000-0001"
    static let unknownModeID = "20260310-090000-ffff"

    /// Four records as ccdeck (this one, an older one, a newer one) wrote them.
    func writeRuns() {
        let runs = "state/ccdeck/runs/"
        // This ccdeck: a success whose tools failed twice, every field filled in.
        tmp.write("home/" + runs + Self.succeededID + "/record.json", """
            {
              "agentUser" : "uid 1000 (the image's agent user)",
              "costUSD" : 0.0421,
              "createdAt" : "2026-03-01T10:15:00.000Z",
              "credentials" : { "delivery" : "environment-by-name", "exposure" : "long-lived-token" },
              "driverPID" : 4242,
              "endedAt" : "2026-03-01T10:15:42.500Z",
              "exitStatus" : 0,
              "host" : "golden-host",
              "id" : "\(Self.succeededID)",
              "image" : "ccdeck-runner:latest",
              "isolation" : "shared-kernel",
              "keep" : false,
              "mode" : "docker",
              "phases" : {
                "imageReady" : "2026-03-01T10:15:00.250Z",
                "containerStarted" : "2026-03-01T10:15:01.000Z",
                "firstEvent" : "2026-03-01T10:15:03.000Z",
                "result" : "2026-03-01T10:15:42.000Z",
                "cleanupDone" : "2026-03-01T10:15:42.500Z"
              },
              "prompt" : "Write hello.txt and run the tests",
              "sandbox" : "ccdeck-\(Self.succeededID)",
              "state" : "succeeded",
              "tokenSource" : "environment variable CLAUDE_CODE_OAUTH_TOKEN",
              "toolErrors" : 2,
              "turns" : 5,
              "workspace" : "/srv/work/hello",
              "workspaceIsTemporary" : false,
              "workspaceTransport" : "mount"
            }
            """)
        // A failed run (the API refused the token).
        tmp.write("home/" + runs + Self.failedID + "/record.json", """
            {
              "costUSD" : 0,
              "createdAt" : "2026-03-02T08:00:00.000Z",
              "driverPID" : 4243,
              "endedAt" : "2026-03-02T08:00:02.250Z",
              "exitStatus" : 1,
              "host" : "golden-host",
              "id" : "\(Self.failedID)",
              "image" : "ccdeck-runner:latest",
              "keep" : false,
              "mode" : "podman",
              "phases" : {},
              "prompt" : "Fix the failing build",
              "reason" : "success (api_error): API Error: 401",
              "sandbox" : "ccdeck-\(Self.failedID)",
              "state" : "failed",
              "toolErrors" : 0,
              "turns" : 1,
              "workspace" : "/srv/work/build",
              "workspaceIsTemporary" : false
            }
            """)
        // An older ccdeck: `container` instead of `sandbox`, no phases, no tool errors; a long two-line prompt.
        tmp.write("home/" + runs + Self.oldFormatID + "/record.json", """
            {
              "container" : "ccdeck-\(Self.oldFormatID)",
              "costUSD" : 1.5,
              "createdAt" : "2025-06-15T12:00:00.000Z",
              "driverPID" : 100,
              "endedAt" : "2025-06-15T12:10:30.000Z",
              "host" : "old-host",
              "id" : "\(Self.oldFormatID)",
              "image" : "ccdeck-runner:0.0.1",
              "keep" : true,
              "mode" : "docker",
              "prompt" : "An old run\\nwith a second line and a prompt long enough to be shortened",
              "state" : "succeeded",
              "turns" : 12,
              "workspace" : "/srv/work/old",
              "workspaceIsTemporary" : true
            }
            """)
        // A newer ccdeck: a mode, an isolation and a field this one does not know.
        tmp.write("home/" + runs + Self.unknownModeID + "/record.json", """
            {
              "costUSD" : 0.01,
              "createdAt" : "2026-03-10T09:00:00.000Z",
              "driverPID" : 7,
              "endedAt" : "2026-03-10T09:00:05.000Z",
              "host" : "future-host",
              "id" : "\(Self.unknownModeID)",
              "image" : "",
              "isolation" : "quantum-entangled",
              "keep" : false,
              "mode" : "quantum-vm",
              "prompt" : "Say hello",
              "qubits" : 64,
              "sandbox" : "qvm-42",
              "sandboxID" : "q-0042",
              "state" : "succeeded",
              "turns" : 2,
              "workspace" : "/srv/work/q",
              "workspaceIsTemporary" : false
            }
            """)
        tmp.write("home/" + runs + Self.unknownModeID + "/output.jsonl", """
            {"type":"system","subtype":"init","cwd":"/workspace","session_id":"s-1","tools":["Bash","Write"],"model":"claude-test-model","apiKeySource":"none","claude_code_version":"9.9.9"}
            {"type":"assistant","message":{"content":[{"type":"text","text":"Hello from the quantum VM."}]}}
            {"type":"result","subtype":"success","is_error":false,"num_turns":2,"total_cost_usd":0.01,"result":"Said hello."}

            """)
    }

    @Test func runsListEmpty() throws {
        try expectOutput(["runs", "ls"], env: env(), stdout: """
            no runs yet in \(state)/ccdeck (start one with `ccdeck run`)
            """)
        // `runs` alone lists too.
        try expectOutput(["runs"], env: env(), stdout: """
            no runs yet in \(state)/ccdeck (start one with `ccdeck run`)
            """)
        try expectJSON(["runs", "ls", "--json"], env: env(), """
            {"runs": [], "totals": {"live": 0, "finishedToday": 0, "failedToday": 0, "costToday": 0, "costThisWeek": 0, "byBackend": {}}}
            """)
    }

    @Test func runsList() throws {
        writeRuns()
        try expectOutput(["runs", "ls"], env: env(), stdout: """
            ID                    MODE                       ISOLATION      STATE      CREATED                  WALL     TURNS  TOOL ERRORS  COST     PROMPT
            20260310-090000-ffff  quantum vm (unknown mode)  -              succeeded  2026-03-10 09:00:00 UTC  5.00s    2      -            $0.0100  Say hello
            20260302-080000-c3d4  podman                     -              failed     2026-03-02 08:00:00 UTC  2.25s    1      0            $0.0000  Fix the failing build
            20260301-101500-a1b2  docker                     shared kernel  succeeded  2026-03-01 10:15:00 UTC  42.5s    5      2            $0.0421  Write hello.txt and run the tests
            20250615-120000-0001  docker                     -              succeeded  2025-06-15 12:00:00 UTC  10m 30s  12     -            $1.5000  An old run with a second line and a pro…

            0 live · today 0 finished, 0 failed, $0.00 · this week $0.00
            """)
        let recent = try invoke(["runs", "ls", "--since", "1d"], env: env())
        #expect(recent.stdout == "no runs started within 1d\n", "\(recent.stdout)")
    }

    @Test func runsListJSON() throws {
        writeRuns()
        let result = try invoke(["runs", "ls", "--json"], env: env())
        #expect(result.status == .exited(0))
        #expect(result.stderr == "")
        let listing = try #require(try Self.parseJSON(result.stdout) as? [String: Any], "\(result.stdout)")
        let totals = try #require(listing["totals"] as? [String: Any])
        #expect(totals["live"] as? Int == 0 && totals["byBackend"] is [String: Any], "\(totals)")
        let records = try #require(listing["runs"] as? [[String: Any]], "\(result.stdout)")
        #expect(records.compactMap { $0["id"] as? String }
                == [Self.unknownModeID, Self.failedID, Self.succeededID, Self.oldFormatID])
        let byID = Dictionary(uniqueKeysWithValues: records.compactMap { r in (r["id"] as? String).map { ($0, r) } })
        // The unknown mode is kept as written, the old `container` reads as `sandbox`.
        #expect(byID[Self.unknownModeID]?["mode"] as? String == "quantum-vm")
        #expect(byID[Self.oldFormatID]?["sandbox"] as? String == "ccdeck-\(Self.oldFormatID)")
        #expect(byID[Self.oldFormatID]?["container"] == nil)
        #expect(byID[Self.succeededID]?["toolErrors"] as? Int == 2)
        #expect(byID[Self.failedID]?["state"] as? String == "failed")
    }

    @Test func runsShowUnknownMode() throws {
        writeRuns()
        try expectOutput(["runs", "show", Self.unknownModeID], env: env(), stdout: """
            id:           20260310-090000-ffff
            mode:         quantum vm (unknown mode)
            state:        succeeded
            created:      2026-03-10 09:00:00 UTC
            sandbox:      qvm-42 (q-0042)
            workspace:    /srv/work/q
            token:        -
            output:       \(state)/ccdeck/runs/20260310-090000-ffff/output.jsonl
            prompt:       Say hello

            session started, model claude-test-model, Claude Code 9.9.9, in /workspace
            Hello from the quantum VM.
            ✓ success: Said hello.

            ✓ run 20260310-090000-ffff succeeded in 5.00s: 2 turns, $0.0100
            """)
    }

    @Test func runsShowEveryField() throws {
        writeRuns()
        try expectOutput(["runs", "show", "20260301"], env: env(), stdout: """
            id:           20260301-101500-a1b2
            mode:         docker
            state:        succeeded
            created:      2026-03-01 10:15:00 UTC
            image:        ccdeck-runner:latest
            container:    ccdeck-20260301-101500-a1b2
            isolation:    shared kernel
            workspace:    /srv/work/hello (mounted)
            agent user:   uid 1000 (the image's agent user)
            token:        environment variable CLAUDE_CODE_OAUTH_TOKEN
            sandbox held: a long-lived token (environment variable, passed by name)
            tool errors:  2
            output:       \(state)/ccdeck/runs/20260301-101500-a1b2/output.jsonl
            prompt:       Write hello.txt and run the tests


            ✓ run 20260301-101500-a1b2 succeeded in 42.5s: 5 turns, $0.0421, 2 tool errors
              phases: image ready +0.25s, container started +1.00s, first agent event +3.00s, result +42.0s, cleanup +42.5s
            """)
    }

    @Test func runsShowOldFormatAndFailed() throws {
        writeRuns()
        try expectOutput(["runs", "show", Self.oldFormatID], env: env(), stdout: """
            id:           20250615-120000-0001
            mode:         docker
            state:        succeeded
            created:      2025-06-15 12:00:00 UTC
            image:        ccdeck-runner:0.0.1
            container:    ccdeck-20250615-120000-0001 (kept)
            workspace:    /srv/work/old
            token:        -
            output:       \(state)/ccdeck/runs/20250615-120000-0001/output.jsonl
            prompt:       An old run with a second line and a prompt long enough to be shortened


            ✓ run 20250615-120000-0001 succeeded in 10m 30s: 12 turns, $1.5000
            """)
        try expectOutput(["runs", "show", Self.failedID], env: env(), stdout: """
            id:           20260302-080000-c3d4
            mode:         podman
            state:        failed
            created:      2026-03-02 08:00:00 UTC
            image:        ccdeck-runner:latest
            container:    ccdeck-20260302-080000-c3d4
            workspace:    /srv/work/build
            token:        -
            output:       \(state)/ccdeck/runs/20260302-080000-c3d4/output.jsonl
            prompt:       Fix the failing build


            ✗ run 20260302-080000-c3d4 failed in 2.25s: 1 turn, $0.0000
              reason: success (api_error): API Error: 401
            """)
    }

    // MARK: token

    /// Looks like a setup token, is obviously fake, and is built from pieces.
    static let fakeToken = "sk-ant-oat01-" + String(repeating: "A", count: 60) + "WXYZ"
    static let secretPart = String(repeating: "A", count: 20)

    /// A credentials file as `claude` writes it; `expiresAt` in epoch milliseconds.
    func writeCredentials(expiresAt: Int64, scopes: [String], refresh: Bool = true, plan: String? = "max") {
        let scopeList = scopes.map { "\"\($0)\"" }.joined(separator: ",")
        let refreshField = refresh ? #""refreshToken":"sk-ant-ort01-\#(String(repeating: "B", count: 40))","# : ""
        let planField = plan.map { #","subscriptionType":"\#($0)""# } ?? ""
        tmp.write("home/.claude/.credentials.json", #"""
            {"claudeAiOauth":{"accessToken":"\#(Self.fakeToken)",\#(refreshField)"expiresAt":\#(expiresAt),"scopes":[\#(scopeList)]\#(planField)}}
            """#, mode: 0o600)
    }

    static let year2100: Int64 = 4_102_444_800_000
    static let year2020: Int64 = 1_577_836_800_000

    func expectNoSecret(_ result: CCDeckInvocation, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!result.output.contains(Self.secretPart), "the token was printed", sourceLocation: sourceLocation)
    }

    @Test func tokenFromEnvironment() throws {
        let expected = """
            source:  environment variable CLAUDE_CODE_OAUTH_TOKEN
            kind:    long-lived setup token (guessed from its prefix)
            token:   sk-ant-oat01…WXYZ
            expires: unknown (a token outside the credentials file carries no expiry)
            """
        expectNoSecret(try expectOutput(["token", "show"], env: env(["CLAUDE_CODE_OAUTH_TOKEN": Self.fakeToken]), stdout: expected))
        // `token` alone shows too.
        expectNoSecret(try expectOutput(["token"], env: env(["CLAUDE_CODE_OAUTH_TOKEN": Self.fakeToken]), stdout: expected))
    }

    @Test func tokenFromEnvironmentJSON() throws {
        try expectJSON(["token", "show", "--json"], env: env(["CLAUDE_CODE_OAUTH_TOKEN": Self.fakeToken]), """
            {
              "kind" : "setup-token",
              "redacted" : "sk-ant-oat01…WXYZ",
              "source" : "environment variable CLAUDE_CODE_OAUTH_TOKEN",
              "urgency" : "unknown",
              "variable" : "CLAUDE_CODE_OAUTH_TOKEN",
              "warnings" : []
            }
            """)
    }

    @Test func tokenFromCredentialsFile() throws {
        writeCredentials(expiresAt: Self.year2100, scopes: ["user:inference", "user:profile"])
        let result = try expectOutput(["token", "show"], env: env(), stdout: """
            source:  credentials file \(home)/.claude/.credentials.json
            kind:    OAuth access token
            token:   sk-ant-oat01…WXYZ
            expires: 2100-01-01 00:00:00 UTC (in <d>d <h>h)
            plan:    max
            scopes:  user:inference, user:profile
            """, normalize: Self.fixDurations)
        expectNoSecret(result)
        // The same token from the environment: the file tells its kind and expiry.
        try expectOutput(["token", "show"], env: env(["CLAUDE_CODE_OAUTH_TOKEN": Self.fakeToken]), stdout: """
            source:  environment variable CLAUDE_CODE_OAUTH_TOKEN
            kind:    OAuth access token
            token:   sk-ant-oat01…WXYZ
            expires: 2100-01-01 00:00:00 UTC (in <d>d <h>h)
            plan:    max
            scopes:  user:inference, user:profile
            """, normalize: Self.fixDurations)
    }

    @Test func tokenWithoutInferenceScopeFails() throws {
        writeCredentials(expiresAt: Self.year2100, scopes: ["user:profile"], refresh: false, plan: nil)
        try expectOutput(["token", "show"], env: env(), stdout: """
            source:  credentials file \(home)/.claude/.credentials.json
            kind:    OAuth access token
            token:   sk-ant-oat01…WXYZ
            expires: 2100-01-01 00:00:00 UTC (in <d>d <h>h)
            scopes:  user:profile
            """, stderr: """
            ccdeck: warning: token lacks the user:inference scope: Claude Code will refuse it
            """, status: 1, normalize: Self.fixDurations)
    }

    @Test func expiredTokenFails() throws {
        writeCredentials(expiresAt: Self.year2020, scopes: ["user:inference"], plan: nil)
        try expectOutput(["token", "show"], env: env(), stdout: """
            source:  credentials file \(home)/.claude/.credentials.json
            kind:    OAuth access token
            token:   sk-ant-oat01…WXYZ
            expires: 2020-01-01 00:00:00 UTC (<d>d <h>h ago)
            scopes:  user:inference
            """, stderr: """
            ccdeck: warning: token expired <d>d <h>h ago: run `claude` and log in again, \
            or create a long-lived token with `claude setup-token`
            """, status: 1, normalize: Self.fixDurations)
    }

    @Test func noToken() throws {
        try expectOutput(["token", "show"], env: env(), stdout: "", stderr: """
            ccdeck: error: no Claude Code token found (looked in: $CLAUDE_CODE_OAUTH_TOKEN, \(cwd)/.env, \
            \(home)/.claude/.credentials.json); set CLAUDE_CODE_OAUTH_TOKEN, put it in ./.env, or log in with `claude`
            """, status: 2)
    }

    // MARK: errors

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var args: [String]
        var message: String
        /// ArgumentParser prints usage after its message: only the first line is compared.
        var usageFollows = false
        var testDescription: String { "ccdeck " + args.joined(separator: " ") }
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(args: ["run", "--mode", "nope"],
                  message: "ccdeck: error: mode nope is not known to this ccdeck (known: docker, podman, sandbox, fly, incus, local)"),
        ErrorCase(args: ["run", "--prompt", " "], message: "Error: --prompt is empty", usageFollows: true),
        ErrorCase(args: ["run", "--pass-env", "A=b"],
                  message: "Error: --pass-env takes a variable name, not NAME=value: the value would appear in argv",
                  usageFollows: true),
        ErrorCase(args: ["run", "--workspace", "/no/such/dir"], message: "ccdeck: error: --workspace /no/such/dir: no such folder"),
        ErrorCase(args: ["runs", "show", "no-such-run"], message: "ccdeck: error: no run with id no-such-run (see `ccdeck runs ls`)"),
        ErrorCase(args: ["frobnicate"], message: "Error: Unexpected argument 'frobnicate'", usageFollows: true),
        ErrorCase(args: ["image", "build", "--runtime", "sandbox"],
                  message: "ccdeck: error: sandbox does not build images (use one of: docker, podman, incus)"),
    ]

    @Test(arguments: errorCases)
    func errorMessage(_ c: ErrorCase) throws {
        let result = try expectOutput(c.args, env: env(), stdout: "", stderr: c.message, status: 2, stderrFirstLine: c.usageFollows)
        if c.usageFollows {
            #expect(result.stderr.split(separator: "\n").dropFirst().first?.hasPrefix("Usage: ccdeck") == true, "\(result.stderr)")
        }
        // One message and usage at most: never a crash report.
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack dump"), "\(result.stderr)")
    }
}
