import CCDeckCore
import Foundation

/// The run contract: what every isolation backend does for a run, from probe to removal.
/// One implementation per file under `Backends/`, one registration line in `BackendRegistry`.
/// Nothing outside a backend's own file switches on its kind.
///
/// A run's life through it: `probe` (is it usable?) → `prepare` (image, template, instance
/// or machine ready; workspace usable) → `start` (the agent's stdout lines, and at the end an
/// exit status) → `stop` when asked → `outcome` → `remove` unless kept. Around it: the
/// resources a backend holds for ccdeck, found by ccdeck's mark (`resources`), how to attach,
/// an optional push event stream, and a way to re-read a run's output after its driver died.
/// docs/backends.md shows how each of docker, podman, docker sandbox, sbx, fly and incus
/// meets every operation.
public protocol SandboxBackend: Sendable {
    var kind: BackendKind { get }
    var traits: BackendTraits { get }

    /// Is the tool installed, and does its daemon or API answer within `timeout`?
    /// Never blocks longer than `timeout` (plus the time to kill a hung client).
    func probe(timeout: TimeInterval) -> BackendStatus

    /// Gets everything ready that must exist before the sandbox starts: the image (built from
    /// `build` when missing and given), and a workspace the agent can write. Throws a
    /// `BackendError` whose description is one line a user can act on.
    ///
    /// A stop asked meanwhile (`cancel`) ends long work at once (an image build) and throws
    /// `BackendError.cancelled`.
    func prepare(_ spec: RunSpec, build: ImageBuild?, cancel: Cancellation, progress: (String) -> Void) throws -> Preparation

    /// Starts the agent. Its stdout carries the stream-json events; the prompt is written to its
    /// stdin by the caller (never in argv); the token travels as `traits.tokenDelivery` says.
    func start(_ spec: RunSpec, preparation: Preparation) throws -> AgentLaunch

    /// Stops a live run's sandbox (the agent process then ends). Returns at once or within the
    /// backend's deadline; false when the backend could not be told.
    @discardableResult
    func stop(_ sandbox: SandboxRef) -> Bool

    /// When the sandbox really started and how the agent ended, if the backend can tell.
    func outcome(_ sandbox: SandboxRef) -> SandboxOutcome?

    /// How the agent ended, read from the exit status of the process `start` returned when that
    /// status is the agent's own (an attached `docker run` returns its container's): the run then
    /// asks the backend nothing more after its end. nil: ask `outcome`.
    func outcome(fromClient status: ExitStatus) -> SandboxOutcome?

    /// When the sandbox really started, asked while the agent works (off the run's critical
    /// path) by a run whose end is read from its client, when its engine left no start stamp
    /// (`RunSpec.startStampName`). nil when the backend cannot tell.
    func startedAt(_ sandbox: SandboxRef) -> Date?

    /// Whether `start`'s refusal (see `startFailure`) was for an image that is not there, for a
    /// backend that checks the image as it starts (`Preparation.imageCheckedAtStart`): the run
    /// then builds it, when it may, and starts again.
    func imageMissing(exitCode: Int32, stderr: [String]) -> Bool

    /// How to re-read a run's output when `outputCommand` cannot (the engine removed the sandbox
    /// itself): a command printing what the backend kept in the run's folder, and the decoder of
    /// its format. nil: nothing kept.
    func keptOutput(_ sandbox: SandboxRef, runDirectory: String) -> (Command, OutputDecoder)?

    /// Waits for the sandbox to stop, then removes it (a run not kept, asked once its agent is
    /// up): the removal then runs beside the client's own wind-down instead of after it. true
    /// when it removed it; nil when the backend cannot wait without a process of its own (the
    /// run removes it at its end, as always).
    func removeWhenStopped(_ sandbox: SandboxRef) -> Bool?

    /// Removes the run's sandbox. Only ever called on resources carrying ccdeck's mark; one
    /// already gone is not an error.
    func remove(_ sandbox: SandboxRef) throws

    /// What the end of a run does to its sandbox unless `--keep`: removal, for most backends; a
    /// sandbox kept between runs by design (a persistent Incus instance) is only tidied.
    func release(_ sandbox: SandboxRef) throws

    /// Every resource carrying ccdeck's mark for `store` (never anyone else's).
    func resources(store: String) throws -> [SandboxResource]

