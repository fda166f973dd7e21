import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a user asked `ccdeck run` to do.
public struct RunRequest: Sendable {
    public var prompt: String
    /// nil: ccdeck makes a fresh workspace inside the run's directory.
    public var workspace: String?
    public var image: String
    /// Build the runner image from this Dockerfile when `image` is missing.
    public var buildIfMissing: ImageBuild?
    public var runtimeArguments: [String]
    public var passEnvironment: [String]
    public var keep: Bool

    public static let defaultPrompt = "Create a file hello.mjs that prints a friendly greeting, then run it with node and show its output."

    /// Passed into the sandbox whenever they are set on the host.
    public static let passedWhenSet = ["ANTHROPIC_BASE_URL", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
                                       "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"]

    public init(prompt: String = RunRequest.defaultPrompt, workspace: String? = nil,
                image: String = RunnerImage.defaultTag, buildIfMissing: ImageBuild? = nil,
                runtimeArguments: [String] = [], passEnvironment: [String] = [], keep: Bool = false) {
        self.prompt = prompt
        self.workspace = workspace
        self.image = image
        self.buildIfMissing = buildIfMissing
        self.runtimeArguments = runtimeArguments
        self.passEnvironment = passEnvironment
        self.keep = keep
    }
}

/// Drives one run from start to verdict: backend → events → record. It prints nothing;
/// whoever calls it decides how to show the `Update`s.
public final class RunDriver {
    public enum Update {
        case notice(String)
        /// The run exists (recorded, state starting); the image may still have to be built.
        case created(RunRecord)
        /// The agent's sandbox is starting.
        case started(RunRecord)
        case event(StreamEvent, raw: Data)
        case stderr(String)
    }

    public enum Failure: Error, CustomStringConvertible {
        /// The run could not start (engine down, image missing): a setup error, not the agent's.
        case setup(String, record: RunRecord?)

        public var description: String {
            switch self { case .setup(let why, _): return why }
        }
    }

    public static let labelPrefix = "ccdeck."

    let backend: any SandboxBackend
    let store: RunStore
    let token: Token
    let environment: [String: String]
    let redactor: SecretRedactor
    let onUpdate: (Update) -> Void
    let clock: () -> Date

    public init(backend: any SandboxBackend, store: RunStore, token: Token, environment: [String: String],
                clock: @escaping () -> Date = Date.init, onUpdate: @escaping (Update) -> Void) {
        self.backend = backend
        self.store = store
        self.token = token
        self.environment = environment
        self.redactor = SecretRedactor(secret: token.value)
        self.clock = clock
        self.onUpdate = onUpdate
    }

