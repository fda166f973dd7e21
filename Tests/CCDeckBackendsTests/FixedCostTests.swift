@testable import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The pieces that take engine calls off a run's critical path (issue 15): the engine's API over
/// its socket, podman's own removal with its log kept, and the workspace read at the result.
@Suite struct UnixHTTPTests {
    @Test func aResponseWithALengthIsWholeOnlyOnceItAllArrived() throws {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
        #expect(UnixHTTP.parse(Data((head + "{\"a\":").utf8), complete: false) == nil)
        let whole = try #require(UnixHTTP.parse(Data((head + "{\"a\":12345}").utf8), complete: false))
        #expect(whole.status == 200 && whole.text == "{\"a\":12345}")
    }

    @Test func aChunkedResponseIsJoined() throws {
        let head = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(UnixHTTP.parse(Data((head + "5\r\nhello\r\n").utf8), complete: false) == nil)
        let whole = try #require(UnixHTTP.parse(Data((head + "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n").utf8), complete: false))
        #expect(whole.status == 404 && whole.text == "hello world")
    }

    @Test func headerNamesAnyCaseValuesTrimmedChunkSizesInEitherHex() throws {
        let sized = try #require(UnixHTTP.parse(Data("HTTP/1.1 200 OK\r\ncontent-LENGTH: \t3 \r\n\r\nabcdef".utf8), complete: false))
        #expect(sized.text == "abc")
        let head = "HTTP/1.1 200 OK\r\nX-Other: a:b\r\nTRANSFER-ENCODING:  Chunked\r\n\r\n"
        let body = String(repeating: "x", count: 26)
        let joined = try #require(UnixHTTP.parse(Data((head + "1A\r\n\(body)\r\n0\r\n\r\n").utf8), complete: false))
        #expect(joined.text == body)
        #expect(UnixHTTP.parse(Data((head + "1a\r\n\(body)\r").utf8), complete: false) == nil)
    }

    @Test func noContentAndAnAnswerEndedByTheClose() throws {
        #expect(UnixHTTP.parse(Data("HTTP/1.1 204 No Content\r\n\r\n".utf8), complete: false)?.status == 204)
        let closed = try #require(UnixHTTP.parse(Data("HTTP/1.0 200 OK\r\n\r\nall of it".utf8), complete: true))
        #expect(closed.text == "all of it")
        #expect(UnixHTTP.parse(Data("garbage\r\n\r\n".utf8), complete: true) == nil)
    }

    @Test func namesAreEscapedIntoAPath() {
        #expect(UnixHTTP.escape("ghcr.io/me/img:1.0") == "ghcr.io/me/img:1.0")
        #expect(UnixHTTP.escape("a b?c#d&e") == "a%20b%3Fc%23d%26e")
    }

    @Test func aSocketWithNothingListeningIsSaidSo() {
        #expect(throws: UnixHTTP.Failure.self) { try UnixHTTP(socketPath: "/nonexistent/x.sock", timeout: 1).get("/info") }
    }
}