    /// Everything else the backend holds (to be shown, marked as not this ccdeck's; never removed).
    func foreignResources(store: String) throws -> [SandboxResource]

    /// The command that opens an interactive shell in a live run's sandbox, in its workspace.
    func attachCommand(_ sandbox: SandboxRef) -> Command?

    /// A command printing one line per change to ccdeck's resources for `store`, as long as the
    /// backend is up: the dashboard follows it instead of polling. nil: the backend has none.
    func eventsCommand(store: String) -> Command?

    /// A command that prints the agent's stdout from the start of the run (and its stderr on
    /// stderr), following it until the agent ends: how a run whose ccdeck died is adopted.
    /// nil: the backend cannot re-read a run's output.
    func outputCommand(_ sandbox: SandboxRef) -> Command?

    /// After the agent ended and before the sandbox goes: brings the agent's changes back into
    /// the local workspace, for a backend whose workspace travels up and down.
    func collect(_ sandbox: SandboxRef, into workspace: String) throws

    /// For a backend that holds runs to an allowlist: why this run cannot be (it chose its own
    /// network), or nil. The run then goes unfiltered, and its record says so.
    func egressUnenforceable(_ spec: RunSpec) -> String?

    /// When the agent's process ended before saying anything: whether that was the backend
    /// refusing to start it (bad arguments, a missing runtime), and its own error line if so.
    /// Such a run is a setup error (exit 2), not a failed run.
    func startFailure(exitCode: Int32, stderr: [String]) -> String?
}

extension SandboxBackend {
    public func collect(_ sandbox: SandboxRef, into workspace: String) throws {}
    public func egressUnenforceable(_ spec: RunSpec) -> String? { nil }
    public func foreignResources(store: String) throws -> [SandboxResource] { [] }
    public func release(_ sandbox: SandboxRef) throws { try remove(sandbox) }
    public func startFailure(exitCode: Int32, stderr: [String]) -> String? { nil }
    public func attachCommand(_ sandbox: SandboxRef) -> Command? { nil }
    public func eventsCommand(store: String) -> Command? { nil }
    public func outputCommand(_ sandbox: SandboxRef) -> Command? { nil }
    public func outcome(fromClient status: ExitStatus) -> SandboxOutcome? { nil }
    public func startedAt(_ sandbox: SandboxRef) -> Date? { nil }
    public func imageMissing(exitCode: Int32, stderr: [String]) -> Bool { false }
    public func keptOutput(_ sandbox: SandboxRef, runDirectory: String) -> (Command, OutputDecoder)? { nil }
    public func removeWhenStopped(_ sandbox: SandboxRef) -> Bool? { nil }
}

/// What a backend is, whatever the run: how it isolates, how the token and the workspace
/// travel, how ccdeck recognises what it made there, and what it can do.
public struct BackendTraits: Sendable, Equatable {
    /// A–D for the four original modes; `+` beyond them.
    public var modeLetter: String
    public var isolation: Isolation
    public var tokenDelivery: TokenDelivery
    public var workspace: WorkspaceTransport
    /// Where the workspace appears inside the sandbox; nil: at its own path.
    public var workspaceInside: String?
    public var mark: ResourceMark
    /// What one of its resources is called (`container`, `sandbox`, `instance`, `machine`).
    public var resourceNoun: String
    /// Runs can be started on it; false: detected only, so far.
    public var canRun: Bool
    /// Its runs start from an image (`--image`, built from the Dockerfile when missing).
    public var usesImage: Bool
    /// Takes extra arguments for the command that starts the sandbox (`--runtime-arg`).
    public var takesRuntimeArguments: Bool
    /// The `RunSpec.options` it understands (`ephemeral`, `profile`, `config`, `device` for Incus).
    public var optionNames: Set<String> = []
    /// Its place when `--mode auto` picks the first ready backend (lower first): local and cheap
    /// before remote and paid.
    public var autoRank = 100
    /// Can hold a run to an egress allowlist: its sandbox gets no route out but ccdeck's proxy
    /// (`RunSpec.egress`). false: the network is the backend's, and the record says so.
    public var enforcesEgress = false
    /// The agent writes the host's own workspace folder as it works (a mount, or the same
    /// folder in namespaces), so its work is all there when it gives its result; a workspace
    /// synced or copied back is complete only after the sandbox's end.
    public var writesHostWorkspace: Bool { workspace == .mount || writesHostFolderDirectly }
    /// Set by a backend whose same-path workspace is the host folder itself (local mode), not a sync.
    public var writesHostFolderDirectly = false

