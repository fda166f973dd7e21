import CCDeckBackends
import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A backend that exists only in the tests: its "sandbox" is a plain process group on the host
/// running the agent (the real Claude Code CLI, or a script) in the workspace, and its resources
/// are folders under `$CCDECK_PROC_ROOT`, each carrying ccdeck's mark in `mark.json`. It isolates
/// nothing; it proves that a backend is one file behind the run contract plus one registration
/// line (`Tests/TestHost/main.swift`), and that the CLI and the dashboard drive it end to end
/// without knowing it.
public struct ProcBackend: SandboxBackend {
    public static let kind: BackendKind = "proc"
    public let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public var kind: BackendKind { Self.kind }

    public var traits: BackendTraits {
        BackendTraits(modeLetter: "T", isolation: .none, tokenDelivery: .environmentByName, workspace: .inPlace,
                      workspaceInside: nil, mark: .labels, resourceNoun: "process", canRun: true,
                      usesImage: false, takesRuntimeArguments: false)
    }

    var root: String? { environment["CCDECK_PROC_ROOT"].flatMap { $0.hasPrefix("/") ? $0 : nil } }
    var agent: String? { environment["CCDECK_PROC_AGENT"] }
    var folders: FolderSandboxes? { root.map { FolderSandboxes(root: $0, kind: kind) } }
    var eventsLog: String? { root.map { $0 + "/events.log" } }

    public func probe(timeout: TimeInterval) -> BackendStatus {
        guard let root else { return BackendStatus(kind: kind, state: .notInstalled, detail: "CCDECK_PROC_ROOT is not set") }
        guard let agent, access(agent, X_OK) == 0 else {
            return BackendStatus(kind: kind, state: .notInstalled, detail: "CCDECK_PROC_AGENT is not an executable")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            return BackendStatus(kind: kind, state: .daemonDown, detail: "\(root) is not a folder")
        }
        return BackendStatus(kind: kind, state: .ready, clientVersion: "1", detail: "test backend", executable: agent)
    }

    public func prepare(_ spec: RunSpec, build: ImageBuild?, cancel: Cancellation,
                        progress: (String) -> Void) throws -> Preparation {
        guard probe(timeout: 1).state == .ready else { throw BackendError.unavailable(kind, probe(timeout: 1).detail) }
        return Preparation(agentUser: "uid \(geteuid()) (the host process's user)")
    }

    public func start(_ spec: RunSpec, preparation: Preparation) throws -> AgentLaunch {
        guard let folders, let agent else { throw BackendError.unavailable(kind, "no root") }
        let dir = try folders.create(spec)
        try FileManager.default.createDirectory(atPath: dir + "/home", withIntermediateDirectories: true)
        var env = spec.environment.filter { spec.passEnvironment.contains($0.key) || ["PATH", "LANG"].contains($0.key) }
        if let token = spec.token { env[token.name] = token.value }  // the agent's environment: never argv
        env["HOME"] = dir + "/home"
        if geteuid() == 0 { env["IS_SANDBOX"] = "1" }  // Claude Code skips permissions as root only when told it is sandboxed
        let command = Command("sh", ["-c", FolderSandboxes.wrapper, "sh", dir, "sh", "-c", #"cd "$1" || exit 97; shift; exec "$@""#,
                                     "sh", spec.workspace, agent, "-p", "--dangerously-skip-permissions"] + RunSpec.agentArguments,
                              environment: env)
        let child = try ChildProcess.spawn(command, stdin: .pipe)
        event("start \(spec.sandboxName)")
        return AgentLaunch(process: child)
    }

    public func stop(_ sandbox: SandboxRef) -> Bool { folders?.stop(sandbox.name) ?? false }
    public func outcome(_ sandbox: SandboxRef) -> SandboxOutcome? { folders?.outcome(sandbox.name) }

    public func remove(_ sandbox: SandboxRef) throws {
        if try folders?.remove(sandbox.name) == true { event("remove \(sandbox.name)") }
    }

    public func resources(store: String) throws -> [SandboxResource] { folders?.resources(store: store) ?? [] }

    public func attachCommand(_ sandbox: SandboxRef) -> Command? {
        guard let workspace = folders?.workspace(sandbox.name) else { return nil }
        return Command("sh", ["-c", #"cd "$1" && exec sh"#, "sh", workspace], environment: environment)
    }

    /// One line per start and removal, appended by this backend: the dashboard follows it by push.
    public func eventsCommand(store: String) -> Command? {
        guard let log = eventsLog else { return nil }
        if !FileManager.default.fileExists(atPath: log) { FileManager.default.createFile(atPath: log, contents: nil) }
        return Command("tail", ["-n", "0", "-F", log], environment: environment)
    }

    private func event(_ line: String) {
        guard let log = eventsLog else { return }
        let fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
