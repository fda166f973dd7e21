import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the agent did in a folder ccdeck made, read in this process when it is simple enough to
/// say without git: files added whole, and `package.json` left as ccdeck wrote it or deleted.
/// Anything else (package.json edited, a `.git*` name, a path git would quote, a special file,
/// something unreadable, more than a small workspace) is nil, and git reads it as before. The
/// answer is what git's would be, byte for byte (tested against git).
enum FreshFolderReading {
    /// Beyond these, git reads the folder (its reading streams; this one holds the files).
    static let maxFiles = 512
    static let maxBytes = 1 << 20
    /// Names looked at, folders included (a tree of empty folders is git's to walk too).
    static let maxNames = 4096
    /// Folders deep, so the walk's recursion stays small on any thread's stack.
    static let maxDepth = 64

    static func read(workspace: String) -> (changes: WorkspaceChanges, patch: Data)? {
        var entries: [WholeFilePatch.Entry] = []
        var total = 0, names = 0
        var packageJSONSeen = false
        func walk(_ directory: String, _ prefix: [UInt8], depth: Int) -> Bool {
            guard depth <= maxDepth, let dir = opendir(directory) else { return false }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = Self.name(of: entry)
                if name == [0x2E] || name == [0x2E, 0x2E] { continue }
                names += 1
                if names > maxNames { return false }
                // git's own names (.git, .gitignore, .gitattributes, …) change what git reads, and
                // names Windows would read as them (`git~1`, `.git.`) git refuses to add.
                if name.count >= 4, name[0] == 0x2E, String(decoding: name[1...3], as: UTF8.self).lowercased() == "git" { return false }
                if name.contains(UInt8(ascii: "~")) { return false }
                let path = prefix + name
                let full = directory + "/" + String(decoding: name, as: UTF8.self)
                guard WholeFilePatch.printsPlain(path) else { return false }
                var st = stat()
                guard lstat(full, &st) == 0 else { return false }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    guard walk(full, path + [0x2F], depth: depth + 1) else { return false }
                    continue
                case S_IFREG, S_IFLNK: break
                default: return false
                }
                let isLink = st.st_mode & S_IFMT == S_IFLNK
                total += Int(st.st_size)
                guard entries.count < maxFiles, total <= maxBytes, let content = isLink ? link(full) : contents(full) else { return false }
                if path == Array("package.json".utf8) {
                    // As ccdeck wrote it (mode included): no change; else git says how it changed.
                    guard !isLink, st.st_mode & S_IXUSR == 0, content == Array(Workspace.packageJSON.utf8) else { return false }
                    packageJSONSeen = true
                    continue
                }
                let mode = isLink ? "120000" : st.st_mode & S_IXUSR != 0 ? "100755" : "100644"
                entries.append(.init(path: path, mode: mode, content: content, change: .added))
            }
            return true
        }
        guard walk(workspace, [], depth: 0) else { return nil }
        if !packageJSONSeen {
            entries.append(.init(path: Array("package.json".utf8), mode: "100644", content: Array(Workspace.packageJSON.utf8), change: .deleted))
        }
        entries.sort { $0.path.lexicographicallyPrecedes($1.path) }
        let files = entries.map { e -> WorkspaceChanges.File in
            // `--numstat`: a whole file's lines on its side, none on the other; nothing for a binary one.
            let lines = e.isBinary ? nil : e.lineCount, none = e.isBinary ? nil : 0
            let added = e.change == .added
            return WorkspaceChanges.File(kind: added ? .added : .deleted, path: String(decoding: e.path, as: UTF8.self),
                                         size: Int64(e.content.count), additions: added ? lines : none, deletions: added ? none : lines)
        }
        return (WorkspaceChanges(baseline: "the snapshot taken at its start", files: files), Data(WholeFilePatch.patch(entries)))
    }

    /// A directory entry's name, as bytes.
    static func name(of entry: UnsafeMutablePointer<dirent>) -> [UInt8] {
        withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
    }

    /// A regular file's bytes, never through a link or a pipe put in its place since it was looked at.
    private static func contents(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, Int(st.st_size) <= maxBytes else { return nil }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var filled = 0
        while filled < out.count {
            let n = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            filled += n
        }
        // Grown since: git would have read more; let it.
        var probe: UInt8 = 0
        return Glibc.read(fd, &probe, 1) == 0 ? out : nil
    }

    private static func link(_ path: String) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count)
        return n > 0 && n < buffer.count ? Array(buffer[..<n]) : nil
    }
}