    /// Runs to the end. `wakeFD` becomes readable when the user wants the run stopped.
    public func run(_ request: RunRequest, wakeFD: Int32? = nil) throws -> RunRecord {
        let start = clock()
        let id = RunRecord.newID(at: start)
        let workspace = request.workspace ?? store.workspacePath(for: id)
        var record = RunRecord(id: id, mode: backend.kind, image: request.image, container: "ccdeck-\(id)",
                               workspace: workspace, workspaceIsTemporary: request.workspace == nil,
                               prompt: request.prompt, keep: request.keep, createdAt: start,
                               driverPID: getpid(), host: ProcessInfo.processInfo.hostName,
                               tokenSource: token.source.description)
        do { try store.create(record) } catch {
            throw Failure.setup("cannot create the run under \(store.runsDirectory): \(error.localizedDescription)", record: nil)
        }
        onUpdate(.created(record))

        func fail(_ why: String) -> Failure {
            record.state = .failed
            record.reason = redactor.redact(why)
            record.endedAt = clock()
            try? store.save(record)
            return .setup(record.reason!, record: record)
        }

        if request.workspace == nil {
            do { try Workspace.createFresh(at: workspace) } catch { throw fail("cannot create the workspace: \(error)") }
        }
        let spec = makeSpec(record: record, request: request)

        do {
            let built = try backend.ensureImage(request.image, buildIfMissing: request.buildIfMissing) { line in
                onUpdate(.notice(line))
            }
            if built { onUpdate(.notice("image \(request.image) built")) }
        } catch {
            throw fail("\(error)")
        }
        record.phases.imageReady = clock()

        let child: ChildProcess
        do { child = try backend.start(spec) } catch { throw fail("\(error)") }
        record.state = .running
        try? store.save(record)
        onUpdate(.started(record))

        let ingest = try RunIngest(outputPath: store.outputPath(for: id), redactor: redactor)
        let stderrLog = try AppendLog(path: store.stderrPath(for: id))
        var stderrTail: [String] = []
        var stopped = false

        let status = ProcessRunner.stream(child, wakeFD: wakeFD, onStdoutLine: { line in
            let (event, stored) = ingest.ingest(line, at: clock())
            onUpdate(.event(event, raw: stored))
        }, onStderrLine: { line in
            let raw = redactor.redact(line)
            stderrLog.append(line: raw)
            let text = InertText.line(String(decoding: raw, as: UTF8.self))
            stderrTail = Array((stderrTail + [text]).suffix(20))
            onUpdate(.stderr(text))
        }, onWake: {
            ingest.flush()
            guard !stopped else { return }
            stopped = true
            onUpdate(.notice("stopping run \(id)…"))
            backend.stop(spec)
        }, onBurstEnd: {
            ingest.flush()
            stderrLog.flush()
        })
        ingest.flush()

        let progress = ingest.progress
        let final = backend.finalState(spec)
        record.phases.containerStarted = final?.startedAt
        record.phases.firstEvent = progress.firstEventAt
        record.phases.result = progress.resultAt
        record.exitStatus = final?.exitCode ?? status.code
        record.turns = progress.result != nil || progress.assistantMessages > 0 ? progress.turns : nil
        record.costUSD = progress.costUSD
        let verdict = RunJudgement.judge(result: progress.result, exitStatus: record.exitStatus, stopped: stopped,
                                         stderrTail: stderrTail, lastAPIFailure: progress.lastAPIFailure)
        record.state = RunState(verdict.outcome)
        record.reason = redactor.redact(verdict.reason)

        if !request.keep {
            do { try backend.remove(spec) } catch {
                onUpdate(.notice("could not remove \(spec.sandboxName): \(redactor.redact("\(error)"))"))
            }
        }
        record.phases.cleanupDone = clock()
        record.endedAt = record.phases.cleanupDone
        try store.save(record)
        return record
    }

    func makeSpec(record: RunRecord, request: RunRequest) -> RunSpec {
        var env = environment
        // Only the resolved token goes in, under the variable its kind calls for.
        env["CLAUDE_CODE_OAUTH_TOKEN"] = nil
        env["ANTHROPIC_API_KEY"] = nil
        env[token.kind.environmentVariable] = token.value
        var pass = [token.kind.environmentVariable]
        pass += RunRequest.passedWhenSet.filter { env[$0] != nil }
        pass += request.passEnvironment.filter { !pass.contains($0) }
        let labels = [
            Self.labelPrefix + "run": record.id,
            Self.labelPrefix + "mode": backend.kind.rawValue,
            Self.labelPrefix + "store": store.storeID,
            Self.labelPrefix + "schema": "1",
        ]
        return RunSpec(id: record.id, image: request.image, sandboxName: record.container, workspace: record.workspace,
                       prompt: request.prompt, labels: labels, passEnvironment: pass, environment: env,
                       runtimeArguments: request.runtimeArguments)
    }
}

/// The fresh workspace ccdeck makes when the user names none.
public enum Workspace {
    public static let packageJSON = """
        {
          "name": "ccdeck-workspace",
          "version": "1.0.0",
          "private": true,
          "type": "module"
        }

        """

    /// Creates the directory with a minimal `package.json`, writable by the image's `agent` user.
    /// It lives inside the run's 0700 directory, so opening it to uid 1000 exposes it to no one else.
    public static func createFresh(at path: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
        let manifest = path + "/package.json"
        try packageJSON.write(toFile: manifest, atomically: false, encoding: .utf8)
        chmod(path, 0o777)
        chmod(manifest, 0o666)
        if geteuid() == 0 {
            let uid = uid_t(RunnerImage.agentUID)
            chown(path, uid, gid_t(RunnerImage.agentUID))
            chown(manifest, uid, gid_t(RunnerImage.agentUID))
        }
    }
}
