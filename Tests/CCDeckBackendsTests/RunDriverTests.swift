import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport

/// A backend whose "container" is `sh` running a script: the driver's logic (record, output on
/// disk, redaction, verdict, cleanup, adoption) without an engine. The prompt arrives on the
/// script's stdin, as it does in every real backend.
struct ReplayBackend: SandboxBackend {
    let kind = BackendKind.docker
    let script: String
    /// What `outputCommand` prints: the run's whole output re-read, as `docker logs -f` would.
    var replay: String?
    var failStart = false
    var failPrepare = false
    let removed = Counter()
    let stopped = Counter()

    final class Counter: @unchecked Sendable {
        var value = 0
    }

    var traits: BackendTraits {
        BackendTraits(modeLetter: "A", isolation: .sharedKernel, tokenDelivery: .environmentByName, workspace: .mount,
                      workspaceInside: "/workspace", mark: .labels, resourceNoun: "container", canRun: true,
                      usesImage: true, takesRuntimeArguments: true)
    }

    func probe(timeout: TimeInterval) -> BackendStatus { BackendStatus(kind: kind, state: .ready) }
    func prepare(_ spec: RunSpec, build: ImageBuild?, cancel: Cancellation, progress: (String) -> Void) throws -> Preparation {
        if failPrepare { throw BackendError.refused("cannot prepare") }
        return Preparation(agentUser: "test")
    }
    func start(_ spec: RunSpec, preparation: Preparation) throws -> AgentLaunch {
        if failStart { throw BackendError.commandFailed("start", "engine said no") }
        var env = spec.environment
        if let token = spec.token { env[token.name] = token.value }
        return AgentLaunch(process: try ChildProcess.spawn(Command("sh", ["-c", script], environment: env), stdin: .pipe))
    }
    func stop(_ sandbox: SandboxRef) -> Bool { stopped.value += 1; return true }
    func outcome(_ sandbox: SandboxRef) -> SandboxOutcome? { nil }
    func remove(_ sandbox: SandboxRef) throws { removed.value += 1 }
    func resources(store: String) throws -> [SandboxResource] { [] }
    func outputCommand(_ sandbox: SandboxRef) -> Command? {
        replay.map { Command("sh", ["-c", $0], environment: ["PATH": "/usr/bin:/bin"]) }
    }
}

@Suite struct RunDriverTests {
    let state = TemporaryDirectory("ccdeck-state")
    let secret = "sk-ant-oat01-" + "CANARY-DRIVER-0123456789" + "abcdefghijklmnopqrstuvwxyz"

    var token: Token { Token(value: secret, kind: .setupToken, source: .environment(variable: "CLAUDE_CODE_OAUTH_TOKEN")) }

