import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Local mode: the host's own `claude` in a bubblewrap sandbox, no daemon. A fresh mount
/// namespace holds the host read-only, hides every home, `/tmp` and `/run` behind empty tmpfs
/// (so the user's credentials files, other runs and engine sockets are out of sight), and makes
/// the workspace the only writable host folder, at its own path. Its own PID, IPC and UTS
/// namespaces; the token travels in the environment by name (never `--setenv`, which is argv).
///
/// Egress: its own, empty network namespace (`--unshare-net`: loopback only). The one way out
/// is ccdeck's egress proxy, whose unix socket is bound in beside the static `ccdeck-netbridge`;
/// the bridge listens on the sandbox's 127.0.0.1:3128 and the agent is told to use it as its
/// proxy. Unless `--allow-all`, then the host's network is shared.
///
/// Its resources are folders under the store (`local/<sandbox>`), each with ccdeck's mark in
/// `mark.json`, the sandbox's pid and, once it ended, its exit status.
public struct LocalBackend: SandboxBackend {
    public static let kind: BackendKind = "local"
    public let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public var kind: BackendKind { Self.kind }

    public var traits: BackendTraits {
        var t = BackendTraits(modeLetter: "L", isolation: .namespaces, tokenDelivery: .environmentByName,
                              workspace: .samePathShare, workspaceInside: nil, mark: .labels, resourceNoun: "sandbox",
                              canRun: true, usesImage: false, takesRuntimeArguments: false)
        t.optionNames = ["claude"]
        t.autoRank = 45  // after the VM on this host, before the remote and paid one
        t.enforcesEgress = true
        t.writesHostFolderDirectly = true
        return t
    }

    /// The sandboxes' folders live beside the runs, in the same store.
    var folders: FolderSandboxes { FolderSandboxes(root: RunStore(environment: environment).root + "/local", kind: kind) }

    /// `CCDECK_CLAUDE`, else `claude` on PATH.
    func claude(_ spec: RunSpec? = nil) -> String? {
        if let chosen = spec?.options["claude"]?.last ?? environment["CCDECK_CLAUDE"], !chosen.isEmpty {
            return chosen.contains("/") ? chosen : Self.which(chosen, path: environment["PATH"])
        }
        return Self.which("claude", path: environment["PATH"])
    }

