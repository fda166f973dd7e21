import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum RunStoreError: Error, CustomStringConvertible, Equatable {
    case notFound(String)
    case ambiguous(String, [String])
    case unreadable(String, String)

    public var description: String {
        switch self {
        case .notFound(let id): return "no run with id \(InertText.line(id)) (see `ccdeck runs ls`)"
        case .ambiguous(let id, let matches):
            return "\(InertText.line(id)) matches several runs: \(matches.prefix(5).joined(separator: ", "))"
        case .unreadable(let path, let why): return "cannot use \(path): \(why)"
        }
    }
}

/// Runs on disk: `$XDG_STATE_HOME/ccdeck/runs/<id>/` holds `record.json`, the full raw
/// `output.jsonl`, `stderr.log` and, for runs ccdeck made one for, the `workspace/`.
public struct RunStore: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public init(environment: [String: String]) {
        self.init(root: Self.defaultRoot(environment: environment))
    }

    public static func defaultRoot(environment: [String: String]) -> String {
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/ccdeck" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.local/state/ccdeck"
    }

    /// Labels on every resource this store's runs create: a ccdeck with another store
    /// (another user, host or state directory) never takes them for its own.
    public var storeID: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (ProcessInfo.processInfo.hostName + ":" + root).utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return String(String(hash, radix: 16).suffix(12))
    }

    public var runsDirectory: String { root + "/runs" }
    public func directory(for id: String) -> String { runsDirectory + "/" + id }
    public func recordPath(for id: String) -> String { directory(for: id) + "/record.json" }
    public func outputPath(for id: String) -> String { directory(for: id) + "/output.jsonl" }
    public func stderrPath(for id: String) -> String { directory(for: id) + "/stderr.log" }
    public func workspacePath(for id: String) -> String { directory(for: id) + "/workspace" }
    /// The whole prompt, when the record keeps only its beginning.
    public func promptPath(for id: String) -> String { directory(for: id) + "/prompt.txt" }
    /// Held (flock) by whichever ccdeck drives the run, for as long as it does.
    public func driverLockPath(for id: String) -> String { directory(for: id) + "/driver.lock" }

    /// The run's directory (private to the user) and the driver's lock, with no record yet: the
    /// driver writes the first record once what it must say before the sandbox starts is settled
    /// (its egress), so it is written once. The lock comes first, so no reader ever sees a live
    /// record without a driver; listings skip a folder without a record.
    public func createFolder(for record: RunRecord) throws -> DriverLock {
        try checkRoom()
        try FileManager.default.createDirectory(atPath: runsDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try FileManager.default.createDirectory(atPath: directory(for: record.id), withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        guard let lock = DriverLock(path: driverLockPath(for: record.id)) else {
            throw RunStoreError.unreadable(driverLockPath(for: record.id), "cannot take the run's lock")
        }
        return lock
    }

    /// The least free space a run starts with: its record, and room for its first output.
    public static let minimumFreeBytes: UInt64 = 16 << 20

    /// Says in words what stops runs being stored here: a part of the path that is a file, or a
    /// disk without room.
    public func checkRoom() throws {
        var path = runsDirectory
        var isDir: ObjCBool = false
        while !FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            let parent = (path as NSString).deletingLastPathComponent
            if parent == path || parent.isEmpty { break }
            path = parent
        }
        guard isDir.boolValue else {
            throw RunStoreError.unreadable(InertText.line(path), "it is a file, not a folder (check XDG_STATE_HOME)")
        }
        var fs = statvfs()
        if statvfs(path, &fs) == 0, fs.f_blocks > 0 {  // pseudo file systems (/proc) have no blocks to count
            let (product, overflow) = UInt64(fs.f_bavail).multipliedReportingOverflow(by: UInt64(fs.f_frsize))
            let free = overflow ? UInt64.max : product
            if free < Self.minimumFreeBytes {
                throw RunStoreError.unreadable(InertText.line(path), "the disk holding it is full "
                    + "(\(free >> 10) KiB free, runs need at least \(Self.minimumFreeBytes >> 20) MiB)")
            }
        }
    }

    /// Left by a ccdeck that stops a run it does not drive, so the driving one records a stop,
    /// not a failure, when its sandbox goes down.
    public func stopRequestPath(for id: String) -> String { directory(for: id) + "/stop-requested" }

    public func recordStopRequest(_ id: String, by who: String) {
        guard Self.isSafeID(id) else { return }
        FileManager.default.createFile(atPath: stopRequestPath(for: id), contents: Data(who.utf8),
                                       attributes: [.posixPermissions: 0o600])
    }

    public func stopRequest(_ id: String) -> String? {
        FileManager.default.contents(atPath: stopRequestPath(for: id)).map { InertText.line(String(decoding: $0, as: UTF8.self)) }
    }

    /// Blocks until whoever drives the run lets go of it (it finished, or it died): how a
    /// dashboard hears of another ccdeck's run ending without asking again and again.
    public func waitForDriver(_ id: String) {
        guard Self.isSafeID(id) else { return }
        let fd = open(driverLockPath(for: id), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        while flock(fd, LOCK_SH) != 0 && errno == EINTR {}
        close(fd)
    }

    /// Takes over driving a run whose driver is gone; nil when another ccdeck holds it.
    public func takeOver(_ id: String) -> DriverLock? {
        guard Self.isSafeID(id) else { return nil }
        return DriverLock(path: driverLockPath(for: id))
    }

    /// Writes the record atomically (a reader never sees half a file) and its row in the index:
    /// the row marked as being written first, then the file, then the row clean (see `RunIndex`).
    public func save(_ record: RunRecord) throws {
        let data = try Self.encoder.encode(record)
        let index = self.index
        let token = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        // A row already there needs only its mark; its columns are written once, clean.
        if let index, (try? index.markDirty(record.id, token: token)) != true {
            try? index.put(record, json: data, dirty: token)
        }
        try Self.replace(recordPath(for: record.id), with: data)
        Self.faultPoint("after-record-write")
        try? index?.put(record, json: data, dirty: nil)
    }

    /// `CCDECK_FAULT=NAME`: ccdeck kills itself (SIGKILL) at that point, for the tests of what a
    /// crash there leaves behind. Nothing else reads it.
    static func faultPoint(_ name: String) {
        if let fault = getenv("CCDECK_FAULT"), String(cString: fault) == name { kill(getpid(), SIGKILL) }
    }

    /// Replaces the file at `path` with `data` in one step (a new file renamed over it): a reader,
    /// or a ccdeck killed mid-write, sees the old whole file or the new one, never half of either.
    /// No fsync: a record outlives ccdeck, not necessarily a power cut (ext4 and xfs flush a file
    /// renamed over another anyway), and a sync a save made runs' starts and ends wait on the disk.
    public static func replace(_ path: String, with data: Data) throws {
        let temporary = path + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RunStoreError.unreadable(path, String(cString: strerror(errno))) }
        var failure = data.withUnsafeBytes { writeFully(fd, $0) }
        if close(fd) != 0 && failure == 0 { failure = errno }
        if failure == 0 && rename(temporary, path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw RunStoreError.unreadable(path, String(cString: strerror(failure)))
        }
    }

    /// The store's index (`runs.db`), opened once per process; nil when it cannot be (the
    /// listings then read the record files, as before the index).
    public var index: RunIndex? { RunIndexes.shared.index(for: self) }

    /// Opens the index on a thread of its own, for a command about to save a run: the open
    /// (SQLite, its schema and dirty rows checked, ~0.8 ms) then happens while the command reads
    /// its token, and the run's first save finds it open (or waits on the same lock for it).
    public func openIndexAhead() {
        let store = self
        Thread.detachNewThread { _ = store.index }
    }

    /// Told how a first indexing of an older store goes (runs done, runs in all), from 500 runs on.
    public static var onIndexProgress: ((Int, Int) -> Void)? {
        get { RunIndexes.progress }
        set { RunIndexes.progress = newValue }
    }

    /// The path of the index file.
    public var indexPath: String { root + "/runs.db" }

    /// A record and its JSON in this ccdeck's shape (an older record's `container` reads as
    /// `sandbox`, as `runs ls --json` always printed it), or nil.
    func loadWithData(_ id: String) -> (RunRecord, Data)? {
        guard let data = FileManager.default.contents(atPath: recordPath(for: id)),
              var record = try? Self.decoder.decode(RunRecord.self, from: data) else { return nil }
        record.id = id
        return (record, (try? Self.encoder.encode(record)) ?? data)
    }

    /// Every run folder's name (not every one need hold a readable record).
    func runIDs() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: runsDirectory)) ?? []).filter(Self.isSafeID)
    }

    /// Builds the index again from every record file (`ccdeck runs reindex`).
    public func reindex(progress: @escaping (Int, Int) -> Void) throws -> Int {
        guard let index else { throw RunStoreError.unreadable(indexPath, "the index cannot be opened") }
        let ids = runIDs()
        try index.build(ids: ids, load: loadWithData, progress: progress)
        return try index.count()
    }

    /// Rows of the index matching `query`, newest first; without an index, the same from the
    /// record files (slow on a large store, but never wrong).
    public func rows(_ query: RunIndex.Query) -> [RunIndex.Row] {
        if let index, let rows = try? index.rows(query) { return rows }
        // Newest first; the page just above a cursor is the nearest one.
        let matching = list().compactMap { r in (try? Self.encoder.encode(r)).map { RunIndex.Row(r, json: $0) } }
            .filter(query.matches)
        let limit = query.limit ?? .max
        return query.newerThan == nil ? Array(matching.prefix(limit)) : Array(matching.suffix(limit))
    }

    public func load(_ id: String) throws -> RunRecord {
        let path = recordPath(for: id)
        guard let data = FileManager.default.contents(atPath: path) else { throw RunStoreError.notFound(id) }
        do {
            // The folder's name is the run's id, whatever the file inside says: a record claiming
            // `"id": "../x"` must not lead a reader into another run's folder.
            var record = try Self.decoder.decode(RunRecord.self, from: data)
            record.id = id
            return record
        } catch {
            throw RunStoreError.unreadable(path, "not a ccdeck run record")
        }
    }

    /// Every readable record, newest first, read from the record files themselves (the index's
    /// rows are for listings: `rows`).
    public func list() -> [RunRecord] {
        runIDs().compactMap { try? load($0) }.sorted { $0.createdAt > $1.createdAt }
    }

    /// Today's and this week's figures, read from the index's columns (no record is decoded).
    public func totals(now: Date, calendar: Calendar = .current, byBackend: Bool = false) -> RunTotals {
        let week = calendar.dateInterval(of: .weekOfYear, for: now)?.start ?? calendar.startOfDay(for: now)
        func item(_ r: RunIndex.Row) -> RunTotals.Item {
            RunTotals.Item(mode: r.mode.rawValue, state: r.state, day: r.endedAt ?? r.createdAt, cost: r.costUSD,
                           live: r.state.isLive && !driverLost(row: r))
        }
        var items: [RunTotals.Item]
        if let index, let finished = try? index.finishedSince(week) {
            items = finished.map { RunTotals.Item(mode: $0.mode, state: $0.state, day: $0.day, cost: $0.cost, live: false) }
            items += rows(RunIndex.Query(states: [.starting, .running])).map(item)
        } else {
            items = rows(RunIndex.Query()).filter { ($0.endedAt ?? $0.createdAt) >= week || $0.state.isLive }.map(item)
        }
        return RunTotals.of(items: items, now: now, calendar: calendar, byBackend: byBackend)
    }

    /// The live runs (starting or running, whether or not their driver is alive).
    public func liveRecords() -> [RunRecord] {
        rows(RunIndex.Query(states: [.starting, .running])).compactMap { try? $0.record() }
    }

    /// The number of whole lines in an output file, after cutting a last line a dead driver left
    /// half-written: a re-read of the run's output then continues exactly after them.
    public func completeLines(at path: String) -> Int {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return 0 }
        if data.last != 0x0A {
            let keep = (data.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
            truncate(path, off_t(keep))
            return data[..<keep].reduce(0) { $1 == 0x0A ? $0 + 1 : $0 }
        }
        return data.reduce(0) { $1 == 0x0A ? $0 + 1 : $0 }
    }

    /// A run by its full id, an unambiguous prefix of it, or `latest` for the newest.
    public func find(_ idOrPrefix: String) throws -> RunRecord {
        if idOrPrefix == "latest" {
            guard let newest = rows(RunIndex.Query(limit: 1)).first else { throw RunStoreError.notFound(idOrPrefix) }
            return try load(newest.id)
        }
        guard Self.isSafeID(idOrPrefix) else { throw RunStoreError.notFound(idOrPrefix) }
        if FileManager.default.fileExists(atPath: recordPath(for: idOrPrefix)) { return try load(idOrPrefix) }
        let ids = (try? index?.ids(prefix: idOrPrefix, limit: 6)) ?? runIDs().filter { $0.hasPrefix(idOrPrefix) }
        switch ids.count {
        case 0: throw RunStoreError.notFound(idOrPrefix)
        case 1: return try load(ids[0])
        default: throw RunStoreError.ambiguous(idOrPrefix, ids.sorted())
        }
    }

    /// An id (or prefix) that names a folder inside `runs/` and nothing outside it.
    static func isSafeID(_ id: String) -> Bool {
        !id.isEmpty && !id.contains("/") && !id.hasPrefix(".")
    }

    /// Deletes a run's directory: record, output and the workspace ccdeck made for it.
    public func remove(_ id: String) throws {
        guard Self.isSafeID(id) else { throw RunStoreError.notFound(id) }
        guard FileManager.default.fileExists(atPath: recordPath(for: id)) else { throw RunStoreError.notFound(id) }
        // The row is marked first: a ccdeck killed mid-way leaves it dirty, and the next repair
        // drops it once the folder is gone (or keeps it, read again, if the folder stayed).
        let index = self.index
        try? index?.markDirty(id, token: "removing")
        // The record goes first, so a half-deleted folder is no longer a run.
        unlink(recordPath(for: id))
        try FileManager.default.removeItem(atPath: directory(for: id))
        try? index?.delete(id)
    }

    /// A run whose record says live but whose driving ccdeck is gone was left by a ccdeck that
    /// died. The driver holds the run's lock while it lives; the kernel lets go of it the moment
    /// the process dies (even by SIGKILL, even while it is a zombie nobody reaped), so this is
    /// true at once and never fooled by a recycled pid. Records from before the lock fall back
    /// to the pid. Runs from another host are never called lost from here.
    public func driverLost(_ record: RunRecord) -> Bool {
        driverLost(id: record.id, state: record.state, host: record.host, pid: record.driverPID)
    }

    public func driverLost(row: RunIndex.Row) -> Bool {
        driverLost(id: row.id, state: row.state, host: row.host, pid: row.driverPID)
    }

    func driverLost(id: String, state: RunState, host: String, pid driverPID: Int32) -> Bool {
        guard state.isLive, host == ProcessInfo.processInfo.hostName else { return false }
        let fd = open(driverLockPath(for: id), O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            defer { close(fd) }
            return flock(fd, LOCK_SH | LOCK_NB) == 0  // nobody holds it (closing releases ours)
        }
        // A pid from a file: 0 or negative would signal a whole process group, and always "live".
        guard driverPID > 0 else { return true }
        return kill(driverPID, 0) != 0 && errno == ESRCH
    }

    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601WithMilliseconds
        return e
    }()

    public static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601WithMilliseconds
        return d
    }()
}