    func drive(_ script: String, keep: Bool = false, prompt: String = "p",
               backend: ReplayBackend? = nil) throws -> (RunRecord, RunStore, ReplayBackend, [RunDriver.Update]) {
        let store = RunStore(root: state.path)
        let backend = backend ?? ReplayBackend(script: script)
        var updates: [RunDriver.Update] = []
        let driver = RunDriver(backend: backend, store: store, token: token, environment: ["PATH": "/usr/bin:/bin"]) {
            updates.append($0)
        }
        let record = try driver.run(RunRequest(prompt: prompt, keep: keep))
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

    @Test func thePromptArrivesOnStdinWholeWhateverItHolds() throws {
        let fixture = TestPaths.fixtures + "/stream-write_and_bash.jsonl"
        let received = state.path + "/received.txt"
        // A Markdown list, front matter, an option-looking line, and far more than one argv entry can hold.
        let prompt = "---\ntitle: x\n---\n- fix bug\n--model=evil\n" + String(repeating: "y", count: 300_000) + "\n"
        let (record, _, _, _) = try drive("cat > '\(received)'; cat '\(fixture)'", prompt: prompt)
        #expect(record.state == .succeeded)
        #expect(try String(contentsOfFile: received, encoding: .utf8) == prompt)
    }

    @Test func anAgentThatNeverReadsItsPromptDoesNotHangTheRun() throws {
        let prompt = String(repeating: "z", count: 1 << 20)
        let (record, _, _, _) = try drive(#"echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1}'"#, prompt: prompt)
        #expect(record.state == .succeeded)
    }

    @Test func aPromptWithANulByteIsRefusedBeforeAnythingStarts() throws {
        #expect(throws: RunDriver.Failure.self) { try drive("exit 0", prompt: "a\u{0}b") }
        #expect(RunStore(root: state.path).list().isEmpty)
    }

    @Test func aFailedStartRemovesWhatGotAsFarAsExistingAndRecordsWhy() throws {
        var backend = ReplayBackend(script: "exit 0")
        backend.failStart = true
        #expect(throws: RunDriver.Failure.self) { try drive("", backend: backend) }
        #expect(backend.removed.value == 1)
        let record = try #require(RunStore(root: state.path).list().first)
        #expect(record.state == .failed && record.reason?.contains("engine said no") == true && record.endedAt != nil)
    }

    @Test func aFailedPrepareStartsNothing() throws {
        var backend = ReplayBackend(script: "exit 0")
        backend.failPrepare = true
        #expect(throws: RunDriver.Failure.self) { try drive("", backend: backend) }
        #expect(backend.removed.value == 0)
        #expect(RunStore(root: state.path).list().first?.reason == "cannot prepare")
    }

    @Test func theRecordSaysWhatTheSandboxHeld() throws {
        let fixture = TestPaths.fixtures + "/stream-write_and_bash.jsonl"
        let (record, store, _, _) = try drive("cat >/dev/null; cat '\(fixture)'")
        let loaded = try store.load(record.id)
        #expect(loaded.credentials?.delivery == .environmentByName)
        #expect(loaded.credentials?.exposure == .longLivedToken || loaded.credentials?.exposure == .unknownToken)
        #expect(loaded.isolation == .sharedKernel && loaded.workspaceTransport == .mount && loaded.agentUser == "test")
        #expect(loaded.toolErrors == 0)
    }

    /// A run whose ccdeck died: its output is re-read from the start, the lines already stored are
    /// skipped (a half-written last line is cut and read again), and it is judged and cleaned up.
    @Test func adoptionResumesTheOutputWithoutLosingOrRepeatingALine() throws {
        let fixture = TestPaths.fixtures + "/stream-write_and_bash.jsonl"
        let full = try String(contentsOfFile: fixture, encoding: .utf8)
        let lines = full.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let store = RunStore(root: state.path)
        var record = RunRecord(id: "20261129-000000-dead", mode: .docker, image: "i", sandbox: "ccdeck-20261129-000000-dead",
                               workspace: state.path, workspaceIsTemporary: false, prompt: "p", keep: false,
                               createdAt: Date(), driverPID: 1, host: ProcessInfo.processInfo.hostName, tokenSource: nil)
        record.state = .running
        do {
            let first = try store.create(record)
            // The first driver stored three lines and half of the fourth, then died.
            let partial = lines.prefix(3).joined(separator: "\n") + "\n" + String(lines[3].prefix(10))
            try partial.write(toFile: store.outputPath(for: record.id), atomically: false, encoding: .utf8)
            #expect(!store.driverLost(record))
            first.release()
        }
        #expect(store.driverLost(record))
        let lock = try #require(store.takeOver(record.id))
        #expect(store.takeOver(record.id) == nil)  // one adopter at a time
        var backend = ReplayBackend(script: "")
        backend.replay = "cat '\(fixture)'"
        let driver = RunDriver(backend: backend, store: store, token: token, environment: [:]) { _ in }
        let adopted = driver.adopt(record, lock: lock)
        #expect(adopted.state == .succeeded, "\(adopted.reason ?? "")")
        #expect(adopted.turns == 3 && adopted.adoptedAt != nil && adopted.driverPID == getpid())
        #expect(try String(contentsOfFile: store.outputPath(for: record.id), encoding: .utf8) == full)
        #expect(backend.removed.value == 1)
        #expect(!store.driverLost(try store.load(record.id)))
    }

    @Test func adoptingARunWhoseSandboxIsGoneSaysSo() throws {
        let store = RunStore(root: state.path)
        var record = RunRecord(id: "20261129-000000-9one", mode: .docker, image: "i", sandbox: "ccdeck-x", workspace: state.path,
                               workspaceIsTemporary: false, prompt: "p", keep: false, createdAt: Date(), driverPID: 1,
                               host: ProcessInfo.processInfo.hostName, tokenSource: nil)
        record.state = .running
        try store.create(record).release()
        var backend = ReplayBackend(script: "")
        backend.replay = "echo 'Error: No such container: ccdeck-x' >&2; exit 1"
        let adopted = RunDriver(backend: backend, store: store, token: nil, environment: [:]) { _ in }
            .adopt(record, lock: try #require(store.takeOver(record.id)))
        #expect(adopted.state == .failed)
        #expect(adopted.reason?.contains("container is gone") == true)
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
            case .started, .created, .egress: break
            }
        }
    }
}

@Suite struct RunStoreTests {
    let dir = TemporaryDirectory("ccdeck-store")

