import CCDeckBackends
import CCDeckCore
@testable import CCDeckTUI
import Foundation
import _CCDeckTestSupport

/// Raw output lines per run, in memory: what the store's files hold in production.
final class MemoryOutput: OutputSource {
    var lines: [String: [String]] = [:]
    func lineCount(run id: String) -> Int { lines[id]?.count ?? 0 }
    func line(run id: String, at index: Int) -> String? {
        guard let l = lines[id], l.indices.contains(index) else { return nil }
        return l[index]
    }
}

enum TUIFixtures {
    static let now = Date(timeIntervalSince1970: 1_795_920_000)  // 2026-11-29 02:40:00 UTC

    static func record(_ id: String, _ mode: BackendKind, _ state: RunState, startedAgo: TimeInterval, wall: TimeInterval?,
                       turns: Int? = nil, cost: Double? = nil) -> RunRecord {
        var r = RunRecord(id: id, mode: mode, image: "cpm-runner:demo", sandbox: "ccdeck-\(id)", workspace: "/ws/\(id)",
                          workspaceIsTemporary: true, prompt: "p", keep: false, createdAt: now.addingTimeInterval(-startedAgo),
                          driverPID: 1, host: "h", tokenSource: nil)
        r.state = state
        r.endedAt = wall.map { r.createdAt.addingTimeInterval($0) }
        r.turns = turns
        r.costUSD = cost
        return r
    }

    static let token = Token(value: "sk-ant-oat01-" + String(repeating: "Q", count: 80) + "WXYZ", kind: .oauthAccessToken,
                             source: .credentialsFile(path: "/home/dev/.claude/.credentials.json"),
                             expiresAt: now.addingTimeInterval(5 * 3600 + 12 * 60 + 30), scopes: ["user:inference"],
                             subscriptionType: "max")

    static var recording: [String] {
        TestPaths.fixture("stream-write_and_bash.jsonl").split(separator: "\n").map(String.init)
    }

    /// A dashboard with a live run, finished runs, every backend state, a token and orphans.
    static func dashboard(width: Int, height: Int, output: MemoryOutput = MemoryOutput(), readonly: Bool = false,
                          cwd: String = "/", home: String = "/root", ringBell: Bool = true) -> Dashboard {
        var state = DashboardState(width: width, height: height, now: now, readonly: readonly)
        state.ringBell = ringBell
        state.calendar = Calendar(identifier: .iso8601)
        state.calendar.timeZone = TimeZone(identifier: "UTC")!
        let d = Dashboard(state: state, actions: ActionTable(readonly: readonly), output: output,
                          checkWorkspace: { WorkspaceCheck.resolve($0, cwd: cwd, home: home) })
        let live = record("20261129-023900-00aa", .docker, .running, startedAgo: 65, wall: nil)
        var done = record("20261129-020000-00bb", .podman, .succeeded, startedAgo: 2400, wall: 4.2, turns: 3, cost: 0.075)
        done.toolErrors = 2  // "succeeded", but two tool calls failed: the Runs pane says so
        done.isolation = .sharedKernel
        done.credentials = CredentialRecord(delivery: .environmentByName, exposure: .shortLivedAccessToken)
        done.agentUser = "uid 1000 (the image's agent user)"
        let failed = record("20261129-013000-00cc", .docker, .failed, startedAgo: 4200, wall: 1.2, turns: 1, cost: 0)
        output.lines[done.id] = recording
        output.lines[live.id] = Array(recording.prefix(3))
        d.handle(.runsLoaded([RunEntry(record: done), RunEntry(record: failed)]))
        d.handle(.runStarted(live))
        for line in recording.prefix(3) { d.handle(.runEvent(id: live.id, StreamEventParser().parse(line))) }
        d.handle(.backends([
            BackendStatus(kind: .docker, state: .ready, clientVersion: "28.2.2", serverVersion: "20.10.24"),
            BackendStatus(kind: .podman, state: .ready, clientVersion: "4.3.1", serverVersion: "4.3.1"),
            BackendStatus(kind: .sandbox, state: .notInstalled, detail: "docker sandbox: not installed; sbx: not installed"),
            BackendStatus(kind: .fly, state: .daemonDown, clientVersion: "0.3.45", detail: "not logged in"),
            BackendStatus(kind: .incus, state: .notResponding, detail: "no answer within 3s (daemon hung?)"),
            BackendStatus(kind: .local, state: .notInstalled, detail: "bwrap not found (apt-get install bubblewrap; Linux only)"),
        ]))
        d.handle(.token(.resolved(token)))
        d.handle(.orphans([
            Orphan(id: "abc123", name: "ccdeck-20261128-220000-0dd0", backend: .docker, runID: "20261128-220000-0dd0",
                   state: "exited", createdAt: now.addingTimeInterval(-5 * 3600)),
            Orphan(id: "def456", name: "ccdeck-20261129-011500-0ee0", backend: .podman, runID: "20261129-011500-0ee0",
                   state: "running", createdAt: now.addingTimeInterval(-85 * 60)),
        ]))
        return d
    }
}
