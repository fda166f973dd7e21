import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// A backend whose "container" is `sh` replaying a recorded stream: the driver's logic
/// (record, output on disk, redaction, verdict, cleanup) without an engine.
struct ReplayBackend: SandboxBackend {
    let kind = BackendKind.docker
    let script: String
    let removed = Counter()

    final class Counter: @unchecked Sendable {
        var value = 0
    }

    func probe(timeout: TimeInterval) -> BackendStatus { BackendStatus(kind: kind, state: .ready) }
    func ensureImage(_ image: String, buildIfMissing: ImageBuild?, progress: (String) -> Void) throws -> Bool { false }
    func start(_ spec: RunSpec) throws -> ChildProcess {
        try ChildProcess.spawn(Command("sh", ["-c", script], environment: spec.environment))
    }
    func stop(_ spec: RunSpec) {}
    func finalState(_ spec: RunSpec) -> EngineOutput.ContainerState? { nil }
    func remove(_ spec: RunSpec) throws { removed.value += 1 }
}

@Suite struct RunDriverTests {
    let state = TemporaryDirectory("ccdeck-state")
    let secret = "sk-ant-oat01-" + "CANARY-DRIVER-0123456789" + "abcdefghijklmnopqrstuvwxyz"

    func drive(_ script: String, keep: Bool = false) throws -> (RunRecord, RunStore, ReplayBackend, [RunDriver.Update]) {
        let store = RunStore(root: state.path)
        let backend = ReplayBackend(script: script)
        let token = Token(value: secret, kind: .setupToken, source: .environment(variable: "CLAUDE_CODE_OAUTH_TOKEN"))
        var updates: [RunDriver.Update] = []
        let driver = RunDriver(backend: backend, store: store, token: token, environment: ["PATH": "/usr/bin:/bin"]) {
            updates.append($0)
        }
        let record = try driver.run(RunRequest(prompt: "p", keep: keep))
        return (record, store, backend, updates)
    }

    @Test func replayedSuccessIsRecordedWithFullOutput() throws {
        let fixture = TestPaths.fixtures + "/stream-write_and_bash.jsonl"
        let (record, store, backend, updates) = try drive("cat '\(fixture)'")
        #expect(record.state == .succeeded)
        #expect(record.turns == 3)
        #expect(record.costUSD != nil)
        #expect(record.phases.firstEvent != nil && record.phases.result != nil && record.phases.cleanupDone != nil)
        #expect(backend.removed.value == 1)
        let stored = try String(contentsOfFile: store.outputPath(for: record.id), encoding: .utf8)
        #expect(stored == (try String(contentsOfFile: fixture, encoding: .utf8)))
        let loaded = try store.load(record.id)
        #expect(loaded.id == record.id && loaded.state == .succeeded && loaded.turns == 3 && loaded.costUSD == record.costUSD)
        #expect(abs(loaded.createdAt.timeIntervalSince(record.createdAt)) < 0.001)
        #expect(updates.contains { if case .created = $0 { return true } else { return false } })
        #expect(updates.contains { if case .started = $0 { return true } else { return false } })
        // The fresh workspace holds the minimal package.json.
        #expect(FileManager.default.fileExists(atPath: record.workspace + "/package.json"))
        #expect(record.workspace == store.workspacePath(for: record.id))
    }