    func record(_ id: String, at t: TimeInterval) -> RunRecord {
        RunRecord(id: id, mode: .podman, image: "i", sandbox: "ccdeck-\(id)", workspace: "/w", workspaceIsTemporary: false,
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

    /// A save replaces the record in one rename (no fsync on the run's path), private to the
    /// user, leaving no temporary file; the row follows it, marked and then clean.
    @Test func aSaveReplacesTheRecordWholeAndLeavesNothingBehind() throws {
        let store = RunStore(root: dir.path)
        var r = record("20261129-030000-cccc", at: 400)
        _ = try store.create(r)
        r.state = .running
        try store.save(r)
        r.state = .succeeded
        try store.save(r)
        let folder = store.directory(for: r.id)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["driver.lock", "record.json"])
        let attrs = try FileManager.default.attributesOfItem(atPath: store.recordPath(for: r.id))
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        #expect(try store.find(r.id).state == .succeeded)
        let row = try #require(try store.index?.rows(RunIndex.Query()).first { $0.id == r.id })
        #expect(row.state == .succeeded)
        #expect(throws: RunStoreError.self) { try RunStore.replace(dir.path + "/no/such/folder/x", with: Data("x".utf8)) }
    }

    @Test func defaultRootFollowsXDG() {
        #expect(RunStore.defaultRoot(environment: ["XDG_STATE_HOME": "/s", "HOME": "/h"]) == "/s/ccdeck")
        #expect(RunStore.defaultRoot(environment: ["HOME": "/h"]) == "/h/.local/state/ccdeck")
        #expect(RunStore.defaultRoot(environment: ["XDG_STATE_HOME": "relative", "HOME": "/h"]) == "/h/.local/state/ccdeck")
        #expect(RunStore(root: "/a").storeID != RunStore(root: "/b").storeID)
    }

    @Test func aLiveRecordWhoseDriverLockIsFreeHasLostItsDriver() throws {
        let store = RunStore(root: dir.path)
        var r = record("r1", at: 1)
        r.host = ProcessInfo.processInfo.hostName
        r.state = .running
        r.driverPID = getpid()
        let lock = try store.create(r)
        #expect(!store.driverLost(r))
        lock.release()
        // The pid is alive (it is ours) but the lock is free: the lock decides.
        #expect(store.driverLost(r))
        r.state = .succeeded
        #expect(!store.driverLost(r))
        // A record from before the lock falls back to the pid.
        var old = record("r2", at: 2)
        old.host = ProcessInfo.processInfo.hostName
        old.state = .running
        old.driverPID = 999_999_999 % 4_194_304 + 4_000_000  // beyond any live pid here
        try FileManager.default.createDirectory(atPath: store.directory(for: "r2"), withIntermediateDirectories: true)
        try store.save(old)
        #expect(store.driverLost(old))
        old.host = "another-host"
        #expect(!store.driverLost(old))
    }

    @Test func recordsFromOtherCcdecksStillRead() throws {
        let store = RunStore(root: dir.path)
        try FileManager.default.createDirectory(atPath: store.directory(for: "old"), withIntermediateDirectories: true)
        // An older ccdeck: `container`, no credentials; a newer one: an unknown mode, state and field.
        try #"{"id":"old","mode":"docker","image":"i","container":"ccdeck-old","workspace":"/w","workspaceIsTemporary":false,"prompt":"p","keep":false,"createdAt":"2026-11-01T00:00:00.000Z","state":"succeeded","phases":{},"driverPID":1,"host":"h"}"#
            .write(toFile: store.recordPath(for: "old"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: store.directory(for: "new"), withIntermediateDirectories: true)
        try #"{"id":"new","mode":"quantum-vm","image":"","sandbox":"q1","workspace":"/w","workspaceIsTemporary":false,"prompt":"p","keep":false,"createdAt":"2026-11-02T00:00:00.000Z","state":"hibernating","phases":{},"driverPID":1,"host":"h","isolation":"quantum","futureField":[1,2]}"#
            .write(toFile: store.recordPath(for: "new"), atomically: true, encoding: .utf8)
        let listed = store.list()
        #expect(listed.map(\.id) == ["new", "old"])
        #expect(listed[0].mode.rawValue == "quantum-vm" && listed[0].state == .unknown && listed[0].isolation == nil)
        #expect(listed[1].sandbox == "ccdeck-old" && listed[1].state == .succeeded)
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