    public init(modeLetter: String, isolation: Isolation, tokenDelivery: TokenDelivery, workspace: WorkspaceTransport,
                workspaceInside: String?, mark: ResourceMark, resourceNoun: String, canRun: Bool,
                usesImage: Bool, takesRuntimeArguments: Bool) {
        self.modeLetter = modeLetter
        self.isolation = isolation
        self.tokenDelivery = tokenDelivery
        self.workspace = workspace
        self.workspaceInside = workspaceInside
        self.mark = mark
        self.resourceNoun = resourceNoun
        self.canRun = canRun
        self.usesImage = usesImage
        self.takesRuntimeArguments = takesRuntimeArguments
    }
}

/// How ccdeck recognises its own resources in a backend, after a crash as much as during a run.
public enum ResourceMark: Sendable, Equatable {
    /// Labels (`ccdeck.run`, `ccdeck.store`, …) filtered by the engine.
    case labels
    /// Instance config keys (`user.ccdeck.run`, …).
    case configKeys
    /// Machine metadata (`ccdeck_run`, …).
    case metadata
    /// The backend keeps no labels: the name carries the run id and store after this prefix.
    case namePrefix(String)

    public var label: String {
        switch self {
        case .labels: return "labels ccdeck.*"
        case .configKeys: return "config keys user.ccdeck.*"
        case .metadata: return "metadata ccdeck_*"
        case .namePrefix(let p): return "name prefix \(p)"
        }
    }
}

/// The keys of ccdeck's mark; each backend writes them its own way (labels, config keys, metadata, name).
public enum Mark {
    public static let prefix = "ccdeck."
    public static let run = prefix + "run"
    public static let store = prefix + "store"
    public static let mode = prefix + "mode"
    public static let schema = prefix + "schema"
}

/// A secret for the sandbox: the variable the agent reads it from, and its value. Its
/// description is the redacted form, so it cannot be printed by accident.
public struct Secret: Sendable, CustomStringConvertible {
    public let name: String
    public let value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    public var description: String { "\(name)=\(Token.redact(value))" }
}

/// Who owns a folder on the host.
public struct FileOwner: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32

    public init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }

    public static func of(_ path: String) -> FileOwner? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileOwner(uid: st.st_uid, gid: st.st_gid)
    }
}

/// Everything a backend needs to start one run.
public struct RunSpec: Sendable {
    public var id: String
    /// The sandbox's name, carrying the run id (a backend without labels recognises it by this).
    public var sandboxName: String
    /// The image or template the sandbox starts from (ignored by backends without images).
    public var image: String
    /// The workspace on the host.
    public var workspace: String
    /// Its owner: the files the agent writes must come back owned by them.
    public var workspaceOwner: FileOwner
    /// The task. It reaches the agent on stdin, whole, whatever it holds; never in argv.
    public var prompt: String
    /// ccdeck's mark (`Mark` keys), written by each backend its own way.
    public var mark: [String: String]
    /// The token, under the variable the agent reads it from; how it travels is the backend's.
    public var token: Secret?
    /// Other host variables copied into the sandbox by name; their values are in `environment`.
    public var passEnvironment: [String]
    /// The environment the backend's client runs with. Never holds the token: a backend that
    /// passes it by name adds it to its own client's environment only.
    public var environment: [String: String]
    /// Extra arguments for the command that starts the sandbox.
    public var runtimeArguments: [String]
    /// Options only some backends take (`ephemeral`, `profile`, `config`, `device` for Incus),
    /// by name; a backend refuses, in `prepare`, any it does not know.
    public var options: [String: [String]] = [:]
    /// Set when the run is held to an allowlist: the sandbox must have no network but this.
    public var egress: EgressEndpoint?
    /// The run's folder on the host (0700, the invoker's), for what a backend keeps beside the
    /// record (podman's log of the agent's output); nil outside a run.
    public var runDirectory: String?
    /// The sandbox goes when the run ends (no `--keep`): a backend may let its engine remove it.
    public var removeAtEnd = true