@Suite struct EngineSocketTests {
    @Test func dockerIsAskedOverItsSocketOnlyWhereTheCLIWouldConnectLocally() throws {
        let home = NSTemporaryDirectory() + "ccdeck-docker-config-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: home) }
        #expect(ContainerBackend.dockerSocket(environment: ["DOCKER_HOST": "unix:///run/x.sock"]) == "/run/x.sock")
        #expect(ContainerBackend.dockerSocket(environment: ["DOCKER_HOST": "tcp://10.0.0.1:2376"]) == nil)
        #expect(ContainerBackend.dockerSocket(environment: ["DOCKER_HOST": "ssh://me@box"]) == nil)
        #expect(ContainerBackend.dockerSocket(environment: ["HOME": home, "DOCKER_CONTEXT": "remote"]) == nil)
        #expect(ContainerBackend.dockerSocket(environment: ["HOME": home]) == "/var/run/docker.sock")
        try FileManager.default.createDirectory(atPath: home + "/.docker", withIntermediateDirectories: true)
        try Data(#"{"currentContext": "colima"}"#.utf8).write(to: URL(fileURLWithPath: home + "/.docker/config.json"))
        #expect(ContainerBackend.dockerSocket(environment: ["HOME": home]) == nil)
        try Data(#"{"currentContext": "default"}"#.utf8).write(to: URL(fileURLWithPath: home + "/.docker/config.json"))
        #expect(ContainerBackend.dockerSocket(environment: ["HOME": home]) == "/var/run/docker.sock")
        #expect(ContainerBackend(.podman, environment: ["HOME": home]).apiSocket == nil)
    }

    @Test func incusIsAskedOverItsSocketUnlessTheDefaultRemoteIsAnother() throws {
        let conf = NSTemporaryDirectory() + "ccdeck-incus-conf-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: conf) }
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        #expect(IncusBackend.incusSocket(environment: ["INCUS_CONF": conf]) == "/var/lib/incus/unix.socket")
        #expect(IncusBackend.incusSocket(environment: ["INCUS_CONF": conf, "INCUS_DIR": "/srv/incus"]) == "/srv/incus/unix.socket")
        #expect(IncusBackend.incusSocket(environment: ["INCUS_CONF": conf, "INCUS_SOCKET": "/x.sock"]) == "/x.sock")
        try "default-remote: cluster\nremotes: {}\n".write(toFile: conf + "/config.yml", atomically: true, encoding: .utf8)
        #expect(IncusBackend.incusSocket(environment: ["INCUS_CONF": conf]) == nil)
        try "default-remote: local\n".write(toFile: conf + "/config.yml", atomically: true, encoding: .utf8)
        #expect(IncusBackend.incusSocket(environment: ["INCUS_CONF": conf]) == "/var/lib/incus/unix.socket")
    }
}

@Suite struct PodmanRunShapeTests {
    func spec(keep: Bool = false, runtime: [String] = []) -> (ContainerBackend, RunSpec) {
        let backend = ContainerBackend(.podman, environment: [:])
        var spec = RunSpec(id: "r1", sandboxName: "ccdeck-r1", image: "img", workspace: "/ws", workspaceOwner: FileOwner(uid: 1000, gid: 1000),
                           prompt: "p", mark: [:], token: nil, passEnvironment: [], environment: [:], runtimeArguments: runtime)
        spec.runDirectory = "/state/runs/r1"
        spec.removeAtEnd = !keep
        return (backend, spec)
    }

    @Test func podmanRemovesItsOwnContainerAndKeepsItsLogInTheRunsFolder() throws {
        let (backend, s) = spec()
        #expect(backend.keepsLog(s))
        var prep = Preparation()
        prep.removedByClient = backend.keepsLog(s)
        prep.imageCheckedAtStart = true
        let args = backend.runArguments(s, preparation: prep)
        #expect(args.contains("--rm") && args.contains("--pull=never"))
        let opt = try #require(args.firstIndex(of: "--log-opt"))
        #expect(args[opt + 1] == "path=/state/runs/r1/" + RunSpec.keptOutputName)
        #expect(args[try #require(args.firstIndex(of: "--log-driver")) + 1] == "k8s-file")
    }

    @Test(arguments: [["--log-driver=journald"], ["--rm"], ["--log-opt", "max-size=1m"]])
    func aKeptRunOrTheUsersOwnLogChoiceIsLeftAlone(runtime: [String]) {
        #expect(!spec(keep: true).0.keepsLog(spec(keep: true).1))
        let (backend, s) = spec(runtime: runtime)
        #expect(!backend.keepsLog(s))
    }

    @Test func theClientsStatusIsTheAgentsUnlessTheEngineFailedOrTheClientDied() {
        let backend = ContainerBackend(.docker, environment: [:])
        #expect(backend.outcome(fromClient: .exited(0))?.exitCode == 0)
        #expect(backend.outcome(fromClient: .exited(137))?.exitCode == 137)
        #expect(backend.outcome(fromClient: .exited(125)) == nil)
        #expect(backend.outcome(fromClient: .signaled(9)) == nil)
    }

    @Test func aMissingImageIsToldFromOtherRefusals() {
        let backend = ContainerBackend(.podman, environment: [:])
        #expect(backend.imageMissing(exitCode: 125, stderr: ["Error: x:1: image not known"]))
        #expect(ContainerBackend(.docker, environment: [:]).imageMissing(exitCode: 125,
                                                                         stderr: ["docker: Error response from daemon: No such image: x:1"]))
        #expect(!backend.imageMissing(exitCode: 125, stderr: ["Error: invalid reference format"]))
        #expect(!backend.imageMissing(exitCode: 1, stderr: ["image not known"]))
        #expect(backend.startFailure(exitCode: 125, stderr: ["Error: x:1: image not known"])?.contains("ccdeck image build") == true)
    }
}

