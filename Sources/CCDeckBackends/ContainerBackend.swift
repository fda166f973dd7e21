import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Mode A: a plain Docker or Podman container sharing the host kernel. The two CLIs
/// have the same shape, so one type serves both, told apart by `kind`.
public struct ContainerBackend: SandboxBackend {
    public let kind: BackendKind
    public let environment: [String: String]
    /// How long any engine query may take before ccdeck calls the daemon hung.
    public var queryTimeout: TimeInterval = 15

    public init(kind: BackendKind, environment: [String: String]) {
        precondition(kind == .docker || kind == .podman, "ContainerBackend serves docker and podman only")
        self.kind = kind
        self.environment = environment
    }

    var executable: String { kind == .docker ? "docker" : "podman" }

    // MARK: probe

    public func probe(timeout: TimeInterval) -> BackendStatus {
        let args = kind == .docker ? ["version", "--format", "{{json .}}"] : ["version", "--format", "json"]
        let (output, early) = Probe.run(kind, executable, args, environment: environment, timeout: timeout)
        if let early { return early }
        guard let output else { return BackendStatus(kind: kind, state: .error, detail: "no output") }
        let path = ChildProcess.resolve(executable, environment: environment)
        let versions = EngineOutput.parseVersion(output.stdout)
        if output.status.succeeded, let versions, versions.client != nil {
            // Local podman has no server part: the client is the engine.
            return BackendStatus(kind: kind, state: .ready, clientVersion: versions.client,
                                 serverVersion: versions.server ?? (kind == .podman ? versions.client : nil),
                                 detail: "", executable: path)
        }
        return BackendStatus(kind: kind, state: .daemonDown, clientVersion: versions?.client,
                             detail: output.stderrSummary.isEmpty ? "\(executable) version: \(output.status)"
                                                                  : output.stderrSummary,
                             executable: path)
    }

    // MARK: image

    public func ensureImage(_ image: String, buildIfMissing: ImageBuild?,
                            progress: (String) -> Void) throws -> Bool {
        let inspect = try query(["image", "inspect", "--format", "{{.Id}}", image], what: "\(executable) image inspect")
        if inspect.status.succeeded { return false }
        let why = inspect.stderrSummary
        guard why.localizedCaseInsensitiveContains("no such") || why.localizedCaseInsensitiveContains("not known")
                || why.localizedCaseInsensitiveContains("not found") else {
            throw BackendError.unavailable(kind, why)
        }
        guard let build = buildIfMissing else {
            throw BackendError.commandFailed("image \(image)", "not found in \(executable); build it or pick another with --image")
        }
        progress("image \(image) not found in \(executable): building it (first time only)")
        try self.build(image: image, build, progress: progress)
        return true
    }

    /// `docker build -t IMAGE` from a Dockerfile; its output goes to `progress` line by line.
    public func build(image: String, _ build: ImageBuild, progress: (String) -> Void) throws {
        let fm = FileManager.default
        // The Dockerfile goes in a private temporary folder, never into the user's context folder.
        let scratch = fm.temporaryDirectory.appendingPathComponent("ccdeck-build-\(UUID().uuidString.prefix(8))").path
        try fm.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fm.removeItem(atPath: scratch) }
        let dockerfilePath = scratch + "/Dockerfile"
        try build.dockerfile.write(toFile: dockerfilePath, atomically: true, encoding: .utf8)
        let context = build.contextDirectory ?? scratch
        let child = try ChildProcess.spawn(Command(executable, ["build", "-t", image, "-f", dockerfilePath, context],
                                                   environment: environment))
        var tail: [String] = []
        let status = ProcessRunner.stream(child, onStdoutLine: { line in
            progress(InertText.line(String(decoding: line, as: UTF8.self)))
        }, onStderrLine: { line in
            let text = InertText.line(String(decoding: line, as: UTF8.self))
            tail = Array((tail + [text]).suffix(5))
            progress(text)
        })
        guard status.succeeded else {
            throw BackendError.commandFailed("\(executable) build", tail.last ?? "\(status)")
        }
    }

    // MARK: run

    public func runArguments(_ spec: RunSpec) -> [String] {
        var args = ["run", "--name", spec.sandboxName]
        for (k, v) in spec.labels.sorted(by: { $0.key < $1.key }) { args += ["--label", "\(k)=\(v)"] }
        args += ["-v", "\(spec.workspace):/workspace", "-w", "/workspace"]
        if kind == .podman && geteuid() != 0 {
            // Rootless podman maps the host user to the agent user, or the workspace is read-only.
            args.append("--userns=keep-id:uid=\(RunnerImage.agentUID),gid=\(RunnerImage.agentUID)")
        }
        for name in spec.passEnvironment { args += ["-e", name] }  // by name: the value never enters argv
        args += spec.runtimeArguments
        args.append(spec.image)
        args += spec.agentArguments
        return args
    }

    public func start(_ spec: RunSpec) throws -> ChildProcess {
        try ChildProcess.spawn(Command(executable, runArguments(spec), environment: spec.environment))
    }

    public func stop(_ spec: RunSpec) {
        _ = try? ProcessRunner.run(Command(executable, ["kill", spec.sandboxName], environment: environment),
                                   timeout: queryTimeout)
    }

    public func finalState(_ spec: RunSpec) -> EngineOutput.ContainerState? {
        guard let out = try? query(["inspect", "--type", "container", spec.sandboxName], what: "inspect"),
              out.status.succeeded else { return nil }
        return EngineOutput.parseInspectState(out.stdout)
    }

    public func remove(_ spec: RunSpec) throws {
        try removeContainer(id: spec.sandboxName)
    }

    /// Removes one container by id or name (the caller has checked it carries ccdeck's labels);
    /// one already gone is not an error.
    public func removeContainer(id: String) throws {
        let out = try query(["rm", "-f", id], what: "\(executable) rm")
        if !out.status.succeeded && !out.stderrSummary.localizedCaseInsensitiveContains("no such") {
            throw BackendError.commandFailed("\(executable) rm \(id.prefix(12))", out.stderrSummary)
        }
    }

    /// Containers carrying all of `labels` (ccdeck's own, never anyone else's).
    public func containers(labelled labels: [String: String]) throws -> [EngineOutput.Container] {
        var args = ["ps", "-a", "--no-trunc"]
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) { args += ["--filter", "label=\(k)=\(v)"] }
        args += kind == .docker ? ["--format", "{{json .}}"] : ["--format", "json"]
        let out = try query(args, what: "\(executable) ps")
        guard out.status.succeeded else { throw BackendError.commandFailed("\(executable) ps", out.stderrSummary) }
        return EngineOutput.parseContainers(out.stdout)
    }

    private func query(_ args: [String], what: String) throws -> ProcessRunner.Output {
        let out: ProcessRunner.Output
        do {
            out = try ProcessRunner.run(Command(executable, args, environment: environment), timeout: queryTimeout)
        } catch ProcessError.notFound {
            throw BackendError.unavailable(kind, "\(executable) is not installed")
        }
        if out.timedOut { throw BackendError.timedOut(what, queryTimeout) }
        if !out.status.succeeded, Self.isDaemonDown(out.stderrSummary) {
            throw BackendError.unavailable(kind, out.stderrSummary)
        }
        return out
    }

    static func isDaemonDown(_ message: String) -> Bool {
        ["cannot connect", "is the docker daemon running", "connection refused", "permission denied while trying to connect",
         "unable to connect to podman"].contains { message.localizedCaseInsensitiveContains($0) }
    }
}
