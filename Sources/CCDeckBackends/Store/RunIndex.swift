import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The index of a store's runs: one SQLite file (`runs.db`, WAL) beside `runs/`, so that a
/// listing reads a page of rows instead of decoding every `record.json`.
///
/// The record files are the truth; the index is rebuilt from them, never the other way round.
/// A save goes in three steps: the row is written marked `dirty` (with a token of its own),
/// then `record.json`, then the row again, clean. A ccdeck killed between any two leaves a
/// dirty row, which the next one to open the index reads again from its file (or drops, when
/// the file is gone). A reader that repairs a dirty row only replaces it if it is still marked
/// with the token it read, so it never undoes a writer that finished meanwhile.
public final class RunIndex: @unchecked Sendable {
    /// One run as a listing needs it: its columns, and its whole record for whoever wants more.
    public struct Row: Sendable {
        public var id: String
        public var createdAt: Date
        public var endedAt: Date?
        public var state: RunState
        public var mode: BackendKind
        public var isolation: Isolation?
        public var turns: Int?
        public var toolErrors: Int?
        public var costUSD: Double?
        public var prompt: String
        public var driverPID: Int32
        public var host: String
        /// `record.json` as written (JSON made by ccdeck: splicing it into other JSON is safe).
        public var recordJSON: Data

        public var wallTime: TimeInterval? { endedAt.map { $0.timeIntervalSince(createdAt) } }

        /// The row a record makes, `json` being that record as stored.
        public init(_ r: RunRecord, json: Data) {
            self.init(id: r.id, createdAt: r.createdAt, endedAt: r.endedAt, state: r.state, mode: r.mode, isolation: r.isolation,
                      turns: r.turns, toolErrors: r.toolErrors, costUSD: r.costUSD, prompt: r.prompt, driverPID: r.driverPID,
                      host: r.host, recordJSON: json)
        }

        public init(id: String, createdAt: Date, endedAt: Date?, state: RunState, mode: BackendKind, isolation: Isolation?,
                    turns: Int?, toolErrors: Int?, costUSD: Double?, prompt: String, driverPID: Int32, host: String,
                    recordJSON: Data) {
            self.id = id
            self.createdAt = createdAt
            self.endedAt = endedAt
            self.state = state
            self.mode = mode
            self.isolation = isolation
            self.turns = turns
            self.toolErrors = toolErrors
            self.costUSD = costUSD
            self.prompt = prompt
            self.driverPID = driverPID
            self.host = host
            self.recordJSON = recordJSON
        }

        public func record() throws -> RunRecord {
            var record = try RunStore.decoder.decode(RunRecord.self, from: recordJSON)
            record.id = id
            return record
        }
    }

    /// What a listing asks for. Every filter is optional; rows come newest first.
    public struct Query: Sendable {
        public var limit: Int?
        public var since: Date?
        /// Older than this (strictly): for the next page after a row.
        public var olderThan: (date: Date, id: String)?
        /// Newer than this (strictly): the page just above a row (still returned newest first).
        public var newerThan: (date: Date, id: String)?
        public var states: [RunState] = []
        public var modes: [String] = []
        public var promptContains: String?
        /// Runs that ended (or, never having ended, started) before this instant.
        public var endedBefore: Date?

        public init(limit: Int? = nil, since: Date? = nil, states: [RunState] = []) {
            self.limit = limit
            self.since = since
            self.states = states
        }

        /// The same filter over one row (for a store read without its index).
        public func matches(_ r: Row) -> Bool {
            if let since, r.createdAt < since { return false }
            if let (date, id) = olderThan, !(r.createdAt < date || (r.createdAt == date && r.id < id)) { return false }
            if let (date, id) = newerThan, !(r.createdAt > date || (r.createdAt == date && r.id > id)) { return false }
            if let endedBefore, (r.endedAt ?? r.createdAt) >= endedBefore { return false }
            if !states.isEmpty && !states.contains(r.state) { return false }
            if !modes.isEmpty && !modes.contains(r.mode.rawValue) { return false }
            if let text = promptContains, !r.prompt.lowercased().contains(text.lowercased()) { return false }
            return true
        }
    }

    let database: SQLiteDatabase
    private let lock = NSLock()

    /// 3: the records in their own table (a scan of `runs` reads its small rows only), and a
    /// covering index for the totals.
    static let schemaVersion = 3
    static let rowColumns = "id, created, ended, state, mode, isolation, turns, tool_errors, cost, prompt, driver_pid, host"
    /// The row's columns and its record, for a SELECT over `runs LEFT JOIN records`.
    static let columns = "runs.id, created, ended, state, mode, isolation, turns, tool_errors, cost, prompt, driver_pid, host, json"

