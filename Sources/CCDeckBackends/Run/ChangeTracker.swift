import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a run changed in its workspace, with the host's git as the engine, never the user's
/// repository state: a private bare repository in the run's folder (`changes.git`) holds the
/// snapshot of a plain folder and the objects git makes while comparing; a workspace that is a
/// git repository is compared against its own `HEAD` tree, read through an alternate object
/// directory, so its `HEAD`, index and object store are left as they were. A folder ccdeck made
/// is read against the store's repository of its tree (read only), with the run's own index and
/// object folder (`changes-index`, `changes-objects`): no repository is made for it.
public struct ChangeTracker: Sendable {
    public let git: String
    public let workspace: String
    public let runDirectory: String
    public var timeout: TimeInterval = 60
    /// Where the objects of a fresh folder's tree are kept once for all runs (the store's folder),
    /// so comparing a folder ccdeck made costs no git process for its baseline; nil: made in the
    /// run's own repository each time.
    public let sharedDirectory: String?
    /// Whether a folder ccdeck made, holding only new files, is read without git (off: always git,
    /// which the tests compare it with).
    var readsFreshFoldersItself = true
    /// The patch is kept up to this size; the list of files is always whole.
    public static let maxPatchBytes = 8 << 20

    var privateRepository: String { runDirectory + "/changes.git" }
    /// What reading a fresh folder against the store's tree writes: the run's index and objects.
    var runIndex: String { runDirectory + "/changes-index" }
    var runObjects: String { runDirectory + "/changes-objects" }
    var userRepository: String { workspace + "/.git" }

    /// nil when git is not installed (the run then records no changes, and says nothing is known).
    public init?(workspace: String, runDirectory: String, environment: [String: String], sharedDirectory: String? = nil) {
        guard let git = ChildProcess.resolve("git", environment: environment) else { return nil }
        self.git = git
        self.workspace = workspace
        self.runDirectory = runDirectory
        self.sharedDirectory = sharedDirectory
    }