    public init(id: String, sandboxName: String, image: String, workspace: String, workspaceOwner: FileOwner,
                prompt: String, mark: [String: String], token: Secret?, passEnvironment: [String],
                environment: [String: String], runtimeArguments: [String]) {
        self.id = id
        self.sandboxName = sandboxName
        self.image = image
        self.workspace = workspace
        self.workspaceOwner = workspaceOwner
        self.prompt = prompt
        self.mark = mark
        self.token = token
        self.passEnvironment = passEnvironment
        self.environment = environment
        self.runtimeArguments = runtimeArguments
    }

    /// The agent's arguments after `claude -p --dangerously-skip-permissions` (the runner image's
    /// entrypoint). No prompt: it arrives on stdin, so nothing in it is ever read as an option
    /// and no argv limit applies.
    public static let agentArguments = ["--output-format", "stream-json", "--verbose"]

    /// A file a backend may keep in the run's folder (`runDirectory`) holding the agent's output
    /// as its engine logged it. It is raw, so the run deletes it at its end: the run's own
    /// output file is the redacted copy.
    public static let keptOutputName = "engine.log"

    /// A file a backend may have its engine write in the run's folder as it starts the sandbox
    /// (podman's `--pidfile`, written once the container's process exists, ~15 ms before the
    /// `StartedAt` podman reports): its time is the start, read with no engine call (a podman
    /// call beside the agent costs ~40 ms of CPU, which a small machine's agent waits for).
    /// Deleted at the run's end.
    public static let startStampName = "engine.pid"
}

/// The way out of a sandbox held to an allowlist: ccdeck's proxy on a unix socket on the host,
/// and the static bridge that, inside the sandbox's empty network namespace, listens on
/// 127.0.0.1:`port` and passes each connection to that socket. The agent is told
/// `HTTP(S)_PROXY=http://127.0.0.1:port`; any other address it tries has no route.
///
/// The socket's folder is bound in, not the socket: a ccdeck that adopts the run after the first
/// one died listens there again, and the sandbox sees the new socket.
public struct EgressEndpoint: Sendable, Equatable {
    /// The folder holding the proxy's socket (`proxy.sock`).
    public var socketDirectory: String
    public var bridge: String
    public var port: UInt16 = 3128
    public var socketPath: String { socketDirectory + "/proxy.sock" }
    /// Where they appear inside the sandbox.
    public static let directoryInside = "/run/ccdeck/egress"
    public static let socketInside = directoryInside + "/proxy.sock"
    public static let bridgeInside = "/run/ccdeck/netbridge"

    public init(socketDirectory: String, bridge: String) {
        self.socketDirectory = socketDirectory
        self.bridge = bridge
    }

    /// The agent's proxy variables (both cases: tools differ in which they read), and no bypass.
    public var agentEnvironment: [String: String] {
        let url = "http://127.0.0.1:\(port)"
        return ["HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url, "NO_PROXY": "", "no_proxy": ""]
    }

    /// The command line inside the sandbox: the bridge, then the agent.
    public func wrap(_ command: [String]) -> [String] {
        [Self.bridgeInside, String(port), Self.socketInside, "--"] + command
    }

    /// `ccdeck-netbridge` beside the running ccdeck (or `CCDECK_NETBRIDGE`).
    public static func findBridge(environment: [String: String]) -> String? {
        BundledHelper.find("ccdeck-netbridge", variable: "CCDECK_NETBRIDGE", environment: environment)
    }
}

/// What `prepare` found out, for `start` and the run's record.
public struct Preparation: Sendable, Equatable {
    /// The image had to be built first.
    public var builtImage: Bool
    /// The sandbox's name when the backend chose it (an instance reused per workspace).
    public var sandboxName: String?
    /// The sandbox outlives the run by design and is reused by the next one.
    public var persistent = false
    /// What `prepare` chose that `start` needs (the CLI a sandbox was made with, say).
    public var choices: [String: String] = [:]
    /// The boundary this run gets when it is not the backend's usual one (gVisor for a container).
    public var isolation: Isolation?
    /// Who the agent will run as inside, in words for the record.
    public var agentUser: String?
    /// Arguments `start` adds for that user (backend-specific).
    public var userArguments: [String]
    /// `prepare` did not look for the image: `start` refuses a missing one (`imageMissing`).
    public var imageCheckedAtStart = false
    /// The engine's client removes the sandbox itself when it ends normally (`podman run --rm`):
    /// the run removes it only when the client did not end that way.
    public var removedByClient = false