    /// Opens (creating when missing) the index at `path`.
    init(path: String) throws {
        database = try SQLiteDatabase(path: path)
        let version = try database.prepare("PRAGMA user_version")
        let found = try version.step() ? Int(version.int(0)) : 0
        // The usual open: the file already has this shape, nothing to make.
        if found == Self.schemaVersion { return }
        // New, or another shape (an earlier index): made again from the record files, the truth.
        try database.execute("DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS records; DROP TABLE IF EXISTS meta;")
        try database.execute("""
            CREATE TABLE IF NOT EXISTS runs (
              id TEXT PRIMARY KEY, created REAL NOT NULL, ended REAL, state TEXT NOT NULL, mode TEXT NOT NULL,
              isolation TEXT, turns INTEGER, tool_errors INTEGER, cost REAL, prompt TEXT NOT NULL,
              driver_pid INTEGER NOT NULL, host TEXT NOT NULL, dirty TEXT);
            CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, json BLOB NOT NULL);
            CREATE INDEX IF NOT EXISTS runs_created ON runs(created DESC, id DESC);
            CREATE INDEX IF NOT EXISTS runs_day ON runs(COALESCE(ended, created), state, mode, cost);
            CREATE INDEX IF NOT EXISTS runs_dirty ON runs(dirty) WHERE dirty IS NOT NULL;
            CREATE INDEX IF NOT EXISTS runs_live ON runs(state) WHERE state IN ('starting', 'running');
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            PRAGMA user_version = \(Self.schemaVersion);
            """)
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Whether every record file of the store is in the index (set once a full build finished).
    public var isBuilt: Bool {
        (try? locked {
            let s = try database.prepare("SELECT value FROM meta WHERE key = 'built'")
            return try s.step() && s.text(0) == "\(Self.schemaVersion)"
        }) ?? false
    }

    // MARK: writing

    /// Writes the row for `record`; `dirty` marks it as being written (see the type's comment).
    public func put(_ record: RunRecord, json: Data, dirty: String?) throws {
        try locked {
            try database.transaction {
                try upsert(record, json: json, dirty: dirty)
            }
        }
    }

    private func upsert(_ r: RunRecord, json: Data, dirty: String?) throws {
        let s = try database.prepare("""
            INSERT INTO runs (\(Self.rowColumns), dirty) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET created = excluded.created, ended = excluded.ended, state = excluded.state,
              mode = excluded.mode, isolation = excluded.isolation, turns = excluded.turns, tool_errors = excluded.tool_errors,
              cost = excluded.cost, prompt = excluded.prompt, driver_pid = excluded.driver_pid, host = excluded.host,
              dirty = excluded.dirty
            """)
        func optInt(_ v: Int?) -> SQLiteDatabase.Statement.Value { v.map { .int(Int64($0)) } ?? .null }
        func optReal(_ v: Double?) -> SQLiteDatabase.Statement.Value { v.map { .real($0) } ?? .null }
        func optText(_ v: String?) -> SQLiteDatabase.Statement.Value { v.map { .text($0) } ?? .null }
        try s.bind([.text(r.id), .real(r.createdAt.timeIntervalSince1970), optReal(r.endedAt?.timeIntervalSince1970),
                    .text(r.state.rawValue), .text(r.mode.rawValue), optText(r.isolation?.rawValue), optInt(r.turns),
                    optInt(r.toolErrors), optReal(r.costUSD), .text(r.prompt), .int(Int64(r.driverPID)), .text(r.host),
                    optText(dirty)]).run()
        try database.prepare("INSERT OR REPLACE INTO records (id, json) VALUES (?, ?)").bind([.text(r.id), .blob(json)]).run()
    }

    public func delete(_ id: String) throws {
        try locked {
            try database.transaction {
                try database.prepare("DELETE FROM runs WHERE id = ?").bind([.text(id)]).run()
                try database.prepare("DELETE FROM records WHERE id = ?").bind([.text(id)]).run()
            }
        }
    }

    /// Marks a row as going away (its folder is being deleted): a ccdeck killed meanwhile leaves
    /// a dirty row whose file is gone, which the next repair drops.
    /// Whether there was such a row.
    @discardableResult
    public func markDirty(_ id: String, token: String) throws -> Bool {
        try locked {
            try database.prepare("UPDATE runs SET dirty = ? WHERE id = ?").bind([.text(token), .text(id)]).run()
            return database.changes > 0
        }
    }

    /// Copies what the write-ahead log holds into the file (never waiting for anyone), so the
    /// next ccdeck to open the index has little log to read: a process that ends without closing
    /// leaves its log behind, and each opening reads all of it. Asked by a run once its sandbox is
    /// on its way, off the run's path.
    public func checkpoint() {
        locked { try? database.execute("PRAGMA wal_checkpoint(PASSIVE)") }
    }

    // MARK: reading

    func row(_ s: SQLiteDatabase.Statement) -> Row? {
        // A state or mode this ccdeck does not know (a newer one wrote it) is shown, never dropped.
        guard let id = s.text(0), let mode = s.text(4) else { return nil }
        let state = s.text(3).flatMap(RunState.init(rawValue:)) ?? .unknown
        return Row(id: id, createdAt: Date(timeIntervalSince1970: s.real(1)),
                   endedAt: s.isNull(2) ? nil : Date(timeIntervalSince1970: s.real(2)), state: state, mode: BackendKind(mode),
                   isolation: s.text(5).flatMap(Isolation.init(rawValue:)), turns: s.isNull(6) ? nil : Int(s.int(6)),
                   toolErrors: s.isNull(7) ? nil : Int(s.int(7)), costUSD: s.isNull(8) ? nil : s.real(8),
                   prompt: s.text(9) ?? "", driverPID: Int32(truncatingIfNeeded: s.int(10)), host: s.text(11) ?? "",
                   recordJSON: s.blob(12))
    }

    public func rows(_ q: Query) throws -> [Row] {
        var conditions: [String] = []
        var values: [SQLiteDatabase.Statement.Value] = []
        if let since = q.since { conditions.append("created >= ?"); values.append(.real(since.timeIntervalSince1970)) }
        if let (date, id) = q.olderThan {
            conditions.append("(created < ? OR (created = ? AND runs.id < ?))")
            values += [.real(date.timeIntervalSince1970), .real(date.timeIntervalSince1970), .text(id)]
        }
        if let (date, id) = q.newerThan {
            conditions.append("(created > ? OR (created = ? AND runs.id > ?))")
            values += [.real(date.timeIntervalSince1970), .real(date.timeIntervalSince1970), .text(id)]
        }
        if let ended = q.endedBefore {
            conditions.append("COALESCE(ended, created) < ?")
            values.append(.real(ended.timeIntervalSince1970))
        }
        if !q.states.isEmpty {
            // Written out, not bound: the planner then sees the live runs' partial index applies.
            // (A state's raw value is one of ccdeck's own words: nothing to escape.)
            conditions.append("state IN (" + q.states.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")")
        }
        if !q.modes.isEmpty {
            conditions.append("mode IN (" + q.modes.map { _ in "?" }.joined(separator: ", ") + ")")
            values += q.modes.map { .text($0) }
        }
        if let text = q.promptContains {
            // instr: a plain substring, case-sensitive, no pattern characters to escape.
            conditions.append("(instr(lower(prompt), lower(?)) > 0)")
            values.append(.text(text))
        }
        var sql = "SELECT \(Self.columns) FROM runs LEFT JOIN records ON records.id = runs.id"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        // The page just above a row is the one nearest it: read upwards, handed back newest first.
        let upwards = q.newerThan != nil
        sql += upwards ? " ORDER BY created ASC, runs.id ASC" : " ORDER BY created DESC, runs.id DESC"
        if let limit = q.limit { sql += " LIMIT \(max(0, limit))" }
        return try locked {
            let s = try database.prepare(sql).bind(values)
            var out: [Row] = []
            while try s.step() { if let r = row(s) { out.append(r) } }
            return upwards ? out.reversed() : out
        }
    }

    /// What the totals need of the runs that ended (or started) since `since` and are not
    /// live: read from one covering index, no row touched.
    func finishedSince(_ since: Date) throws -> [(mode: String, state: RunState, day: Date, cost: Double?)] {
        try locked {
            let s = try database.prepare("""
                SELECT mode, state, COALESCE(ended, created), cost FROM runs
                WHERE COALESCE(ended, created) >= ? AND state NOT IN ('starting', 'running')
                """).bind([.real(since.timeIntervalSince1970)])
            var out: [(String, RunState, Date, Double?)] = []
            while try s.step() {
                out.append((s.text(0) ?? "", s.text(1).flatMap(RunState.init(rawValue:)) ?? .unknown,
                            Date(timeIntervalSince1970: s.real(2)), s.isNull(3) ? nil : s.real(3)))
            }
            return out
        }
    }

    public func row(id: String) throws -> Row? {
        try locked {
            let s = try database.prepare("SELECT \(Self.columns) FROM runs LEFT JOIN records ON records.id = runs.id WHERE runs.id = ?")
                .bind([.text(id)])
            return try s.step() ? row(s) : nil
        }
    }

    public func count() throws -> Int {
        try locked {
            let s = try database.prepare("SELECT count(*) FROM runs")
            return try s.step() ? Int(s.int(0)) : 0
        }
    }

    /// Ids starting with `prefix` (at most `limit`), for `runs show PREFIX`.
    public func ids(prefix: String, limit: Int) throws -> [String] {
        try locked {
            // A range on the primary key: the prefix needs no escaping.
            let s = try database.prepare("SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?")
                .bind([.text(prefix), .text(prefix + "\u{10FFFF}"), .int(Int64(limit))])
            var out: [String] = []
            while try s.step() { if let id = s.text(0) { out.append(id) } }
            return out
        }
    }

    // MARK: repair and build

    /// Reads again, from their files, the rows a ccdeck left half-written (killed mid-save).
    /// Returns how many were repaired.
    @discardableResult
    public func repair(load: (String) -> (RunRecord, Data)?) throws -> Int {
        let dirty: [(String, String)] = try locked {
            let s = try database.prepare("SELECT id, dirty FROM runs WHERE dirty IS NOT NULL")
            var out: [(String, String)] = []
            while try s.step() { if let id = s.text(0), let token = s.text(1) { out.append((id, token)) } }
            return out
        }
        for (id, token) in dirty {
            let loaded = load(id)
            try locked {
                try database.transaction {
                    // Still the same half-write? (A writer that finished meanwhile cleared it.)
                    let s = try database.prepare("SELECT 1 FROM runs WHERE id = ? AND dirty = ?").bind([.text(id), .text(token)])
                    guard try s.step() else { return }
                    if let (record, json) = loaded {
                        try upsert(record, json: json, dirty: nil)
                    } else {
                        try database.prepare("DELETE FROM runs WHERE id = ?").bind([.text(id)]).run()
                        try database.prepare("DELETE FROM records WHERE id = ?").bind([.text(id)]).run()
                    }
                }
            }
        }
        return dirty.count
    }

    /// Indexes every record file under the runs folder, in batches (one transaction each),
    /// telling `progress` how far it got; marks the index built at the end. Rows whose folder
    /// is gone are dropped.
    public func build(ids: [String], load: (String) -> (RunRecord, Data)?, progress: (Int, Int) -> Void) throws {
        let batch = 2_000
        var done = 0
        for start in stride(from: 0, to: ids.count, by: batch) {
            let slice = ids[start..<min(ids.count, start + batch)]
            let loaded = slice.compactMap(load)
            try locked {
                try database.transaction {
                    for (record, json) in loaded { try upsert(record, json: json, dirty: nil) }
                }
            }
            done += slice.count
            progress(done, ids.count)
        }
        let present = Set(ids)
        let known: [String] = try locked {
            let s = try database.prepare("SELECT id FROM runs")
            var out: [String] = []
            while try s.step() { if let id = s.text(0) { out.append(id) } }
            return out
        }
        try locked {
            try database.transaction {
                for id in known where !present.contains(id) {
                    try database.prepare("DELETE FROM runs WHERE id = ?").bind([.text(id)]).run()
                    try database.prepare("DELETE FROM records WHERE id = ?").bind([.text(id)]).run()
                }
                try database.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('built', ?)")
                    .bind([.text("\(Self.schemaVersion)")]).run()
            }
        }
    }
}

/// The index of each store this process uses, opened once: built from the record files the
/// first time (an older ccdeck's store), repaired where a ccdeck died mid-save, and made again
/// from the files when damaged or deleted.
final class RunIndexes: @unchecked Sendable {
    static let shared = RunIndexes()
    private let lock = NSLock()
    private var open: [String: RunIndex] = [:]
    /// Told how a first indexing goes (done, total); the CLI prints it.
    nonisolated(unsafe) static var progress: ((Int, Int) -> Void)?