@Suite struct PodmanLogDecoderTests {
    @Test func partsAreJoinedAndStderrIsKeptApart() {
        let d = PodmanLogDecoder()
        func feed(_ s: String) -> [String] { d.decode(Data(s.utf8)).map { String(decoding: $0, as: UTF8.self) } }
        #expect(feed("2026-11-29T11:50:25.03+00:00 stdout P {\"type\":") == [])
        #expect(feed("2026-11-29T11:50:25.03+00:00 stderr F warn: x y") == [])
        #expect(feed("2026-11-29T11:50:25.04+00:00 stdout F \"result\", \"a b\"}") == ["{\"type\":\"result\", \"a b\"}"])
        #expect(feed("2026-11-29T11:50:25.05+00:00 stdout F") == [""])
        #expect(feed("not a record") == [])
        #expect(d.takeStderr().map { String(decoding: $0, as: UTF8.self) } == ["warn: x y"])
        #expect(d.takeStderr().isEmpty)
    }
}

@Suite struct EarlyChangesTests {
    let dir = NSTemporaryDirectory() + "ccdeck-early-\(UUID().uuidString.prefix(8))"

    func tracker() throws -> ChangeTracker {
        try FileManager.default.createDirectory(atPath: dir + "/ws/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true)
        try "a\n".write(toFile: dir + "/ws/sub/a.txt", atomically: false, encoding: .utf8)
        return try #require(ChangeTracker(workspace: dir + "/ws", runDirectory: dir + "/run", environment: ProcessInfo.processInfo.environment))
    }

    func later() -> timespec {
        usleep(30_000)  // past the coarse clock's tick
        let now = ChangeTracker.fileSystemNow()
        usleep(30_000)
        return now
    }

    @Test(arguments: ["write", "create", "delete", "rename"])
    func anyChangeAfterTheReadingIsSeen(change: String) throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try tracker()
        let since = later()
        #expect(t.unchanged(since: since))
        switch change {
        case "write": try "b\n".write(toFile: dir + "/ws/sub/a.txt", atomically: false, encoding: .utf8)
        case "create": try "n\n".write(toFile: dir + "/ws/sub/new.txt", atomically: false, encoding: .utf8)
        case "delete": try FileManager.default.removeItem(atPath: dir + "/ws/sub/a.txt")
        default: rename(dir + "/ws/sub/a.txt", dir + "/ws/sub/b.txt")
        }
        #expect(!t.unchanged(since: since))
    }

