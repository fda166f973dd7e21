import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Sandboxes that are host process groups, each with a folder under `root` holding ccdeck's
/// mark (`mark.json`), its workspace's path, the group's pid and, once it ended, its exit status.
/// Local mode keeps its sandboxes this way (and the tests' proc backend).
public struct FolderSandboxes: Sendable {
    public let root: String
    public let kind: BackendKind

    public init(root: String, kind: BackendKind) {
        self.root = root
        self.kind = kind
    }

    /// A sandbox's folder; nil for a name that could leave `root`.
    public func directory(_ name: String) -> String? {
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else { return nil }
        return root + "/" + name
    }

    /// Makes the folder (private to its user) with the mark and the workspace's path.
    public func create(_ spec: RunSpec) throws -> String {
        guard let dir = directory(spec.sandboxName) else { throw BackendError.unavailable(kind, "bad sandbox name") }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let mark = try RunStore.encoder.encode(spec.mark)
        // Written whole by rename, unsynced: they are made on the run's path to its start.
        try RunStore.replace(dir + "/mark.json", with: mark)
        try RunStore.replace(dir + "/workspace", with: Data(spec.workspace.utf8))
        return dir
    }

    /// `sh -c` around a command: writes the group's pid first and the exit status last.
    public static let wrapper = #"d=$1; shift; echo $$ > "$d/pid"; "$@"; s=$?; echo $s > "$d/exit"; exit $s"#

    public func workspace(_ name: String) -> String? {
        directory(name).flatMap { try? String(contentsOfFile: $0 + "/workspace", encoding: .utf8) }
    }

    public func stop(_ name: String) -> Bool {
        guard let pid = pid(name) else { return false }
        return kill(-pid, SIGTERM) == 0 || errno == ESRCH
    }

    public func outcome(_ name: String) -> SandboxOutcome? {
        guard let dir = directory(name), FileManager.default.fileExists(atPath: dir + "/mark.json") else { return nil }
        let started = (try? FileManager.default.attributesOfItem(atPath: dir + "/pid"))?[.modificationDate] as? Date
        let exit = (try? String(contentsOfFile: dir + "/exit", encoding: .utf8)).flatMap {
            Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return SandboxOutcome(startedAt: started, exitCode: exit, running: isRunning(name))
    }

    /// Kills what still runs and deletes the folder; true when there was one.
    @discardableResult
    public func remove(_ name: String) throws -> Bool {
        guard let dir = directory(name) else { return false }
        if let pid = pid(name), isRunning(name) { kill(-pid, SIGKILL) }
        guard FileManager.default.fileExists(atPath: dir) else { return false }
        try FileManager.default.removeItem(atPath: dir)
        return true
    }

    public func resources(store: String) -> [SandboxResource] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.sorted().compactMap { name in
            guard let dir = directory(name), let data = FileManager.default.contents(atPath: dir + "/mark.json"),
                  let mark = try? RunStore.decoder.decode([String: String].self, from: data),
                  mark[Mark.store] == store else { return nil }
            let created = (try? FileManager.default.attributesOfItem(atPath: dir + "/mark.json"))?[.modificationDate] as? Date
            return SandboxResource(id: name, name: name, backend: kind, runID: mark[Mark.run],
                                   state: isRunning(name) ? "running" : "exited", createdAt: created)
        }
    }

    public func pid(_ name: String) -> pid_t? {
        guard let dir = directory(name), let text = try? String(contentsOfFile: dir + "/pid", encoding: .utf8) else { return nil }
        return pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func isRunning(_ name: String) -> Bool {
        guard let pid = pid(name), let dir = directory(name) else { return false }
        return kill(pid, 0) == 0 && !FileManager.default.fileExists(atPath: dir + "/exit")
    }
}
