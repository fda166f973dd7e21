import Foundation

/// What a run changed in its workspace, against what was there when it started: in a plain
/// folder, a snapshot ccdeck took (a git tree in the run's folder); in a git repository, its
/// `HEAD` (neither `HEAD` nor the index is touched). The patch is kept beside the record in
/// `changes.diff`, the list in `changes.json`.
public struct WorkspaceChanges: Sendable, Codable, Equatable {
    public struct File: Sendable, Codable, Equatable {
        public enum Kind: String, Sendable, Codable { case added, modified, deleted }
        public var kind: Kind
        public var path: String
        /// Bytes now (added, modified) or before (deleted).
        public var size: Int64?
        /// Lines added and removed; nil for a binary file.
        public var additions: Int?
        public var deletions: Int?

        public init(kind: Kind, path: String, size: Int64? = nil, additions: Int? = nil, deletions: Int? = nil) {
            self.kind = kind
            self.path = path
            self.size = size
            self.additions = additions
            self.deletions = deletions
        }
    }

    /// `snapshot` (a plain folder) or `git HEAD`.
    public var baseline: String
    public var files: [File]
    /// The patch was cut at this many bytes (the list is whole).
    public var patchCutAt: Int?

    public init(baseline: String, files: [File], patchCutAt: Int? = nil) {
        self.baseline = baseline
        self.files = files
        self.patchCutAt = patchCutAt
    }

    public var summary: Summary {
        Summary(added: files.filter { $0.kind == .added }.count, modified: files.filter { $0.kind == .modified }.count,
                deleted: files.filter { $0.kind == .deleted }.count,
                additions: files.compactMap(\.additions).reduce(0, +), deletions: files.compactMap(\.deletions).reduce(0, +))
    }

    /// The counts a record keeps.
    public struct Summary: Sendable, Codable, Equatable {
        public var added: Int
        public var modified: Int
        public var deleted: Int
        public var additions: Int
        public var deletions: Int

        public init(added: Int, modified: Int, deleted: Int, additions: Int, deletions: Int) {
            self.added = added
            self.modified = modified
            self.deleted = deleted
            self.additions = additions
            self.deletions = deletions
        }

        public var isEmpty: Bool { added + modified + deleted == 0 }

        /// `2 added, 1 modified, 1 deleted (+40 −3)` or `no changes`.
        public var label: String {
            if isEmpty { return "no changes" }
            var parts: [String] = []
            if added > 0 { parts.append("\(added) added") }
            if modified > 0 { parts.append("\(modified) modified") }
            if deleted > 0 { parts.append("\(deleted) deleted") }
            return parts.joined(separator: ", ") + " (+\(additions) −\(deletions))"
        }
    }

    /// `git diff --name-status -z` and `--numstat -z` (no renames) into the list; sizes come after.
    public static func files(nameStatus: Data, numstat: Data) -> [File] {
        var counts: [String: (Int?, Int?)] = [:]
        let stat = nameStatus.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        // numstat -z: "ADDED\tDELETED\tPATH\0" ("-\t-\t" for binary).
        for entry in numstat.split(separator: 0) {
            let parts = String(decoding: entry, as: UTF8.self).split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            counts[String(parts[2])] = (Int(parts[0]), Int(parts[1]))
        }
        var files: [File] = []
        var i = 0
        while i + 1 < stat.count {
            let status = stat[i], path = stat[i + 1]
            i += 2
            let kind: File.Kind
            switch status.first {
            case "A": kind = .added
            case "D": kind = .deleted
            case "M", "T": kind = .modified
            default: continue
            }
            let (plus, minus) = counts[path] ?? (nil, nil)
            files.append(File(kind: kind, path: path, additions: plus, deletions: minus))
        }
        return files
    }

    /// The lines `runs diff --stat` and the dashboard print: one a file, then the totals (inert).
    public func statLines() -> [String] {
        var out = files.map { f -> String in
            let mark = f.kind == .added ? "A" : f.kind == .deleted ? "D" : "M"
            let lines = f.additions.map { "+\($0) −\(f.deletions ?? 0)" } ?? "binary"
            let size = f.size.map { " \(Self.bytes($0))" } ?? ""
            return "\(mark) \(InertText.line(f.path))  \(lines)\(size)"
        }
        out.append(summary.label + " against " + baseline)
        return out
    }

    /// The patch as inert lines (at most `limit`, then a line saying how many more).
    public static func patchLines(_ patch: Data, limit: Int = .max) -> [String] {
        var lines = patch.split(separator: 0x0A, omittingEmptySubsequences: false)
        if patch.last == 0x0A { lines.removeLast() }
        var out = lines.prefix(limit).map { InertText.line(String(decoding: $0, as: UTF8.self)) }
        if lines.count > limit { out.append("(\(lines.count - limit) more lines: ccdeck runs diff shows them all)") }
        return out
    }

    /// Why a run has no recorded changes, in words.
    public static func absentReason(_ record: RunRecord) -> String {
        record.state.isLive ? "it is still running: its changes are known when it ends"
            : record.changesBaseline == nil ? "its workspace was not compared (git was not installed, or an older ccdeck ran it)"
            : "its comparison did not finish (ccdeck died before the end?)"
    }

    static func bytes(_ n: Int64) -> String {
        n < 1024 ? "\(n) B" : n < 1 << 20 ? String(format: "%.1f KiB", Double(n) / 1024) : String(format: "%.1f MiB", Double(n) / 1_048_576)
    }
}