    @Test func whatHappensInsideAGitFolderIsNotTheWorkspacesContent() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try tracker()
        try FileManager.default.createDirectory(atPath: dir + "/ws/.git", withIntermediateDirectories: true)
        let since = later()
        try "x".write(toFile: dir + "/ws/.git/index", atomically: false, encoding: .utf8)  // a commit, say
        #expect(t.unchanged(since: since))
    }

    /// A folder ccdeck made is compared against what it wrote there, read from nothing before the
    /// agent starts; its repository can go as soon as the reading is written, and a second
    /// reading (the workspace changed after the result) makes the baseline again.
    @Test func aFreshFoldersBaselineIsKnownAndMadeAgainWhenNeeded() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true)
        try Workspace.createFresh(at: dir + "/ws")
        let t = try #require(ChangeTracker(workspace: dir + "/ws", runDirectory: dir + "/run", environment: ProcessInfo.processInfo.environment))
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/changes.git"), "nothing read or made before the agent")
        try "hi\n".write(toFile: dir + "/ws/hello.txt", atomically: false, encoding: .utf8)
        let first = try #require(t.compare(baseline: ChangeTracker.freshBaseline))
        #expect(first.changes.files.map(\.path) == ["hello.txt"], "package.json, as ccdeck wrote it, is not a change")
        t.write(first)
        #expect(ChangeTracker.canRemake(ChangeTracker.freshBaseline) && !ChangeTracker.canRemake("snapshot:abc"))
        t.discard()
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/changes.git"))
        try "{}\n".write(toFile: dir + "/ws/package.json", atomically: false, encoding: .utf8)
        let again = try #require(t.finish(baseline: ChangeTracker.freshBaseline))
        #expect(Set(again.files.map(\.path)) == ["hello.txt", "package.json"])
        #expect(again.files.first { $0.path == "package.json" }?.kind == .modified)
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/changes-fresh"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/changes.git"))
        // Made ahead for a comparison that waits for the sandbox's end (a copied workspace).
        t.prepare(baseline: ChangeTracker.freshBaseline)
        #expect(FileManager.default.fileExists(atPath: dir + "/run/changes.git/ccdeck-fresh-tree"))
        let ahead = try #require(t.finish(baseline: ChangeTracker.freshBaseline))
        #expect(Set(ahead.files.map(\.path)) == ["hello.txt", "package.json"])
    }

    /// The fresh folder's tree is made once for the store (issue 15: two git processes less at
    /// every run's result); every run's repository reads it, and a run's comparison is what it
    /// was when each run made its own.
    @Test func aFreshFoldersTreeIsMadeOnceForTheStore() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let shared = dir + "/store"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        var readings: [WorkspaceChanges] = []
        for n in 1...2 {
            try FileManager.default.createDirectory(atPath: dir + "/run\(n)", withIntermediateDirectories: true)
            try Workspace.createFresh(at: dir + "/ws\(n)")
            try "hi\n".write(toFile: dir + "/ws\(n)/hello.txt", atomically: false, encoding: .utf8)
            try "{}\n".write(toFile: dir + "/ws\(n)/package.json", atomically: false, encoding: .utf8)
            let t = try #require(ChangeTracker(workspace: dir + "/ws\(n)", runDirectory: dir + "/run\(n)",
                                               environment: ProcessInfo.processInfo.environment, sharedDirectory: shared))
            let storeBefore = n == 1 ? [] : try FileManager.default.subpathsOfDirectory(atPath: shared).sorted()
            let comparison = try #require(t.compare(baseline: ChangeTracker.freshBaseline))
            // No repository made for the run (issue 15: ~20 folders and files less to make and
            // delete beside every run's wind-down): the store's is read, never written; the run
            // keeps only the index and the new files' objects.
            #expect(!FileManager.default.fileExists(atPath: dir + "/run\(n)/changes.git"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/run\(n)/changes-fresh"))
            #expect(FileManager.default.fileExists(atPath: dir + "/run\(n)/changes-index"))
            if n == 2 { #expect(try FileManager.default.subpathsOfDirectory(atPath: shared).sorted() == storeBefore) }
            readings.append(t.settle(comparison))
            let left = try FileManager.default.contentsOfDirectory(atPath: dir + "/run\(n)").sorted()
            #expect(left == ["changes.diff", "changes.json"], "\(left)")
        }
        let made = try FileManager.default.contentsOfDirectory(atPath: shared)
        #expect(made == ["fresh-\(Workspace.freshDigest).git"], "one repository, no scratch left: \(made)")
        for reading in readings {
            #expect(reading.files.map(\.path) == ["hello.txt", "package.json"])
            #expect(reading.files.map(\.kind) == [.added, .modified])
            #expect(reading.files.map(\.additions) == [1, 1] && reading.files.map(\.deletions) == [0, 6])
        }
        let patch = try String(contentsOfFile: dir + "/run2/changes.diff", encoding: .utf8)
        #expect(patch.hasPrefix("diff --git a/hello.txt b/hello.txt\nnew file mode 100644\n"))
        #expect(patch.contains("+{}\n"))
    }

    /// A plain folder's snapshot is one git process before the start (`add -A` into the private
    /// index); its tree is written when first compared, and every later reading compares with
    /// that same snapshot, however the index moved on.
    @Test func aPlainFoldersSnapshotIsItsIndexUntilFirstCompared() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try tracker()
        let baseline = try #require(t.begin())
        #expect(baseline == ChangeTracker.indexBaseline)
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/changes.git/ccdeck-baseline-tree"), "no tree yet")
        try "b\n".write(toFile: dir + "/ws/sub/a.txt", atomically: false, encoding: .utf8)
        let first = try #require(t.compare(baseline: baseline))
        #expect(first.changes.files.map(\.path) == ["sub/a.txt"] && first.changes.files.map(\.kind) == [.modified])
        try "n\n".write(toFile: dir + "/ws/new.txt", atomically: false, encoding: .utf8)
        let second = try #require(t.compare(baseline: baseline))
        #expect(second.changes.files.map(\.path) == ["new.txt", "sub/a.txt"], "against the start, not the first reading")
        #expect(!ChangeTracker.canRemake(baseline), "the snapshot lives only in the private repository")
    }

    /// One git gives the three views of a comparison; paths are any bytes but NUL.
    @Test func theCombinedDiffSplitsIntoItsThreeViews() {
        let out = Data(":100644 100644 422c2b7 6372083 M\0a.txt\0:000000 100644 0000000 3e75765 A\0sp\tace\n.txt\0"
            .utf8) + Data(("2\t1\ta.txt\0" + "1\t0\tsp\tace\n.txt\0\0diff --git a/a.txt b/a.txt\n").utf8)
        let views = ChangeTracker.views(out)
        #expect(views.nameStatus == Data("M\0a.txt\0A\0sp\tace\n.txt\0".utf8))
        #expect(views.numstat == Data(("2\t1\ta.txt\0" + "1\t0\tsp\tace\n.txt\0").utf8))
        #expect(views.patch == Data("diff --git a/a.txt b/a.txt\n".utf8))
        let none = ChangeTracker.views(Data())
        #expect(none.nameStatus.isEmpty && none.numstat.isEmpty && none.patch.isEmpty)
    }

    /// A file rewritten to the same size in the very second of the snapshot, read after that
    /// second ended: git's stat check (whole seconds) matches, so only its second look at entries
    /// as old as the index sees it, and `write-tree` run outside the work tree skipped that look
    /// while moving the index on (1 run in 30 lost the change). Placed at a second's end on
    /// purpose: each pass makes the race happen, not just allows it.
    @Test func aSameSizeRewriteInTheSnapshotsSecondIsSeen() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for pass in 0..<3 {
            try? FileManager.default.removeItem(atPath: dir)
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            if now.tv_nsec < 850_000_000 { usleep(useconds_t((850_000_000 - now.tv_nsec) / 1000)) }  // late in a second
            let t = try tracker()  // writes "a\n"
            let baseline = try #require(t.begin())
            try "b\n".write(toFile: dir + "/ws/sub/a.txt", atomically: false, encoding: .utf8)
            clock_gettime(CLOCK_REALTIME, &now)
            usleep(useconds_t((1_050_000_000 - now.tv_nsec) / 1000))  // into the next second
            let changes = try #require(t.finish(baseline: baseline))
            #expect(changes.files.map(\.path) == ["sub/a.txt"], "pass \(pass)")
        }
    }

    @Test func theReadingTakenAtTheResultIsTheOneSettled() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try tracker()
        let baseline = try #require(t.begin())
        try "b\n".write(toFile: dir + "/ws/sub/a.txt", atomically: false, encoding: .utf8)
        usleep(30_000)  // the agent's last write, a tick before its result
        let comparison = try #require(t.compare(baseline: baseline))
        #expect(t.unchanged(since: comparison.began))
        let settled = t.settle(comparison)
        #expect(settled.files.map(\.path) == ["sub/a.txt"])
        #expect(FileManager.default.fileExists(atPath: dir + "/run/changes.json"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/changes.git"))
    }
}

