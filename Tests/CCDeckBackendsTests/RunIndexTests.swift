@testable import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The run index (issue 16): the record files are the truth, the index is built, repaired and
/// rebuilt from them, and a listing reads a page of rows.
@Suite(.serialized) struct RunIndexTests {
    let dir = TemporaryDirectory("ccdeck-index")
    var store: RunStore { RunStore(root: dir.path + "/state") }

    func record(_ n: Int, state: RunState = .succeeded, mode: String = "docker", prompt: String? = nil,
                at base: Date = Date(timeIntervalSince1970: 1_790_000_000)) -> RunRecord {
        let created = base.addingTimeInterval(Double(n) * 60)
        var r = RunRecord(id: String(format: "20261129-%06d-%04x", n, n), mode: BackendKind(mode), image: "img",
                          sandbox: "ccdeck-\(n)", workspace: "/ws/\(n)", workspaceIsTemporary: true,
                          prompt: prompt ?? "task number \(n)", keep: false, createdAt: created, driverPID: 1, host: "elsewhere",
                          tokenSource: nil)
        r.state = state
        r.endedAt = state.isLive ? nil : created.addingTimeInterval(30)
        r.costUSD = 0.01
        return r
    }

    /// Record files as an older ccdeck wrote them: no index.
    func writeOldStore(_ records: [RunRecord]) throws {
        for r in records {
            try FileManager.default.createDirectory(atPath: store.directory(for: r.id), withIntermediateDirectories: true)
            try RunStore.encoder.encode(r).write(to: URL(fileURLWithPath: store.recordPath(for: r.id)))
        }
    }

    /// Saved as a run's driver saves it: into its folder.
    func save(_ r: RunRecord) throws {
        try FileManager.default.createDirectory(atPath: store.directory(for: r.id), withIntermediateDirectories: true)
        try store.save(r)
    }

    /// A fresh look at the store, as another ccdeck process would take.
    func reopened() -> RunIndex? {
        RunIndexes.shared.forget(store)
        return store.index
    }

    @Test func anOldStoreIsIndexedOnFirstUseAndListsAsItsFilesDo() throws {
        try writeOldStore((0..<700).map { record($0) })
        var reported: [(Int, Int)] = []
        RunIndexes.progress = { reported.append(($0, $1)) }
        defer { RunIndexes.progress = nil }
        let index = try #require(reopened())
        #expect(try index.count() == 700 && index.isBuilt)
        #expect(reported.last.map { $0 == (700, 700) } == true)
        #expect(store.rows(RunIndex.Query(limit: 50)).map(\.id) == Array(store.list().prefix(50)).map(\.id))
        let first = try #require(store.rows(RunIndex.Query(limit: 1)).first)
        #expect(try first.record() == store.load(first.id))
    }