extension JSONEncoder.DateEncodingStrategy {
    /// How ccdeck writes instants everywhere (records and `--json` output alike).
    public static let iso8601WithMilliseconds = custom { date, encoder in
        var c = encoder.singleValueContainer()
        try c.encode(RFC3339.format(date))
    }
}

extension JSONDecoder.DateDecodingStrategy {
    static let iso8601WithMilliseconds = custom { decoder in
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let d = EngineOutput.parseRFC3339(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "bad date \(s)")
        }
        return d
    }
}

/// The lock a run's driver holds for as long as it drives the run (an exclusive `flock` on
/// `driver.lock`). Released on `release`, on deinit, or by the kernel when the process dies.
public final class DriverLock: @unchecked Sendable {
    private var fd: Int32

    /// Takes the lock without waiting; nil when someone else holds it.
    init?(path: String) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
    }

    deinit { release() }

    public func release() {
        if fd >= 0 { close(fd); fd = -1 }
    }
}

/// Appends lines to a file. Lines gather in a small buffer that is written whenever the
/// producer has no more to hand over (`flush`, called after each read from the agent) or the
/// buffer fills: one `write` per burst, and nothing waits in memory longer than the burst.
final class AppendLog {
    private let fd: Int32
    private let path: String
    private var buffer: [UInt8] = []
    private let limit = 1 << 16
    /// The first write that failed, in words naming the file (a full disk, a removed folder).
    private(set) var failure: String?

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RunStoreError.unreadable(path, String(cString: strerror(errno))) }
        buffer.reserveCapacity(limit)
    }

    deinit {
        flush()
        close(fd)
    }

    func append(line: Data) {
        if buffer.count + line.count + 1 > limit { flush() }
        if line.count + 1 > limit {
            writeAll(Array(line) + [0x0A])
            return
        }
        buffer.append(contentsOf: line)
        buffer.append(0x0A)
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        writeAll(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: [UInt8]) {
        let error = bytes.withUnsafeBytes { writeFully(fd, $0) }
        if error != 0 && failure == nil {
            let folder = (path as NSString).deletingLastPathComponent
            failure = "cannot write \(path): \(String(cString: strerror(error)))"
                + (error == ENOSPC || error == EDQUOT ? " (the disk holding \(folder) is full)" : "")
        }
    }
}

/// Writes all of `raw` to `fd` (again after a short write or EINTR): 0, or the errno that stopped it.
func writeFully(_ fd: Int32, _ raw: UnsafeRawBufferPointer) -> Int32 {
    var offset = 0
    while offset < raw.count {
        let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return errno
        }
        offset += n
    }
    return 0
}