/// A folder ccdeck made that only gained files is read without git (issue 15: two git
/// processes fewer beside the sandbox's wind-down); its reading must be git's, byte for byte.
@Suite struct FreshFolderReadingTests {
    let dir = NSTemporaryDirectory() + "ccdeck-fresh-\(UUID().uuidString.prefix(8))"

    /// The same folder read in this process and by git, each in its own run folder.
    func bothReadings(_ ws: String) throws -> (own: ChangeTracker.Comparison, git: ChangeTracker.Comparison, ownFolder: [String]) {
        let env = ProcessInfo.processInfo.environment
        let own = dir + "/own-\(UUID().uuidString.prefix(6))", viaGit = dir + "/git-\(UUID().uuidString.prefix(6))"
        for d in [own, viaGit] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let mine = try #require(ChangeTracker(workspace: ws, runDirectory: own, environment: env, sharedDirectory: dir))
        var git = try #require(ChangeTracker(workspace: ws, runDirectory: viaGit, environment: env, sharedDirectory: dir))
        git.readsFreshFoldersItself = false
        let a = try #require(mine.compare(baseline: ChangeTracker.freshBaseline))
        let b = try #require(git.compare(baseline: ChangeTracker.freshBaseline))
        return (a, b, try FileManager.default.contentsOfDirectory(atPath: own))
    }