    @Test func filtersAndPages() throws {
        // Whole seconds: records keep milliseconds.
        let base = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 3 * 86_400).rounded(.down))
        try writeOldStore((0..<100).map { n in
            record(n, state: n % 10 == 0 ? .failed : .succeeded, mode: n % 2 == 0 ? "podman" : "docker",
                   prompt: n == 42 ? "Fix the Flaky test" : nil, at: base)
        })
        _ = reopened()
        var q = RunIndex.Query(since: base.addingTimeInterval(90 * 60))
        #expect(store.rows(q).count == 10)  // runs 90…99
        q = RunIndex.Query(states: [.failed])
        #expect(store.rows(q).count == 10)
        q.modes = ["docker"]
        #expect(store.rows(q).isEmpty)  // the failed ones are the even, podman, ones
        q = RunIndex.Query()
        q.promptContains = "flaky TEST"
        #expect(store.rows(q).map(\.id) == [record(42).id])
        // Pages down and back up meet exactly.
        let all = store.rows(RunIndex.Query()).map(\.id)
        var page = RunIndex.Query(limit: 30)
        let first = store.rows(page)
        page.olderThan = (first.last!.createdAt, first.last!.id)
        let second = store.rows(page)
        #expect((first + second).map(\.id) == Array(all.prefix(60)))
        var up = RunIndex.Query(limit: 30)
        up.newerThan = (second.first!.createdAt, second.first!.id)
        #expect(store.rows(up).map(\.id) == first.map(\.id))
    }

    @Test func aSaveKilledHalfWayIsReadAgainFromItsFile() throws {
        _ = reopened()
        var r = record(1, state: .running)
        try save(r)
        // What a ccdeck killed between its two index writes leaves: the file newer than the row.
        let index = try #require(store.index)
        r.state = .succeeded
        try index.put(r, json: try RunStore.encoder.encode(record(1, state: .running)), dirty: "t1")
        try RunStore.encoder.encode(r).write(to: URL(fileURLWithPath: store.recordPath(for: r.id)))
        // And a folder deleted while its row said it was going.
        let gone = record(2)
        try save(gone)
        try index.markDirty(gone.id, token: "removing")
        try FileManager.default.removeItem(atPath: store.directory(for: gone.id))
        let again = try #require(reopened())
        #expect(try again.row(id: r.id)?.state == .succeeded)
        #expect(try again.row(id: gone.id) == nil)
    }

    /// `ccdeck run` opens the index on a thread of its own while it reads its token (issue 15):
    /// the run's first save meets that open whichever comes first, even when the open is a
    /// first indexing of an older store, and the index ends up holding every run once.
    @Test func anIndexOpenedAheadMeetsTheRunsFirstSave() throws {
        try writeOldStore((0..<600).map { record($0) })
        RunIndexes.shared.forget(store)
        store.openIndexAhead()
        var fresh = record(900, state: .starting)
        let lock = try store.create(fresh)
        defer { lock.release() }
        fresh.state = .running
        try store.save(fresh)
        let index = try #require(store.index)
        #expect(try index.count() == 601)
        #expect(try index.row(id: fresh.id)?.state == .running)
        // A second process's look finds the same, from the files.
        let again = try #require(reopened())
        #expect(try again.count() == 601 && again.isBuilt)
        #expect(try again.row(id: fresh.id)?.state == .running)
    }

    @Test func aRepairNeverUndoesAWriterThatFinishedMeanwhile() throws {
        _ = reopened()
        let index = try #require(store.index)
        let old = record(3, state: .running)
        var new = old
        new.state = .succeeded
        try index.put(old, json: try RunStore.encoder.encode(old), dirty: "writer")
        // The repairer read the old file; the writer then finished (file and clean row).
        try index.repair { _ in
            try? index.put(new, json: try! RunStore.encoder.encode(new), dirty: nil)  // the writer's last step, first
            return (old, try! RunStore.encoder.encode(old))
        }
        #expect(try index.row(id: old.id)?.state == .succeeded)
    }

    @Test(arguments: ["truncated", "garbage", "deleted"])
    func aDamagedOrDeletedIndexIsBuiltAgainFromTheFiles(damage: String) throws {
        try writeOldStore((0..<20).map { record($0) })
        _ = reopened()
        RunIndexes.shared.forget(store)
        switch damage {
        case "truncated": truncate(store.indexPath, 100)
        case "garbage": try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: store.indexPath))
        default: unlink(store.indexPath)
        }
        unlink(store.indexPath + "-wal")
        unlink(store.indexPath + "-shm")
        let index = try #require(store.index)
        #expect(try index.count() == 20)
        if damage != "deleted" {
            let aside = try FileManager.default.contentsOfDirectory(atPath: store.root).filter { $0.hasPrefix("runs.db.damaged-") }
            #expect(aside.count == 1, "the damaged file is kept aside, not deleted")
        }
    }

    @Test func removingARunTakesItsRowAndNothingElse() throws {
        _ = reopened()
        for n in 0..<3 { try save(record(n)) }
        try store.remove(record(1).id)
        #expect(store.rows(RunIndex.Query()).map(\.id) == [record(2).id, record(0).id])
        #expect(!FileManager.default.fileExists(atPath: store.directory(for: record(1).id)))
    }

    @Test func totalsFromTheIndexAreTheRecordsTotals() throws {
        _ = reopened()
        let now = Date()
        // Today, five days ago (this week or the last, by the day), ten days ago (always before this week).
        for n in 0..<30 {
            try save(record(n, state: n % 3 == 0 ? .failed : .succeeded, at: now.addingTimeInterval(-Double(n % 3) * 5 * 86_400)))
        }
        let fromRecords = RunTotals.of(store.list(), now: now, byBackend: true)
        #expect(store.totals(now: now, byBackend: true) == fromRecords)
    }
}