    public init(builtImage: Bool = false, agentUser: String? = nil, userArguments: [String] = [],
                sandboxName: String? = nil, persistent: Bool = false) {
        self.builtImage = builtImage
        self.sandboxName = sandboxName
        self.persistent = persistent
        self.agentUser = agentUser
        self.userArguments = userArguments
    }
}

/// A started agent: the process whose stdout carries its events, and the sandbox's id when the
/// backend gives it one only at start.
public struct AgentLaunch: @unchecked Sendable {
    public var process: ChildProcess
    /// For a backend whose process prints something else than the agent's lines (a log stream):
    /// turns what it prints into them, and says when the agent is done.
    public var decoder: OutputDecoder?
    public var sandboxID: String?
    /// Written to the agent's stdin before the prompt (variables a wrapper reads first, for a
    /// backend that gives the token on stdin).
    public var stdinPrefix: Data

    public init(process: ChildProcess, sandboxID: String? = nil, stdinPrefix: Data = Data(), decoder: OutputDecoder? = nil) {
        self.process = process
        self.decoder = decoder
        self.sandboxID = sandboxID
        self.stdinPrefix = stdinPrefix
    }
}

/// Turns a backend's output stream into the agent's lines (see `AgentLaunch.decoder`).
public protocol OutputDecoder: AnyObject {
    /// The agent's lines in what the backend printed (none while an entry is incomplete).
    func decode(_ line: Data) -> [Data]
    /// The agent is done: the stream that carries its output can be let go.
    var finished: Bool { get }
    /// The agent's exit status, when the stream said.
    var exitCode: Int32? { get }
    /// The agent's stderr lines the stream carried since last asked (a log holding both).
    func takeStderr() -> [Data]
}

extension OutputDecoder {
    public func takeStderr() -> [Data] { [] }
}

/// A backend that keeps its own copy of the token (an app secret), pushed ahead of runs.
public protocol TokenKeeper: SandboxBackend {
    /// Stores the token (its value on stdin, never in argv) and notes which token it was;
    /// returns where it went, in words.
    func pushToken(_ token: Token, store: RunStore) throws -> String
    /// What the backend holds, as far as ccdeck noted it.
    func keptToken(store: RunStore) -> KeptToken?
}

/// Which token a backend holds and since when: a fingerprint, never the value.
public struct KeptToken: Sendable, Codable, Equatable {
    public var place: String
    public var fingerprint: String
    public var pushedAt: Date
    public var expiresAt: Date?

    public init(place: String, fingerprint: String, pushedAt: Date, expiresAt: Date?) {
        self.place = place
        self.fingerprint = fingerprint
        self.pushedAt = pushedAt
        self.expiresAt = expiresAt
    }

    /// In words, against the token in use here: `pushed 2h 5m ago, the same token, expires in 5h`.
    public func describe(against local: Token?, now: Date) -> String {
        var words = ["pushed \(TokenStatus.format(duration: max(0, now.timeIntervalSince(pushedAt)))) ago"]
        if let local { words.append(local.fingerprint == fingerprint ? "the same token as here" : "ANOTHER token than here") }
        if let expiresAt {
            let left = expiresAt.timeIntervalSince(now)
            words.append(left > 0 ? "expires in \(TokenStatus.format(duration: left))" : "EXPIRED")
        }
        return words.joined(separator: ", ")
    }
}

/// A run's sandbox, as the operations after start name it.
public struct SandboxRef: Sendable, Equatable {
    public var runID: String
    public var name: String
    public var id: String?

    public init(runID: String, name: String, id: String? = nil) {
        self.runID = runID
        self.name = name
        self.id = id
    }

    public init(_ record: RunRecord) {
        self.init(runID: record.id, name: record.sandbox, id: record.sandboxID)
    }
}

/// How the sandbox ended, as far as the backend knows.
public struct SandboxOutcome: Sendable, Equatable {
    public var startedAt: Date?
    public var exitCode: Int32?
    public var running: Bool