    func write(_ ws: String, _ path: String, _ bytes: [UInt8], executable: Bool = false) throws {
        let full = ws + "/" + path
        try FileManager.default.createDirectory(atPath: String(full[..<full.lastIndex(of: "/")!]), withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: full))
        if executable { chmod(full, 0o755) }
    }

    @Test func theHashIsGits() {
        #expect(SHA1.hex(Array("blob 0\0".utf8)) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")
        #expect(SHA1.hex(Array("abc".utf8)) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(SHA1.hex([UInt8](repeating: 0x61, count: 1_000)) == "291e9a6c66994949b57ba5e650361e98fc36b1ba")
    }

    @Test func newFilesOfEveryKindAreReadAsGitReadsThem() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ws = dir + "/ws"
        try Workspace.createFresh(at: ws)
        try write(ws, "hello.txt", Array("hi\n".utf8))
        try write(ws, "no-newline.txt", Array("one\ntwo".utf8))
        try write(ws, "b c.txt", Array("with a space\n".utf8))
        try write(ws, "empty", [])
        try write(ws, "bin.dat", [0x61, 0, 0x62, 0x0A])
        try write(ws, "late-nul.txt", [UInt8](repeating: 0x61, count: 8_100) + [0, 0x0A])
        try write(ws, "crlf.txt", Array("a\r\nb\r\n".utf8))
        try write(ws, "src/run.sh", Array("#!/bin/sh\necho ok\n".utf8), executable: true)
        try write(ws, "src/deep/é.md", Array("# é\n\n".utf8))
        try write(ws, "a.b", Array("x\n".utf8))
        try write(ws, "a-b/c", Array("y\n".utf8))
        try write(ws, "a/c", Array("z\n".utf8))
        try FileManager.default.createDirectory(atPath: ws + "/empty-dir", withIntermediateDirectories: true)
        symlink("hello.txt", ws + "/link")
        let r = try bothReadings(ws)
        #expect(r.ownFolder.isEmpty, "no git ran: nothing written in the run's folder (\(r.ownFolder))")
        #expect(r.own.changes == r.git.changes)
        #expect(String(decoding: r.own.patch, as: UTF8.self) == String(decoding: r.git.patch, as: UTF8.self))
        #expect(r.own.changes.files.count == 13)
    }

    @Test func nothingDoneAndPackageJSONDeletedAreGitsAnswersToo() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ws = dir + "/ws"
        try Workspace.createFresh(at: ws)
        let untouched = try bothReadings(ws)
        #expect(untouched.own.changes.files.isEmpty && untouched.own.patch.isEmpty && untouched.git.patch.isEmpty)
        unlink(ws + "/package.json")
        try write(ws, "index.js", Array("console.log(1)\n".utf8))
        let r = try bothReadings(ws)
        #expect(r.ownFolder.isEmpty)
        #expect(r.own.changes == r.git.changes && r.own.patch == r.git.patch)
        #expect(r.own.changes.files.map(\.kind) == [.added, .deleted])
    }

    /// What this reading does not say is left to git: the answer is git's either way.
    @Test(arguments: ["edited", "executable", "gitignore", "git", "quote", "newline", "fifo", "large", "folders", "deep", "short name"])
    func anythingElseIsReadByGit(kind: String) throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ws = dir + "/ws"
        try Workspace.createFresh(at: ws)
        try write(ws, "hello.txt", Array("hi\n".utf8))
        switch kind {
        case "edited": try write(ws, "package.json", Array("{}\n".utf8))
        case "executable": chmod(ws + "/package.json", 0o755)
        case "gitignore": try write(ws, "sub/.gitignore", Array("hello.txt\n*.log\n".utf8)); try write(ws, "sub/x.log", [0x61])
        case "git": try write(ws, "inner/.git/HEAD", Array("ref: refs/heads/main\n".utf8))
        case "quote": try write(ws, "say \"hi\".txt", Array("hi\n".utf8))
        case "newline": try write(ws, "two\nlines", Array("hi\n".utf8))
        case "fifo": mkfifo(ws + "/pipe", 0o644)
        case "short name": try write(ws, "GIT~1/x", Array("hi\n".utf8))
        case "deep": try write(ws, Array(repeating: "d", count: FreshFolderReading.maxDepth + 1).joined(separator: "/") + "/x", [0x61])
        case "folders":
            for i in 0...FreshFolderReading.maxNames { mkdir(ws + "/d\(i)", 0o755) }
        default: try write(ws, "big.txt", [UInt8](repeating: 0x0A, count: FreshFolderReading.maxBytes + 1))
        }
        #expect(FreshFolderReading.read(workspace: ws) == nil)
        if kind == "short name" {
            // git refuses to add it (core.protectNTFS): no reading either way.
            try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true)
            let t = try #require(ChangeTracker(workspace: ws, runDirectory: dir + "/run", environment: ProcessInfo.processInfo.environment))
            #expect(t.compare(baseline: ChangeTracker.freshBaseline) == nil)
            return
        }
        let r = try bothReadings(ws)
        #expect(r.own.changes == r.git.changes && r.own.patch == r.git.patch)
    }

    /// Random folders of new files (names, depths, contents, modes) read both ways.
    @Test func randomFoldersAreReadAsGitReadsThem() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SystemRandomNumberGenerator()
        let names = ["a", "b", "a.b", "a-b", "B", "z z", "é", "0", "_x", "index.ts", "package.jsonx"]
        for round in 0..<12 {
            let ws = dir + "/ws\(round)"
            try Workspace.createFresh(at: ws)
            if Bool.random(using: &rng) { unlink(ws + "/package.json") }
            for _ in 0..<Int.random(in: 1...12, using: &rng) {
                let depth = Int.random(in: 1...3, using: &rng)
                let path = (0..<depth).map { _ in names.randomElement(using: &rng)! }.joined(separator: "/")
                // A name already taken, or under a file: drawn again next time.
                if FileManager.default.fileExists(atPath: ws + "/" + path) || path == "package.json" { continue }
                if Int.random(in: 0..<8, using: &rng) == 0, !path.contains("/") {
                    symlink(names.randomElement(using: &rng)!, ws + "/" + path)
                    continue
                }
                let alphabet: [UInt8] = Array("ab \n\n\t\r{}é".utf8) + (Bool.random(using: &rng) ? [0] : [])
                let bytes = (0..<Int.random(in: 0...200, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
                try? write(ws, path, bytes, executable: Int.random(in: 0..<4, using: &rng) == 0)
            }
            let r = try bothReadings(ws)
            #expect(r.own.changes == r.git.changes, "round \(round)")
            #expect(String(decoding: r.own.patch, as: UTF8.self) == String(decoding: r.git.patch, as: UTF8.self), "round \(round)")
        }
    }
}
