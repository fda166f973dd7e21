import CSQLite
import Foundation

/// A thin, synchronous handle on one SQLite database: what the run index needs and no more.
/// One handle per thread at a time (callers serialize: `RunIndex` holds a lock around it).
final class SQLiteDatabase {
    struct Failure: Error, CustomStringConvertible {
        var code: Int32
        var message: String
        var description: String { message }
        /// The file is not a database, or is damaged: rebuild it from the records.
        var isDamage: Bool { [SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_CANTOPEN].contains(code & 0xFF) }
    }

    private var db: OpaquePointer?
    let path: String

    init(path: String) throws {
        self.path = path
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(db)
            db = nil
            throw Failure(code: rc, message: "\(path): \(message)")
        }
        // Several ccdeck processes share the file: writers wait for each other (briefly), readers
        // never wait for writers (WAL), and a commit survives a crash of ccdeck (the OS keeps it).
        // No syncs (not even a checkpoint's): the index is made from the record files, which are
        // not synced either. After a power cut a damaged file is set aside and made again from
        // them, and one left behind them is made again by `ccdeck runs reindex`. A sync beside
        // a run made its engine's own syncs wait.
        sqlite3_busy_timeout(db, 5000)
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA synchronous=OFF")
        // No mmap: its pages would count in the process's memory (a dashboard scrolling 100,000
        // runs peaked at 170 MiB with it, 50 MiB without), and the indexes keep reads small.
    }

    deinit { sqlite3_close_v2(db) }

    func error(_ rc: Int32) -> Failure {
        Failure(code: rc, message: "\(path): " + String(cString: sqlite3_errmsg(db)))
    }

    func execute(_ sql: String) throws {
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc) }
    }

    /// Runs `body` in one transaction (IMMEDIATE: the write lock is taken at once, so two
    /// writers never deadlock upgrading a read).
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    func prepare(_ sql: String) throws -> Statement {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(db, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc) }
        return Statement(statement, database: self)
    }

    var changes: Int { Int(sqlite3_changes(db)) }

    /// One prepared statement; values are bound by position (1-based) and read by column (0-based).
    final class Statement {
        private let handle: OpaquePointer
        private let database: SQLiteDatabase

        init(_ handle: OpaquePointer, database: SQLiteDatabase) {
            self.handle = handle
            self.database = database
        }

        deinit { sqlite3_finalize(handle) }

        enum Value {
            case text(String)
            case int(Int64)
            case real(Double)
            case blob(Data)
            case null
        }

        @discardableResult
        func bind(_ values: [Value]) -> Statement {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
            for (i, value) in values.enumerated() {
                let index = Int32(i + 1)
                switch value {
                case .text(let s): sqlite3_bind_text(handle, index, s, -1, ccdeck_sqlite_transient())
                case .int(let n): sqlite3_bind_int64(handle, index, n)
                case .real(let d): sqlite3_bind_double(handle, index, d)
                case .blob(let data):
                    data.withUnsafeBytes { raw in
                        _ = sqlite3_bind_blob(handle, index, raw.baseAddress, Int32(raw.count), ccdeck_sqlite_transient())
                    }
                case .null: sqlite3_bind_null(handle, index)
                }
            }
            return self
        }

        /// The next row; false when there is none.
        func step() throws -> Bool {
            let rc = sqlite3_step(handle)
            if rc == SQLITE_ROW { return true }
            if rc == SQLITE_DONE { return false }
            throw database.error(rc)
        }

        func run() throws {
            while try step() {}
        }

        func text(_ column: Int32) -> String? {
            guard let p = sqlite3_column_text(handle, column) else { return nil }
            return String(cString: p)
        }

        func int(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
        func real(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
        func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

        func blob(_ column: Int32) -> Data {
            let count = Int(sqlite3_column_bytes(handle, column))
            guard count > 0, let p = sqlite3_column_blob(handle, column) else { return Data() }
            return Data(bytes: p, count: count)
        }
    }
}