    static func which(_ name: String, path: String?) -> String? {
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") where dir.hasPrefix("/") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    public func probe(timeout: TimeInterval) -> BackendStatus {
        #if !os(Linux)
        // bubblewrap needs Linux namespaces: point to the modes that run here.
        return BackendStatus(kind: kind, state: .notInstalled,
                             detail: "bubblewrap is Linux only: on this system use docker or podman (mode A), sandbox or fly")
        #endif
        guard let bwrap = Self.which("bwrap", path: environment["PATH"]) else {
            return BackendStatus(kind: kind, state: .notInstalled,
                                 detail: "bwrap not found (apt-get install bubblewrap; Linux only)")
        }
        guard let claude = claude() else {
            return BackendStatus(kind: kind, state: .notInstalled,
                                 detail: "claude not found on PATH (or set CCDECK_CLAUDE)", executable: bwrap)
        }
        if let (state, why) = namespaceProblem(bwrap: bwrap, timeout: timeout) {
            return BackendStatus(kind: kind, state: state, detail: why, executable: bwrap)
        }
        let version = (try? ProcessRunner.run(Command(claude, ["--version"], environment: environment), timeout: timeout))
            .flatMap { $0.status.succeeded ? $0.stdout.split(separator: " ").first.map(String.init) : nil }
        let bwrapVersion = (try? ProcessRunner.run(Command(bwrap, ["--version"], environment: environment), timeout: timeout))
            .flatMap { $0.stdout.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } }
        return BackendStatus(kind: kind, state: .ready, clientVersion: bwrapVersion, serverVersion: version,
                             detail: "claude " + (version ?? "?") + " at " + InertText.line(claude) + "; egress by allowlist",
                             executable: bwrap)
    }

    /// Can this user make the namespaces at all (user namespaces may be disabled)?
    func namespaceProblem(bwrap: String, timeout: TimeInterval) -> (BackendStatus.State, String)? {
        let trial = try? ProcessRunner.run(Command(bwrap, ["--ro-bind", "/", "/", "--unshare-pid", "--", "/bin/true"],
                                                   environment: environment), timeout: timeout)
        guard let trial else { return (.notResponding, "bwrap gave no answer within \(Int(timeout))s") }
        guard !trial.status.succeeded else { return nil }
        let said = String(trial.stderr.split(separator: "\n").first ?? "").prefix(200)
        return (.daemonDown, "bwrap cannot make namespaces here: " + InertText.line(String(said)))
    }

    /// What a run needs, and nothing more: no version queries on the way to every run.
    public func prepare(_ spec: RunSpec, build: ImageBuild?, cancel: Cancellation,
                        progress: (String) -> Void) throws -> Preparation {
        guard Self.which("bwrap", path: environment["PATH"]) != nil else {
            throw BackendError.unavailable(kind, "bwrap not found (apt-get install bubblewrap; Linux only)")
        }
        guard let claude = claude(spec), access(claude, X_OK) == 0 else {
            throw BackendError.unavailable(kind, "no claude to run: \(InertText.line(claude(spec) ?? "none on PATH")) "
                                           + "(give --claude PATH or set CCDECK_CLAUDE)")
        }
        // No trial sandbox on the way to every run (3–5 ms): bwrap's own refusal at the start says
        // it (`startFailure`), as the probe's trial does for the overview.
        return Preparation(agentUser: "uid \(geteuid()) (your own user, in namespaces)")
    }

    /// bwrap ends at once with "bwrap: …" when it cannot make the namespaces (user namespaces
    /// disabled, a mount refused): a setup error in its words, not a failed run.
    public func startFailure(exitCode: Int32, stderr: [String]) -> String? {
        guard exitCode != 0, let line = stderr.first(where: { $0.hasPrefix("bwrap: ") }) else { return nil }
        return "bwrap cannot make the sandbox here: " + String(line.dropFirst("bwrap: ".count))
    }

    /// The sandbox's mounts, in order (later ones land on top of earlier ones).
    /// With `egress`, no network but the proxy's socket and the bridge to it.
    static func bwrapArguments(workspace: String, claude: String, egress: EgressEndpoint? = nil) -> [String] {
        var args = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                    "--hostname", "ccdeck-local",
                    "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                    "--tmpfs", "/tmp", "--tmpfs", "/run", "--tmpfs", "/home", "--tmpfs", "/root", "--tmpfs", "/var/tmp",
                    "--dir", "/home/agent",
                    "--ro-bind", claude, "/run/ccdeck/claude"]
        var agent = ["/run/ccdeck/claude", "-p", "--dangerously-skip-permissions"] + RunSpec.agentArguments
        if let egress {
            args += ["--unshare-net",
                     "--ro-bind", egress.bridge, EgressEndpoint.bridgeInside,
                     "--bind", egress.socketDirectory, EgressEndpoint.directoryInside]
            agent = egress.wrap(agent)
        }
        return args + ["--bind", workspace, workspace, "--chdir", workspace, "--"] + agent
    }

    public func start(_ spec: RunSpec, preparation: Preparation) throws -> AgentLaunch {
        guard let claude = claude(spec), let bwrap = Self.which("bwrap", path: environment["PATH"]) else {
            throw BackendError.unavailable(kind, "bwrap or claude missing")
        }
        let dir = try folders.create(spec)
        // The agent's environment, exactly: what it was given by name, never the host's whole one.
        var env = spec.environment.filter { spec.passEnvironment.contains($0.key) || ["LANG", "TERM"].contains($0.key) }
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        if let token = spec.token { env[token.name] = token.value }
        env["HOME"] = "/home/agent"
        if geteuid() == 0 { env["IS_SANDBOX"] = "1" }  // Claude Code skips permissions as root only when told it is sandboxed
        if let egress = spec.egress { env.merge(egress.agentEnvironment) { $1 } }
        let command = Command("sh", ["-c", FolderSandboxes.wrapper, "sh", dir, bwrap]
                                  + Self.bwrapArguments(workspace: spec.workspace, claude: claude, egress: spec.egress), environment: env)
        return AgentLaunch(process: try ChildProcess.spawn(command, stdin: .pipe))
    }

    public func stop(_ sandbox: SandboxRef) -> Bool { folders.stop(sandbox.name) }
    public func outcome(_ sandbox: SandboxRef) -> SandboxOutcome? { folders.outcome(sandbox.name) }
    public func remove(_ sandbox: SandboxRef) throws { try folders.remove(sandbox.name) }
    public func resources(store: String) throws -> [SandboxResource] { folders.resources(store: store) }

    /// A shell beside the agent: the same mounts, the workspace as the current folder.
    public func attachCommand(_ sandbox: SandboxRef) -> Command? {
        guard let bwrap = Self.which("bwrap", path: environment["PATH"]), let workspace = folders.workspace(sandbox.name) else {
            return nil
        }
        let mounts = Self.bwrapArguments(workspace: workspace, claude: "/bin/sh")
        let beforeCommand = mounts.lastIndex(of: "--") ?? mounts.count
        return Command(bwrap, Array(mounts[..<beforeCommand]) + ["--unshare-net", "--", "/bin/sh"],
                       environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/agent", "TERM": environment["TERM"] ?? "xterm"])
    }

    public func eventsCommand(store: String) -> Command? { nil }
}