    @Test func keepLeavesTheSandbox() throws {
        let (record, _, backend, _) = try drive(#"echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1}'"#, keep: true)
        #expect(record.state == .succeeded && record.keep)
        #expect(backend.removed.value == 0)
    }

    @Test func noResultIsAFailureWithTheLastStderrLine() throws {
        let (record, store, _, _) = try drive("echo 'not json'; echo 'boom: model unreachable' >&2; exit 0")
        #expect(record.state == .failed)
        #expect(record.reason == "no result event (agent exited with status 0): boom: model unreachable")
        #expect(try String(contentsOfFile: store.stderrPath(for: record.id), encoding: .utf8) == "boom: model unreachable\n")
    }

    @Test func aTokenInTheAgentsOutputNeverReachesDiskOrUpdates() throws {
        let script = #"""
            echo "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"1\",\"content\":\"CLAUDE_CODE_OAUTH_TOKEN=$CLAUDE_CODE_OAUTH_TOKEN\"}]}}"
            echo "leaked $CLAUDE_CODE_OAUTH_TOKEN" >&2
            echo '{"type":"result","subtype":"success","is_error":true,"result":"bad"}'
            """#
        let (record, store, _, updates) = try drive(script)
        #expect(record.state == .failed)
        for path in [store.outputPath(for: record.id), store.stderrPath(for: record.id), store.recordPath(for: record.id)] {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(!text.contains("CANARY"), "token found in \(path)")
        }
        #expect(try String(contentsOfFile: store.outputPath(for: record.id), encoding: .utf8).contains(Token.redact(secret)))
        for update in updates {
            switch update {
            case .event(_, let raw): #expect(!String(decoding: raw, as: UTF8.self).contains("CANARY"))
            case .stderr(let s), .notice(let s): #expect(!s.contains("CANARY"))
            case .started, .created: break
            }
        }
    }
}

@Suite struct RunStoreTests {
    let dir = TemporaryDirectory("ccdeck-store")

    func record(_ id: String, at t: TimeInterval) -> RunRecord {
        RunRecord(id: id, mode: .podman, image: "i", container: "ccdeck-\(id)", workspace: "/w", workspaceIsTemporary: false,
                  prompt: "p", keep: false, createdAt: Date(timeIntervalSince1970: t), driverPID: 1, host: "h", tokenSource: nil)
    }

    @Test func roundTripListAndFindByPrefix() throws {
        let store = RunStore(root: dir.path)
        try store.create(record("20261129-010000-aaaa", at: 100))
        try store.create(record("20261129-020000-bbbb", at: 200))
        try store.create(record("20261129-020000-bbbc", at: 300))
        #expect(store.list().map(\.id) == ["20261129-020000-bbbc", "20261129-020000-bbbb", "20261129-010000-aaaa"])
        #expect(try store.find("20261129-01").id == "20261129-010000-aaaa")
        #expect(try store.find("latest").id == "20261129-020000-bbbc")
        #expect(throws: RunStoreError.self) { try store.find("20261129-02") }
        #expect(throws: RunStoreError.notFound("nope")) { try store.find("nope") }
        #expect(throws: RunStoreError.notFound("../etc")) { try store.find("../etc") }
        var attrs = try FileManager.default.attributesOfItem(atPath: store.directory(for: "20261129-010000-aaaa"))
        #expect((attrs[.posixPermissions] as? Int) == 0o700)
        attrs = [:]
    }

    @Test func defaultRootFollowsXDG() {
        #expect(RunStore.defaultRoot(environment: ["XDG_STATE_HOME": "/s", "HOME": "/h"]) == "/s/ccdeck")
        #expect(RunStore.defaultRoot(environment: ["HOME": "/h"]) == "/h/.local/state/ccdeck")
        #expect(RunStore.defaultRoot(environment: ["XDG_STATE_HOME": "relative", "HOME": "/h"]) == "/h/.local/state/ccdeck")
        #expect(RunStore(root: "/a").storeID != RunStore(root: "/b").storeID)
    }

    @Test func aLiveRecordWhoseDriverIsGoneIsOrphaned() throws {
        let store = RunStore(root: dir.path)
        var r = record("r1", at: 1)
        r.host = ProcessInfo.processInfo.hostName
        r.state = .running
        r.driverPID = getpid()
        #expect(!store.isOrphaned(r))
        r.driverPID = 999_999_999 % 4_194_304 + 4_000_000  // beyond any live pid here
        #expect(store.isOrphaned(r))
        r.state = .succeeded
        #expect(!store.isOrphaned(r))
    }

    @Test func unreadableRecordIsSkippedInListsAndExplainedOnLoad() throws {
        let store = RunStore(root: dir.path)
        try store.create(record("good", at: 1))
        try FileManager.default.createDirectory(atPath: store.directory(for: "bad"), withIntermediateDirectories: true)
        try "{".write(toFile: store.recordPath(for: "bad"), atomically: true, encoding: .utf8)
        #expect(store.list().map(\.id) == ["good"])
        #expect(throws: RunStoreError.self) { try store.load("bad") }
    }
}

@Suite struct RunOutputIndexTests {
    @Test func indexesCompleteLinesAsTheFileGrows() throws {
        let dir = TemporaryDirectory("ccdeck-index")
        let path = dir.write("output.jsonl", "")
        let index = RunOutputIndex(path: path)
        #expect(index.count == 0)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.write(Data("first\nsecond\nthi".utf8))
        #expect(index.count == 2)
        #expect(index.line(at: 0) == Data("first".utf8))
        #expect(index.line(at: 1) == Data("second".utf8))
        #expect(index.line(at: 2) == nil)  // still being written
        handle.write(Data("rd\n\n".utf8))
        #expect(index.count == 4)
        #expect(index.line(at: 2) == Data("third".utf8))
        #expect(index.line(at: 3) == Data())
        try handle.close()
    }

    @Test func aMissingFileHasNoLines() {
        let index = RunOutputIndex(path: "/nonexistent/ccdeck/output.jsonl")
        #expect(index.count == 0)
        #expect(index.line(at: 0) == nil)
    }
}