    /// The baseline, taken before the agent starts: `git:<tree>` for a repository with a `HEAD`,
    /// else the folder as it is (its own `.gitignore` files honoured) in the private index
    /// (`snapshot-index:1`), whose tree is written when first compared.
    public func begin() -> String? {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: userRepository, isDirectory: &isDir), isDir.boolValue,
           let tree = run(["rev-parse", "--verify", "-q", "HEAD^{tree}"], env: ["GIT_DIR": userRepository])?.trimmed, !tree.isEmpty {
            return "git:" + tree
        }
        guard initPrivate(), run(["add", "-A"], env: privateEnvironment(alternate: false)) != nil else { return nil }
        return Self.indexBaseline
    }

    /// A plain folder's baseline held in the private index: one git process on the way to the
    /// sandbox's start (`add -A`); its tree is written from that index when first compared,
    /// beside the sandbox's wind-down, and noted (`ccdeck-baseline-tree`) before the index moves on.
    public static let indexBaseline = "snapshot-index:1"

    /// The tree of the index baseline: noted, or written now from the untouched private index.
    private func indexTree() -> String? {
        let noted = privateRepository + "/ccdeck-baseline-tree"
        if let tree = Self.notedTree(noted) { return tree }
        guard let tree = run(["write-tree"], env: privateEnvironment(alternate: false))?.trimmed, !tree.isEmpty,
              (try? RunStore.replace(noted, with: Data(tree.utf8))) != nil else { return nil }
        return tree
    }

    /// What changed since `baseline`; writes `changes.json` and `changes.diff` beside the record
    /// and drops the private repository.
    public func finish(baseline: String) -> WorkspaceChanges? {
        guard let comparison = compare(baseline: baseline) else {
            try? FileManager.default.removeItem(atPath: privateRepository)
            return nil
        }
        return settle(comparison)
    }

    /// One reading of what changed, and the instant it began (the file system's own clock).
    public struct Comparison: Sendable {
        public var changes: WorkspaceChanges
        public var patch: Data
        public var began: timespec
    }

    /// The baseline of a folder ccdeck made itself (`Workspace.createFresh`): known without
    /// reading it, so nothing runs beside the sandbox's start; its tree is made when compared.
    public static let freshBaseline = "fresh:1"

    /// Whether the private repository can be dropped as soon as a comparison is written: a
    /// later reading can make the baseline again (a fresh folder's, or the user's `HEAD`), where a
    /// snapshot of a user's plain folder lives only in that repository.
    public static func canRemake(_ baseline: String) -> Bool {
        baseline == freshBaseline || baseline.hasPrefix("git:")
    }

    /// What changed since `baseline`, read now; writes nothing beside the record yet.
    public func compare(baseline: String) -> Comparison? {
        let parts = baseline.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        let began = Self.fileSystemNow()
        if baseline == Self.freshBaseline, readsFreshFoldersItself, let read = FreshFolderReading.read(workspace: workspace) {
            return Comparison(changes: read.changes, patch: read.patch, began: began)
        }
        var (kind, base) = (parts[0], parts[1])
        let env: [String: String]
        if baseline == Self.freshBaseline, let shared = sharedFreshTree(), let readOnly = sharedEnvironment(shared.repository) {
            (kind, base, env) = ("snapshot", shared.tree, readOnly)
        } else {
            guard initPrivate() else { return nil }
            if baseline == Self.freshBaseline {
                guard let made = freshTree() else { return nil }
                (kind, base) = ("snapshot", made)
            } else if baseline == Self.indexBaseline {
                guard let made = indexTree() else { return nil }
                (kind, base) = ("snapshot", made)
            }
            env = privateEnvironment(alternate: kind == "git")
        }
        let tree = base
        guard tree.allSatisfy(\.isHexDigit) else { return nil }
        let fromGit = kind == "git"
        // A repository's tracked files stay tracked even when ignored: start from HEAD's tree.
        if fromGit { guard run(["read-tree", tree], env: env) != nil else { return nil } }
        guard run(["add", "-A"], env: env) != nil else { return nil }
        // The three views of the same comparison (what each file became, its lines, the patch)
        // from one git: each process is CPU the sandbox's wind-down would otherwise have.
        guard let combined = run(["diff", "--cached", "--no-renames", "-z", "--raw", "--numstat", "-p", "--no-color",
                                  "--no-ext-diff", tree], env: env) else { return nil }
        let views = Self.views(combined.data)
        var files = WorkspaceChanges.files(nameStatus: views.nameStatus, numstat: views.numstat)
        var oldSizes: [String: Int64] = [:]
        if files.contains(where: { $0.kind == .deleted }),
           let listing = run(["ls-tree", "-r", "-l", "-z", tree], env: env) {
            for entry in listing.data.split(separator: 0) {
                // "<mode> <type> <object> <size>\t<path>"
                let text = String(decoding: entry, as: UTF8.self)
                guard let tab = text.firstIndex(of: "\t") else { continue }
                let size = text[..<tab].split(separator: " ", omittingEmptySubsequences: true).last.flatMap { Int64($0) }
                oldSizes[String(text[text.index(after: tab)...])] = size
            }
        }
        for i in files.indices {
            if files[i].kind == .deleted {
                files[i].size = oldSizes[files[i].path]
            } else {
                var st = stat()
                if lstat(workspace + "/" + files[i].path, &st) == 0 { files[i].size = Int64(st.st_size) }
            }
        }
        var patch = views.patch
        var changes = WorkspaceChanges(baseline: fromGit ? "git HEAD" : "the snapshot taken at its start", files: files)
        if patch.count > Self.maxPatchBytes {
            patch = patch.prefix(Self.maxPatchBytes)
            changes.patchCutAt = Self.maxPatchBytes
        }
        return Comparison(changes: changes, patch: patch, began: began)
    }

    /// `git diff -z --raw --numstat -p` read as its three views: the raw entries as `--name-status
    /// -z` prints them (status, path), the numstat entries, and the patch, which follows the empty
    /// field that ends the lists (a path is never empty).
    static func views(_ out: Data) -> (nameStatus: Data, numstat: Data, patch: Data) {
        let bytes = [UInt8](out)
        var nameStatus: [UInt8] = [], numstat: [UInt8] = []
        var i = 0
        func field() -> ArraySlice<UInt8>? {
            guard let end = bytes[i...].firstIndex(of: 0) else { return nil }
            defer { i = end + 1 }
            return bytes[i..<end]
        }
        // ":<mode> <mode> <object> <object> <status>\0<path>\0"
        while i < bytes.count, bytes[i] == UInt8(ascii: ":") {
            guard let header = field(), let path = field() else { break }
            nameStatus += (header.split(separator: UInt8(ascii: " ")).last ?? []) + [0] + path + [0]
        }
        // "<added>\t<deleted>\t<path>\0"
        while i < bytes.count, bytes[i] != 0 {
            guard let entry = field() else { break }
            numstat += entry + [0]
        }
        if i < bytes.count { i += 1 }
        return (Data(nameStatus), Data(numstat), Data(bytes[i...]))
    }

    /// Writes the comparison beside the record and drops the private repository.
    public func settle(_ comparison: Comparison) -> WorkspaceChanges {
        write(comparison)
        discard()
        return comparison.changes
    }

    /// Writes the comparison beside the record (`changes.diff`, `changes.json`); the private
    /// repository stays, for a later reading.
    public func write(_ comparison: Comparison) {
        try? RunStore.replace(runDirectory + "/changes.diff", with: comparison.patch)
        if let json = try? RunStore.encoder.encode(comparison.changes) {
            try? RunStore.replace(runDirectory + "/changes.json", with: json)
        }
    }

    /// Drops the private repository, or the index and objects a fresh folder's reading wrote
    /// (once nothing will be read again).
    public func discard() {
        try? FileManager.default.removeItem(atPath: privateRepository)
        unlink(runIndex)
        try? FileManager.default.removeItem(atPath: runObjects)
    }

    /// The clock the kernel stamps files with (the coarse wall clock): a change made after this
    /// instant carries a ctime at or after it.
    static func fileSystemNow() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &now)
        return now
    }

    /// Whether nothing in the workspace (outside `.git` folders, which the comparison does not
    /// read) was created, changed, renamed or deleted since `instant`: every change sets the
    /// ctime of the file or of the folder that holds it, and no one can set a ctime back. One
    /// `lstat` a file, in this process; anything unreadable counts as changed.
    public func unchanged(since instant: timespec) -> Bool {
        func after(_ t: timespec) -> Bool { t.tv_sec > instant.tv_sec || (t.tv_sec == instant.tv_sec && t.tv_nsec >= instant.tv_nsec) }
        func walk(_ path: String) -> Bool {
            var st = stat()
            guard lstat(path, &st) == 0 else { return false }
            if after(st.st_ctim) || after(st.st_mtim) { return false }
            guard (st.st_mode & S_IFMT) == S_IFDIR else { return true }
            guard let dir = opendir(path) else { return false }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = String(decoding: FreshFolderReading.name(of: entry), as: UTF8.self)
                if name == "." || name == ".." || name == ".git" { continue }
                if !walk(path + "/" + name) { return false }
            }
            return true
        }
        return walk(workspace)
    }

    // MARK: git

    /// Makes what a comparison with `baseline` needs before the agent ends (a fresh folder's tree),
    /// so a comparison that waits for the sandbox's end (a workspace copied back) finds it made.
    public func prepare(baseline: String) {
        if baseline == Self.freshBaseline, sharedFreshTree() == nil, initPrivate() { _ = freshTree() }
        if baseline == Self.indexBaseline { _ = indexTree() }
    }

    /// The tree of a folder as `Workspace.createFresh` makes it, written in the private repository
    /// (once: its id is kept there), when the store keeps none.
    private func freshTree() -> String? {
        let noted = privateRepository + "/ccdeck-fresh-tree"
        if let tree = Self.notedTree(noted) { return tree }
        guard let tree = makeFreshTree(env: privateEnvironment(alternate: false), scratch: runDirectory + "/changes-fresh") else { return nil }
        try? RunStore.replace(noted, with: Data(tree.utf8))
        return tree
    }

    /// A tree id kept in a file, or nil.
    private static func notedTree(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let tree = String(decoding: data, as: UTF8.self)
        return !tree.isEmpty && tree.allSatisfy(\.isHexDigit) ? tree : nil
    }

    /// Writes a fresh folder's tree (made at `scratch`, then deleted) into the repository `env` names.
    private func makeFreshTree(env: [String: String], scratch: String) -> String? {
        let fm = FileManager.default
        try? fm.removeItem(atPath: scratch)
        defer { try? fm.removeItem(atPath: scratch) }
        guard (try? Workspace.createFresh(at: scratch)) != nil else { return nil }
        let env = env.merging(["GIT_WORK_TREE": scratch]) { $1 }
        guard run(["add", "-A"], env: env) != nil, let tree = run(["write-tree"], env: env)?.trimmed, !tree.isEmpty else { return nil }
        return tree
    }

    /// The store's repository of the fresh folder's tree (`fresh-<digest of its files>.git`): its
    /// path and the tree. Made by the first run that needs it, aside and then renamed
    /// into place, so runs racing to make it never see half of one.
    private func sharedFreshTree() -> (repository: String, tree: String)? {
        guard let directory = sharedDirectory else { return nil }
        let repository = directory + "/fresh-" + Workspace.freshDigest + ".git"
        let noted = repository + "/ccdeck-fresh-tree"
        if let tree = Self.notedTree(noted) { return (repository, tree) }
        let scratch = directory + "/.fresh-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let made = scratch + "/repository.git"
        guard Self.initBare(made),
              let tree = makeFreshTree(env: ["GIT_DIR": made, "GIT_INDEX_FILE": scratch + "/index"], scratch: scratch + "/fresh"),
              (try? RunStore.replace(made + "/ccdeck-fresh-tree", with: Data(tree.utf8))) != nil else { return nil }
        // Another run may have put its own in place meanwhile: the same tree, kept.
        _ = rename(made, repository)
        return Self.notedTree(noted).map { (repository, $0) }
    }

    /// The private bare repository, made by hand: what `git init --bare` writes that git needs
    /// (HEAD, objects, refs) costs no process, on the way to the sandbox's start.
    private func initPrivate() -> Bool {
        FileManager.default.fileExists(atPath: privateRepository + "/HEAD") || Self.initBare(privateRepository)
    }

    /// A bare repository made by hand at `path`; its files written without a sync (a run's
    /// scratch, like the record: it outlives ccdeck, not necessarily a power cut).
    private static func initBare(_ path: String) -> Bool {
        let fm = FileManager.default
        do {
            for folder in ["objects/info", "objects/pack", "refs/heads", "refs/tags"] {
                try fm.createDirectory(atPath: path + "/" + folder, withIntermediateDirectories: true)
            }
            try RunStore.replace(path + "/config", with: Data("[core]\n\trepositoryformatversion = 0\n\tbare = true\n".utf8))
            try RunStore.replace(path + "/HEAD", with: Data("ref: refs/heads/main\n".utf8))
            return true
        } catch {
            return false
        }
    }

    /// The store's repository of the fresh tree over the workspace, read only (no repository made
    /// per run): the run's own index, and its own folder for the objects `add -A` writes.
    private func sharedEnvironment(_ repository: String) -> [String: String]? {
        guard mkdir(runObjects, 0o777) == 0 || errno == EEXIST else { return nil }
        return ["GIT_DIR": repository, "GIT_WORK_TREE": workspace, "GIT_INDEX_FILE": runIndex,
                "GIT_OBJECT_DIRECTORY": runObjects, "GIT_ALTERNATE_OBJECT_DIRECTORIES": repository + "/objects"]
    }

    /// The private repository over the workspace, its own index; with `alternate`, the user's
    /// objects readable (never written).
    private func privateEnvironment(alternate: Bool) -> [String: String] {
        var env = ["GIT_DIR": privateRepository, "GIT_WORK_TREE": workspace, "GIT_INDEX_FILE": privateRepository + "/ccdeck-index"]
        if alternate { env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = userRepository + "/objects" }
        return env
    }

    struct Out: Sendable {
        var data: Data
        var trimmed: String { String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// git with no user or system config (no hooks, no pagers, no surprises), a bounded wait, in
    /// its work tree. In it always: a command that needs no work tree (`write-tree`) does not
    /// go there itself, yet writes the index back, and git looks at an entry as old as that index
    /// (written in the same second) by its path from where it runs; from elsewhere the file is
    /// not found, the entry is not marked for a second look, and a same-size rewrite in that
    /// second was never seen (1 run in 30 lost a change that way).
    private func run(_ args: [String], env extra: [String: String]) -> Out? {
        var env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                   "HOME": runDirectory, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"]
        env.merge(extra) { $1 }
        let place = env["GIT_WORK_TREE"].map { ["-C", $0] } ?? []
        guard let out = try? ProcessRunner.run(Command(git, place + ["-c", "core.quotepath=false", "-c", "core.autocrlf=false",
                                                                     "--no-optional-locks"] + args, environment: env),
                                               timeout: timeout),
              out.status.succeeded else { return nil }
        return Out(data: Data(out.stdout.utf8))
    }
}