    public init(startedAt: Date?, exitCode: Int32?, running: Bool) {
        self.startedAt = startedAt
        self.exitCode = exitCode
        self.running = running
    }
}

/// A resource carrying ccdeck's mark, in any backend.
public struct SandboxResource: Sendable, Equatable {
    public var id: String
    public var name: String
    public var backend: BackendKind
    public var runID: String?
    /// The backend's word for its state (inert).
    public var state: String
    public var createdAt: Date?
    /// Kept between runs by design (not a leftover): listed as persistent.
    public var persistent: Bool

    public init(id: String, name: String, backend: BackendKind, runID: String?, state: String, createdAt: Date?,
                persistent: Bool = false) {
        self.id = id
        self.name = InertText.line(name)
        self.backend = backend
        self.runID = runID.map { InertText.line($0) }
        self.state = InertText.line(state)
        self.createdAt = createdAt
        self.persistent = persistent
    }
}

/// A stop asked for a run, at any moment of its life: a descriptor that becomes readable (a
/// signal self-pipe, the dashboard's stop pipe) and what was already read from it.
public final class Cancellation: @unchecked Sendable {
    public let fd: Int32?
    public private(set) var isRequested = false

    public init(fd: Int32?) { self.fd = fd }

    /// Without waiting: has a stop been asked? Reading the descriptor drains it, so the answer is kept.
    @discardableResult
    public func check() -> Bool {
        if isRequested { return true }
        guard let fd else { return false }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        if poll(&p, 1, 0) > 0 {
            var buffer = [UInt8](repeating: 0, count: 64)
            _ = read(fd, &buffer, buffer.count)
            isRequested = true
        }
        return isRequested
    }

    public func markRequested() { isRequested = true }
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
    case unknownMode(BackendKind, known: [BackendKind])
    case commandFailed(String, String)
    case timedOut(String, TimeInterval)
    /// The run cannot work as asked: the reason and what to do about it.
    case refused(String)
    /// A stop was asked before the sandbox started.
    case cancelled

    public var description: String {
        switch self {
        case .unavailable(let k, let why): return "\(k.displayName) is not available: \(why)"
        case .notImplemented(let k): return "mode \(k.displayName) can be probed but not run yet"
        case .unknownMode(let k, let known):
            return "mode \(k.displayName) is not known to this ccdeck (known: \(known.map(\.rawValue).joined(separator: ", ")))"
        case .commandFailed(let what, let why): return "\(what) failed: \(why)"
        case .timedOut(let what, let t): return "\(what) did not answer within \(Int(t))s"
        case .refused(let why): return why
        case .cancelled: return "stopped by the user before it started"
        }
    }
}

/// A backend ccdeck only detects so far: everything but `probe` says so.
protocol ProbeOnlyBackend: SandboxBackend {}

extension ProbeOnlyBackend {
    public func prepare(_ spec: RunSpec, build: ImageBuild?, cancel: Cancellation,
                        progress: (String) -> Void) throws -> Preparation {
        throw BackendError.notImplemented(kind)
    }
    public func start(_ spec: RunSpec, preparation: Preparation) throws -> AgentLaunch {
        throw BackendError.notImplemented(kind)
    }
    public func stop(_ sandbox: SandboxRef) -> Bool { false }
    public func outcome(_ sandbox: SandboxRef) -> SandboxOutcome? { nil }
    public func remove(_ sandbox: SandboxRef) throws { throw BackendError.notImplemented(kind) }
    public func resources(store: String) throws -> [SandboxResource] { [] }

    /// Which options, if any, were given to a backend that takes none.
    static func refuseOptions(_ spec: RunSpec, kind: BackendKind) throws {
        if let name = spec.options.keys.sorted().first {
            throw BackendError.refused("\(kind.displayName) does not take --\(name)")
        }
    }
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

/// A backend that builds the runner image itself (`ccdeck image build --runtime KIND`).
public protocol ImageBuilder: SandboxBackend {
    func build(image: String, _ build: ImageBuild, progress: (String) -> Void) throws
    /// The same, ended at once (`BackendError.cancelled`) when a stop is asked meanwhile.
    func build(image: String, _ build: ImageBuild, cancel: Cancellation, progress: (String) -> Void) throws
}

extension ImageBuilder {
    public func build(image: String, _ build: ImageBuild, cancel: Cancellation, progress: (String) -> Void) throws {
        try self.build(image: image, build, progress: progress)
    }
}
