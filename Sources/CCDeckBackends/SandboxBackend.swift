import CCDeckCore
import Foundation

/// What a run needs from an isolation backend. One implementation per file, one file per backend.
public protocol SandboxBackend: Sendable {
    var kind: BackendKind { get }

    /// Is the tool installed, and does its daemon or API answer within `timeout`?
    /// Never blocks longer than `timeout` (plus the time to kill a hung client).
    func probe(timeout: TimeInterval) -> BackendStatus

    /// Makes sure `image` is there, building the runner image when it is missing.
    /// Returns true when it had to build.
    func ensureImage(_ image: String, buildIfMissing: ImageBuild?, progress: (String) -> Void) throws -> Bool

    /// Starts the agent; its stdout carries the stream-json events.
    func start(_ spec: RunSpec) throws -> ChildProcess

    /// Stops a live run's sandbox (the agent process then ends).
    func stop(_ spec: RunSpec)

    /// When the sandbox really started and how it ended, if the backend can tell.
    func finalState(_ spec: RunSpec) -> EngineOutput.ContainerState?

    /// Removes the run's sandbox. Only ever called on resources ccdeck labelled.
    func remove(_ spec: RunSpec) throws
}

/// Everything a backend needs to start one run.
public struct RunSpec: Sendable {
    public var id: String
    public var image: String
    public var sandboxName: String
    public var workspace: String
    public var prompt: String
    public var labels: [String: String]
    /// Variables copied into the sandbox by name; their values stay in `environment`.
    public var passEnvironment: [String]
    /// The environment of the engine client, holding the values of `passEnvironment`.
    public var environment: [String: String]
    public var runtimeArguments: [String]

    public init(id: String, image: String, sandboxName: String, workspace: String, prompt: String,
                labels: [String: String], passEnvironment: [String], environment: [String: String],
                runtimeArguments: [String]) {
        self.id = id
        self.image = image
        self.sandboxName = sandboxName
        self.workspace = workspace
        self.prompt = prompt
        self.labels = labels
        self.passEnvironment = passEnvironment
        self.environment = environment
        self.runtimeArguments = runtimeArguments
    }

    /// Arguments after the image: the entrypoint is `claude -p --dangerously-skip-permissions`.
    public var agentArguments: [String] {
        [prompt, "--output-format", "stream-json", "--verbose"]
    }
}

/// How to build the runner image when it is missing.
public struct ImageBuild: Sendable {
    public var dockerfile: String
    public var contextDirectory: String?

    public init(dockerfile: String, contextDirectory: String? = nil) {
        self.dockerfile = dockerfile
        self.contextDirectory = contextDirectory
    }
}

public enum BackendError: Error, CustomStringConvertible, Equatable {
    case unavailable(BackendKind, String)
    case notImplemented(BackendKind)
    case commandFailed(String, String)
    case timedOut(String, TimeInterval)

    public var description: String {
        switch self {
        case .unavailable(let k, let why): return "\(k.displayName) is not available: \(why)"
        case .notImplemented(let k): return "mode \(k.displayName) can be probed but not run yet"
        case .commandFailed(let what, let why): return "\(what) failed: \(why)"
        case .timedOut(let what, let t): return "\(what) did not answer within \(Int(t))s"
        }
    }
}

/// Probes for a backend that ccdeck only detects so far: it runs `<tool> <args>` and reads a version.
protocol ProbeOnlyBackend: SandboxBackend {}

extension ProbeOnlyBackend {
    public func ensureImage(_ image: String, buildIfMissing: ImageBuild?, progress: (String) -> Void) throws -> Bool {
        throw BackendError.notImplemented(kind)
    }
    public func start(_ spec: RunSpec) throws -> ChildProcess { throw BackendError.notImplemented(kind) }
    public func stop(_ spec: RunSpec) {}
    public func finalState(_ spec: RunSpec) -> EngineOutput.ContainerState? { nil }
    public func remove(_ spec: RunSpec) throws { throw BackendError.notImplemented(kind) }
}

/// Shared probe mechanics: run the version command under a deadline and classify the answer.
enum Probe {
    static func run(_ kind: BackendKind, _ executable: String, _ arguments: [String],
                    environment: [String: String], timeout: TimeInterval) -> (ProcessRunner.Output?, BackendStatus?) {
        guard let path = ChildProcess.resolve(executable, environment: environment) else {
            return (nil, BackendStatus(kind: kind, state: .notInstalled, detail: "\(executable) not found in PATH"))
        }
        do {
            let out = try ProcessRunner.run(Command(path, arguments, environment: environment), timeout: timeout)
            if out.timedOut {
                return (out, BackendStatus(kind: kind, state: .notResponding,
                                           detail: "no answer within \(formatTimeout(timeout)) (daemon hung?)",
                                           executable: path))
            }
            return (out, nil)
        } catch {
            return (nil, BackendStatus(kind: kind, state: .error, detail: "\(error)", executable: path))
        }
    }

    static func formatTimeout(_ t: TimeInterval) -> String {
        t == t.rounded() ? "\(Int(t))s" : String(format: "%.1fs", t)
    }
}
