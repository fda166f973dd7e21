import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a typed workspace cannot be given to a run. `description` is one line in plain words
/// that names the folder as it was typed (made inert), e.g. `~/x: no such folder`.
public enum WorkspaceProblem: Error, Equatable, Sendable, CustomStringConvertible {
    /// Nothing was typed (callers treat that as "a fresh workspace" before asking).
    case empty
    /// A line break or NUL: no engine argument and no record line can carry it.
    case unprintable(typed: String)
    /// Both `,` and `:`: `-v` splits on `:` and `--mount` on `,`, so neither syntax can carry it.
    case commaAndColon(typed: String)
    /// `~name` for a user this system does not know.
    case unknownUser(typed: String, user: String)
    case notFound(typed: String, path: String)
    case notAFolder(typed: String, path: String, isFile: Bool)
    case notWritable(typed: String, path: String)
    /// A folder on the way cannot be searched (stat said EACCES), or another stat error.
    case unreachable(typed: String, path: String, reason: String)

    public var description: String {
        switch self {
        case .empty:
            return "no folder given"
        case .unprintable(let typed):
            return "\(Self.shown(typed, nil)): a folder name with a line break or NUL byte cannot be mounted"
        case .commaAndColon(let typed):
            return "\(Self.shown(typed, nil)): a folder name with both `,` and `:` cannot be mounted by the engine; rename it or use another folder"
        case .unknownUser(let typed, let user):
            return "\(Self.shown(typed, nil)): no user named \(InertText.line(user.prefix(64)))"
        case .notFound(let typed, let path):
            return "\(Self.shown(typed, path)): no such folder"
        case .notAFolder(let typed, let path, let isFile):
            return "\(Self.shown(typed, path)) is \(isFile ? "a file, not a folder" : "not a folder")"
        case .notWritable(let typed, let path):
            return "\(Self.shown(typed, path)) is not writable by you (uid \(getuid())): the agent writes there as its owner"
        case .unreachable(let typed, let path, let reason):
            return "\(Self.shown(typed, path)): cannot be reached (\(reason))"
        }
    }

    /// The folder as typed, with where it resolved to when that differs and is not obvious.
    static func shown(_ typed: String, _ resolved: String?) -> String {
        let t = InertText.line(typed.count > 200 ? typed.prefix(200) + "…" : Substring(typed))
        guard let resolved, resolved != typed, !typed.hasPrefix("~"), !typed.hasPrefix("/") else { return t }
        // A relative name resolves against the folder ccdeck was started in, which the user may not have in mind.
        return "\(t) (\(InertText.line(resolved)))"
    }
}

/// Checks a workspace folder a person typed (the dashboard's launch form, `ccdeck run
/// --workspace`) before an engine sees it: engines turn a relative name into a named volume,
/// create a missing path as root, and answer `~/x`, files and some characters with their own
/// boilerplate.
public enum WorkspaceCheck {
    /// The absolute, standardized folder `typed` names, or why it cannot be a workspace.
    ///
    /// `~` and `~/…` expand to `home`, `~name/…` to that user's home; a relative path is taken
    /// against `cwd`; `.` and `..` are resolved. The folder must exist, be a folder (a symbolic
    /// link to one is fine), and be writable by this process's user; its name must hold no line
    /// break or NUL, and not both `,` and `:` (a `:` alone is fine: it travels as `--mount`).
    /// Leading and trailing white space (a pasted path's newline) is ignored.
    public static func resolve(_ typed: String, cwd: String, home: String) -> Result<String, WorkspaceProblem> {
        let text = typed.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return .failure(.empty) }
        if text.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0 }) { return .failure(.unprintable(typed: text)) }

        var path: String
        if text == "~" || text.hasPrefix("~/") {
            path = home + text.dropFirst()
        } else if text.hasPrefix("~") {
            let user = String(text.dropFirst().prefix { $0 != "/" })
            guard let dir = homeOf(user) else { return .failure(.unknownUser(typed: text, user: user)) }
            path = dir + text.dropFirst(1 + user.count)
        } else if text.hasPrefix("/") {
            path = text
        } else {
            path = cwd + "/" + text
        }
        path = URL(fileURLWithPath: path).standardizedFileURL.path
        if path.count > 1, path.hasSuffix("/") { path.removeLast() }

        if path.contains(",") && path.contains(":") { return .failure(.commaAndColon(typed: text)) }

        var st = stat()
        if stat(path, &st) != 0 {
            let e = errno
            if e == ENOENT || e == ENOTDIR { return .failure(.notFound(typed: text, path: path)) }
            return .failure(.unreachable(typed: text, path: path, reason: String(cString: strerror(e))))
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            return .failure(.notAFolder(typed: text, path: path, isFile: (st.st_mode & S_IFMT) == S_IFREG))
        }
        guard access(path, W_OK) == 0 else { return .failure(.notWritable(typed: text, path: path)) }
        return .success(path)
    }

    /// `resolve` with this process's working directory and `$HOME` (else the password database's home).
    public static func resolve(_ typed: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> Result<String, WorkspaceProblem> {
        let home = environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? NSHomeDirectory()
        return resolve(typed, cwd: FileManager.default.currentDirectoryPath, home: home)
    }

    private static func homeOf(_ user: String) -> String? {
        guard !user.isEmpty, let pw = getpwnam(user), let dir = pw.pointee.pw_dir else { return nil }
        return String(cString: dir)
    }
}