    func index(for store: RunStore) -> RunIndex? {
        lock.lock()
        defer { lock.unlock() }
        if let index = open[store.root] { return index }
        guard let index = prepare(store) else { return nil }
        open[store.root] = index
        return index
    }

    /// Forgets an index (after its file was found damaged): the next use opens it again.
    func forget(_ store: RunStore) {
        lock.lock()
        open[store.root] = nil
        lock.unlock()
    }

    private func prepare(_ store: RunStore) -> RunIndex? {
        guard FileManager.default.fileExists(atPath: store.root) || (try? FileManager.default.createDirectory(
            atPath: store.root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])) != nil else { return nil }
        for attempt in 0..<2 {
            do {
                let index = try RunIndex(path: store.indexPath)
                if !index.isBuilt {
                    let ids = store.runIDs()
                    try index.build(ids: ids, load: store.loadWithData) { done, total in
                        if total >= 500 { Self.progress?(done, total) }
                    }
                }
                try index.repair(load: store.loadWithData)
                return index
            } catch let failure as SQLiteDatabase.Failure where failure.isDamage && attempt == 0 {
                // Damaged or not a database: set aside (never deleted: it may be looked at) and
                // made again from the record files, which are the truth.
                Self.setAside(store.indexPath)
            } catch {
                return nil
            }
        }
        return nil
    }

    static func setAside(_ path: String) {
        let stamp = Int(Date().timeIntervalSince1970)
        rename(path, path + ".damaged-\(stamp)")
        unlink(path + "-wal")
        unlink(path + "-shm")
    }
}
