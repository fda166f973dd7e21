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
    /// Options only some backends take (see `RunSpec.options`).
    public var options: [String: [String]] = [:]
    /// The comparison this run belongs to, kept in its record.
    public var group: String?
    /// The hosts the agent may reach; nil: what Claude Code needs plus `egress.conf`'s.
    public var egress: EgressPolicy?
    /// How long the agent may run (from its start) before ccdeck stops it as timed out.
    public var timeout: TimeInterval?

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

    /// Why the prompt cannot be handed to the agent whole, if it cannot.
    public static func problem(with prompt: String) -> String? {
        if prompt.utf8.contains(0) {
            return "the prompt holds a NUL byte, which no agent can receive intact: remove it"
        }
        if prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return "the prompt is empty" }
        return nil
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
        /// The egress proxy allowed or refused a connection the agent asked for. Arrives from
        /// the proxy's threads; updates are never delivered two at a time.
        case egress(EgressDecision)
    }

    public enum Failure: Error, CustomStringConvertible {
        /// The run could not start (engine down, image missing): a setup error, not the agent's.
        case setup(String, record: RunRecord?)

        public var description: String {
            switch self { case .setup(let why, _): return why }
        }
    }

    /// A stop is asked again this often until the sandbox is down…
    public static let stopRetryInterval: TimeInterval = 1
    /// …and after this long ccdeck kills the backend's client and removes the sandbox itself.
    public static let stopDeadline: TimeInterval = 10

    let backend: any SandboxBackend
    let store: RunStore
    let token: Token?
    /// How long the agent may stay silent at first before the run is stopped as hung
    /// (`CCDECK_FIRST_EVENT_TIMEOUT` seconds; default 10 minutes: an image pull may come first).
    var firstLineTimeout: TimeInterval? {
        environment["CCDECK_FIRST_EVENT_TIMEOUT"].flatMap(TimeInterval.init).flatMap { $0 > 0 && $0.isFinite ? $0 : nil } ?? 600
    }
    /// A stop asked by ccdeck itself (its output closed, its disk full), with why; read by the
    /// streaming loop on the same thread.
    private var pendingStop: String?
    let environment: [String: String]
    let redactor: SecretRedactor
    private let onUpdate: (Update) -> Void
    private let updateLock = NSRecursiveLock()
    let clock: () -> Date
    /// The run's egress proxy while it runs.
    private var egressProxy: EgressProxy?
    /// `CCDECK_TRACE=1`: where a run's own time goes, step by step (the command says it at its end).
    private let trace = PhaseTrace.shared

    private func takePendingStop() -> String? {
        updateLock.lock()
        defer { updateLock.unlock() }
        let reason = pendingStop
        pendingStop = nil
        return reason
    }

    /// Hands an update to the caller, one at a time (the proxy's threads send them too).
    func emit(_ update: Update) {
        updateLock.lock()
        defer { updateLock.unlock() }
        onUpdate(update)
    }

    /// - Parameter token: the resolved token; nil only for a backend whose proxy holds the credential.
    public init(backend: any SandboxBackend, store: RunStore, token: Token?, environment: [String: String],
                clock: @escaping () -> Date = Date.init, onUpdate: @escaping (Update) -> Void) {
        self.backend = backend
        self.store = store
        self.token = token
        self.environment = environment
        self.redactor = SecretRedactor(secret: token?.value ?? "")
        self.clock = clock
        self.onUpdate = onUpdate
    }

    /// Stops the run in progress, for `reason`. For the thread that drives the run (its update
    /// handler), e.g. when ccdeck can no longer print what the run does.
    public func requestStop(_ reason: String) {
        // Under the update lock: a handler may ask while an egress update arrives on a proxy thread.
        updateLock.lock()
        defer { updateLock.unlock() }
        if pendingStop == nil { pendingStop = reason }
    }

    /// Runs to the end. `wakeFD` becomes readable when the user wants the run stopped, at any
    /// moment: before the sandbox exists, while its image builds, or while the agent works.
    public func run(_ request: RunRequest, wakeFD: Int32? = nil) throws -> RunRecord {
        if let problem = RunRequest.problem(with: request.prompt) { throw Failure.setup(problem, record: nil) }
        let traits = backend.traits
        let delivery = traits.tokenDelivery
        guard token != nil || delivery == .hostProxy else {
            throw Failure.setup("no token to give the agent (see `ccdeck token show`)", record: nil)
        }
        let start = clock()
        let id = RunRecord.newID(at: start)
        let workspace = request.workspace ?? store.workspacePath(for: id)
        let preview = RunRecord.promptPreview(request.prompt)
        var record = RunRecord(id: id, mode: backend.kind, image: traits.usesImage ? request.image : "", sandbox: "ccdeck-\(id)",
                               workspace: workspace, workspaceIsTemporary: request.workspace == nil,
                               prompt: preview.text, keep: request.keep, createdAt: start,
                               driverPID: getpid(), host: ProcessInfo.processInfo.hostName,
                               tokenSource: delivery == .hostProxy ? nil : token?.source.description)
        record.promptBytes = preview.cut ? request.prompt.utf8.count : nil
        record.isolation = traits.isolation
        record.group = request.group
        record.timeout = request.timeout
        record.workspaceTransport = traits.workspace
        record.credentials = CredentialRecord(
            delivery: delivery, exposure: token.map { CredentialExposure.of($0, delivery: delivery) } ?? .nothing)
        trace.mark("before the run")
        // The run's folder and the driver's lock now; its first record once its egress is settled
        // (below): one write then says everything the sandbox will depend on before it starts.
        func cannotCreate(_ error: Error) -> Failure {
            .setup("cannot create the run under \(store.runsDirectory): \(Self.words(error))", record: nil)
        }
        let lock: DriverLock
        do { lock = try store.createFolder(for: record) } catch { throw cannotCreate(error) }
        defer { lock.release() }
        if preview.cut {
            // A long prompt is kept whole beside the record, not in it: listings stay light.
            let saved = FileManager.default.createFile(atPath: store.promptPath(for: id), contents: Data(request.prompt.utf8),
                                                       attributes: [.posixPermissions: 0o600])
            if !saved {
                record.state = .failed
                record.reason = "cannot write the prompt to \(store.promptPath(for: id))"
                record.endedAt = clock()
                try? store.save(record)
                throw Failure.setup(record.reason!, record: record)
            }
        }
        emit(.created(record))

        func fail(_ why: String) -> Failure {
            record.state = .failed
            record.reason = redactor.redact(why)
            record.endedAt = clock()
            try? store.save(record)
            return .setup(record.reason!, record: record)
        }

        if request.workspace == nil {
            do { try Workspace.createFresh(at: workspace) } catch { throw fail("cannot create the workspace: \(Self.words(error))") }
        } else if access(workspace, W_OK) != 0 {
            throw fail("you cannot write \(InertText.line(workspace)) yourself: ccdeck will not hand an agent a folder "
                       + "you cannot change (check its owner and mode)")
        }
        trace.mark("record")
        guard let owner = FileOwner.of(workspace) else { throw fail("cannot read the workspace \(InertText.line(workspace))") }
        var spec = makeSpec(record: record, request: request, owner: owner)

        // Where the output goes is settled before anything starts, so nothing runs unrecorded.
        let sinks: Sinks
        do { sinks = try Sinks(store: store, id: id, redactor: redactor) } catch {
            throw fail("cannot write the run's output under \(store.directory(for: id)): \(Self.words(error))")
        }

        let cancel = Cancellation(fd: wakeFD)
        if cancel.check() {
            sinks.releaseReserve()
            return stoppedBeforeStart(&record)
        }
        trace.mark("workspace, output files")
        // The way out is settled first: a backend may have to check that its runtime allows it.
        do { try holdEgress(request, &record, &spec) } catch {
            sinks.releaseReserve()
            throw fail("\(error)")
        }
        defer { releaseEgress(record.id) }
        do { try store.save(record) } catch {
            sinks.releaseReserve()
            throw cannotCreate(error)
        }
        trace.mark("egress, first record")
        /// A setup step a stop may end early (an image build): nil when it ran, the stopped record
        /// when the stop came first; its error fails the run.
        func untilStopped(_ step: () throws -> Void) throws -> RunRecord? {
            do {
                try step()
                return nil
            } catch BackendError.cancelled {
                sinks.releaseReserve()
                return stoppedBeforeStart(&record)
            } catch {
                sinks.releaseReserve()
                throw fail("\(error)")
            }
        }
        var preparation = Preparation()
        if let stopped = try untilStopped({
            preparation = try backend.prepare(spec, build: request.buildIfMissing, cancel: cancel) { emit(.notice($0)) }
        }) { return stopped }
        trace.mark("prepare")
        if preparation.builtImage { emit(.notice("image \(request.image) built")) }
        if let name = preparation.sandboxName {
            // The backend chose the sandbox (one reused per workspace): the record names it.
            record.sandbox = name
            spec.sandboxName = name
        }
        let ref = SandboxRef(record)
        record.agentUser = preparation.agentUser
        if let isolation = preparation.isolation { record.isolation = isolation }
        record.phases.imageReady = clock()
        if cancel.check() {
            sinks.releaseReserve()
            return stoppedBeforeStart(&record)
        }

        var followed: Followed
        var launch: AgentLaunch
        let beside = BesideTheAgent(
            tracker: changeTracker(workspace: workspace, id: id),
            comparedAtResult: traits.writesHostWorkspace)
        // What the workspace holds before the agent can touch it, to say afterwards what it
        // changed. A folder ccdeck just made holds what it wrote: nothing to read. A user's folder
        // is read while its sandbox starts (a 59 MB folder of 5,000 files takes 1.5–3.8 s): the
        // agent acts on nothing before its prompt ends, and the prompt's end (stdin closed) waits
        // for the snapshot. The prompt's text goes in first: Claude Code gives up on a stdin
        // that says nothing for ~3 s ("Input must be provided either through stdin…"), but once
        // it has read something it waits for the end, however long.
        if beside.tracker != nil, request.workspace == nil { record.changesBaseline = ChangeTracker.freshBaseline }
        let snapshot = request.workspace != nil ? beside.tracker : nil
        var firstAttempt = true
        while true {
            do { launch = try backend.start(spec, preparation: preparation) } catch {
                // Whatever got as far as existing goes again.
                if !request.keep { try? backend.release(ref) }
                snapshot?.discard()
                sinks.releaseReserve()
                throw fail("\(error)")
            }
            launch.process.countAsEngineCall()
            var input = launch.stdinPrefix + Data(request.prompt.utf8)
            if firstAttempt {
                trace.mark("start")
                if let snapshot {
                    input = ProcessRunner.writeWithoutWaiting(launch.process, input)
                    record.changesBaseline = snapshot.begin()
                    trace.mark("baseline (beside the start)")
                }
                record.state = .running
                record.sandboxID = launch.sandboxID
                try? store.save(record)
                emit(.started(record))
            }
            // Its sandbox as the record names it now: what runs beside the agent asks about it.
            let startRef = SandboxRef(record)
            followed = follow(launch.process, input: input, sinks: sinks, ref: startRef,
                              skip: (0, 0), cancel: cancel, runDirectory: store.directory(for: id), decoder: launch.decoder,
                              deadline: request.timeout.map { (Date().addingTimeInterval($0), $0) },
                              onFirstLine: { [backend, store, folder = store.directory(for: id), baseline = record.changesBaseline,
                                              keep = request.keep] in
                                  beside.agentUp(backend: backend, store: store, sandbox: startRef, runDirectory: folder,
                                                 baseline: baseline, keep: keep)
                              }, onResult: { [baseline = record.changesBaseline] in beside.resultGiven(baseline: baseline) })
            guard sinks.ingest.progress.firstEventAt == nil, !followed.stopped, let code = followed.status?.code,
                  let why = backend.startFailure(exitCode: code, stderr: followed.stderrTail) else { break }
            if firstAttempt, preparation.imageCheckedAtStart, backend.imageMissing(exitCode: code, stderr: followed.stderrTail),
               let build = request.buildIfMissing, let builder = backend as? any ImageBuilder {
                // The start was the image check (no look beforehand): build it, then start again.
                firstAttempt = false
                emit(.notice("image \(request.image) not found in \(backend.kind.displayName): building it (first time only)"))
                if let stopped = try untilStopped({
                    try builder.build(image: request.image, build, cancel: cancel) { emit(.notice($0)) }
                }) { return stopped }
                emit(.notice("image \(request.image) built"))
                continue
            }
            // The backend refused to start it: a setup error with the backend's own words.
            if !request.keep { _ = removeWithRetry(SandboxRef(record), noun: traits.resourceNoun, release: true) }
            sinks.releaseReserve()
            throw fail(why)
        }
        _ = beside.baselineMade.wait()
        let fromClient = followed.forced ? nil : followed.status.flatMap(backend.outcome(fromClient:))
        return finish(&record, followed: followed, sinks: sinks, fromClient: fromClient,
                      removedByClient: preparation.removedByClient && fromClient != nil, beside: beside)
    }

    /// Settles the run's egress: the proxy and its socket for a backend that can hold the run to
    /// the list, or the record saying the filter is off or not in this mode's power.
    private func holdEgress(_ request: RunRequest, _ record: inout RunRecord, _ spec: inout RunSpec) throws {
        let policy = try request.egress ?? EgressConfig.standardPolicy(environment: environment)
        // Recorded by the run's first save, which follows: a proxy, which the sandbox will depend
        // on (and a ccdeck adopting the run starts again), is on disk before the sandbox starts.
        if policy.allowAll {
            record.egress = EgressRecord(enforcement: .allowAll, hosts: [])
            return
        }
        let unenforceable = backend.traits.enforcesEgress ? backend.egressUnenforceable(spec) : "its network is the backend's"
        if let why = unenforceable {
            // Said by whoever shows the run (`ccdeck run` prints it; the details line shows it).
            record.egress = EgressRecord(enforcement: .notEnforced, hosts: policy.hosts, reason: why)
            return
        }
        guard let bridge = EgressEndpoint.findBridge(environment: environment) else {
            throw EgressProxyError("ccdeck-netbridge is not beside ccdeck (build it: swift build), so the run cannot be held "
                                   + "to its egress allowlist; --allow-all runs it unfiltered")
        }
        let endpoint = EgressEndpoint(socketDirectory: store.directory(for: record.id) + "/egress", bridge: bridge)
        egressProxy = try startProxy(policy, endpoint: endpoint, runID: record.id, after: nil)
        spec.egress = endpoint
        record.egress = egressProxy?.record
    }

    /// Stops the proxy and removes its socket folder (twice is harmless).
    private func releaseEgress(_ runID: String) {
        guard let proxy = egressProxy else { return }
        proxy.stop()
        try? FileManager.default.removeItem(atPath: store.directory(for: runID) + "/egress")
    }

    /// The proxy on the run's socket folder (again, for an adopted run: the sandbox sees the new socket).
    private func startProxy(_ policy: EgressPolicy, endpoint: EgressEndpoint, runID: String, after: EgressRecord?) throws -> EgressProxy {
        // The proxy's threads reach the driver only through emit, which takes the update lock.
        final class Reach: @unchecked Sendable { weak var driver: RunDriver? }
        let reach = Reach()
        reach.driver = self
        mkdir(endpoint.socketDirectory, 0o755)
        chmod(endpoint.socketDirectory, 0o755)  // traversable by the agent's uid, whoever it is inside
        let proxy = try EgressProxy(policy: policy, logPath: store.directory(for: runID) + "/egress.jsonl",
                                    startingFrom: after) { reach.driver?.emit(.egress($0)) }
        try proxy.listen(unixPath: endpoint.socketPath)
        return proxy
    }

    /// A stop asked before the sandbox started: nothing was started, nothing is left.
    private func stoppedBeforeStart(_ record: inout RunRecord) -> RunRecord {
        record.state = .stopped
        record.reason = "stopped by the user before it started"
        record.endedAt = clock()
        try? store.save(record)
        return record
    }

    /// Takes over a run whose ccdeck died: re-reads its output from the backend (the lines
    /// already stored are skipped), follows it to the end, judges it and cleans up as its own
    /// driver would have. `lock` is the run's driver lock, taken with `RunStore.takeOver`.
    public func adopt(_ original: RunRecord, lock: DriverLock, wakeFD: Int32? = nil) -> RunRecord {
        defer { lock.release() }
        var record = original
        record.driverPID = getpid()
        record.host = ProcessInfo.processInfo.hostName
        record.adoptedAt = clock()
        try? store.save(record)
        emit(.started(record))

        let stored = (store.completeLines(at: store.outputPath(for: record.id)),
                      store.completeLines(at: store.stderrPath(for: record.id)))
        let sinks: Sinks
        do { sinks = try Sinks(store: store, id: record.id, redactor: redactor) } catch {
            record.state = .failed
            record.reason = "adopted, but the run's output cannot be written: \(Self.words(error))"
            record.endedAt = clock()
            try? store.save(record)
            return record
        }
        // What the first driver stored counts: turns, cost and a result that may already be there.
        sinks.replay(store.outputPath(for: record.id), at: record.createdAt)
        // A run held to an allowlist lost its way out with its ccdeck: the proxy listens again.
        if let egress = record.egress, egress.enforcement == .allowlist, backend.traits.enforcesEgress,
           let bridge = EgressEndpoint.findBridge(environment: environment) {
            let endpoint = EgressEndpoint(socketDirectory: store.directory(for: record.id) + "/egress", bridge: bridge)
            egressProxy = try? startProxy(EgressPolicy(hosts: egress.hosts), endpoint: endpoint, runID: record.id, after: egress)
        }
        defer { releaseEgress(record.id) }
        // What the engine kept in the run's folder comes first: it outlives the sandbox.
        var source = backend.outputCommand(SandboxRef(record)).map { ($0, nil as OutputDecoder?) }
        if let kept = backend.keptOutput(SandboxRef(record), runDirectory: store.directory(for: record.id)) {
            source = (kept.0, kept.1)
        }
        guard let (command, decoder) = source,
              let child = try? ChildProcess.spawn(command) else {
            return finish(&record, followed: Followed(status: nil, stopped: false, stderrTail: ["\(record.mode.displayName) cannot re-read a run's output"]),
                          sinks: sinks)
        }
        // Its --timeout still holds, counted from when its sandbox started.
        let started = record.phases.containerStarted ?? record.phases.imageReady ?? record.createdAt
        let followed = follow(child, input: nil, sinks: sinks, ref: SandboxRef(record), skip: stored,
                              cancel: Cancellation(fd: wakeFD), runDirectory: store.directory(for: record.id), decoder: decoder,
                              deadline: record.timeout.map { (started.addingTimeInterval($0), $0) })
        return finish(&record, followed: followed, sinks: sinks)
    }

    // MARK: the run's two halves

    /// What runs beside the agent, started as it comes up and as it gives its result, and
    /// waited for at the run's end: when the sandbox started, its removal as it stops, the
    /// workspace's comparison, and the index's checkpoint.
    final class BesideTheAgent: @unchecked Sendable {
        let tracker: ChangeTracker?
        /// The tracker of a workspace the sandbox writes in place (its work is all there at the
        /// result): compared then, while the sandbox winds down, and checked untouched at the end.
        let earlyTracker: ChangeTracker?
        let startedAt = Joined<Date?>()
        let earlyChanges = Joined<ChangeTracker.Comparison?>()
        let baselineMade = Joined<Void>()
        let removedEarly = Joined<Bool?>()

        init(tracker: ChangeTracker?, comparedAtResult: Bool) {
            self.tracker = tracker
            earlyTracker = comparedAtResult ? tracker : nil
        }

        /// The agent's first line: its sandbox is up.
        func agentUp(backend: any SandboxBackend, store: RunStore, sandbox: SandboxRef, runDirectory: String,
                     baseline: String?, keep: Bool) {
            if let index = store.index {
                // Once the sandbox is up, not beside its start. Not lowered: it holds the index's
                // lock, which the run's next save waits for.
                Thread.detachNewThread { index.checkpoint() }
            }
            if !keep { removedEarly.start { backend.removeWhenStopped(sandbox) } }
            // When the sandbox really started: its end is then read from the client alone.
            startedAt.start {
                if let stamped = RunDriver.stampedStart(runDirectory: runDirectory) { return stamped }
                Command.lowerThisThread()
                return backend.startedAt(sandbox)
            }
            if earlyTracker == nil, let tracker, let baseline {
                // Compared only after the sandbox's end (its workspace comes back then): what
                // that needs is made now, off the run's path.
                baselineMade.start {
                    Command.lowerThisThread()
                    tracker.prepare(baseline: baseline)
                }
            }
        }

        /// The agent's `result`: a workspace written in place holds its work.
        func resultGiven(baseline: String?) {
            guard let tracker = earlyTracker, let baseline else { return }
            // Beside the sandbox's wind-down, never competing with it for the CPU; written down at
            // once, so the end of the run only checks it still holds.
            earlyChanges.start {
                Command.lowerThisThread()
                let comparison = tracker.compare(baseline: baseline)
                if let comparison {
                    tracker.write(comparison)
                    if ChangeTracker.canRemake(baseline) { tracker.discard() }
                }
                return comparison
            }
        }
    }

    /// Where a run's lines go: the redacted output file and its parser, the stderr log and its tail.
    final class Sinks {
        let ingest: RunIngest
        let stderrLog: AppendLog
        let redactor: SecretRedactor
        var stderrTail: [String] = []

        /// Room held back for the final record: a disk that fills up mid-run still takes it.
        let reservePath: String

        init(store: RunStore, id: String, redactor: SecretRedactor) throws {
            ingest = try RunIngest(outputPath: store.outputPath(for: id), redactor: redactor)
            stderrLog = try AppendLog(path: store.stderrPath(for: id))
            self.redactor = redactor
            reservePath = store.directory(for: id) + "/.reserve"
            // Blocks allocated, not written (glibc writes zeros where the file system cannot allocate).
            let fd = open(reservePath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            let allocated = fd >= 0 && posix_fallocate(fd, 0, 256 << 10) == 0
            if fd >= 0 { close(fd) }
            guard allocated else {
                unlink(reservePath)
                throw RunStoreError.unreadable(store.directory(for: id), "no room left for the run's record")
            }
        }

        /// Gives the held-back room to the final record.
        func releaseReserve() { unlink(reservePath) }

        /// A write that failed (disk full, folder gone), in words naming the file.
        var failure: String? { ingest.writeFailure ?? stderrLog.failure }

        func replay(_ path: String, at date: Date) {
            guard let data = FileManager.default.contents(atPath: path) else { return }
            for line in data.split(separator: 0x0A) { ingest.replay(Data(line), at: date) }
        }
    }

    struct Followed {
        var status: ExitStatus?
        var stopped: Bool
        var stderrTail: [String]
        /// Why the run was stopped, when it was.
        var stopReason: String?
        /// The backend did not stop it in time: ccdeck killed its client (and removal took it down).
        var forced = false
        /// The agent's exit status as a decoded stream said it (a remote machine's log).
        var decodedExit: Int32?
        /// ccdeck stopped it because the backend failed it (a hung start), not because anyone asked.
        var stopIsFailure = false
    }

    /// Streams the agent's lines into the sinks until it ends. A stop (the user's, or ccdeck's own
    /// when it can no longer write) asks the backend to stop the sandbox, again every
    /// `stopRetryInterval` until it is down, and past `stopDeadline` (or at a second request)
    /// kills the backend's client so the run ends; the sandbox's removal then takes it down.
    /// `skip` lines of stdout and stderr are already stored (an adopted run's output re-read).
    private func follow(_ process: ChildProcess, input: Data?, sinks: Sinks, ref: SandboxRef, skip: (Int, Int),
                        cancel: Cancellation, runDirectory: String, decoder: OutputDecoder? = nil,
                        deadline: (at: Date, seconds: TimeInterval)? = nil, onFirstLine: (() -> Void)? = nil,
                        onResult: (() -> Void)? = nil) -> Followed {
        var (skipOut, skipErr) = skip
        var stopReason: String?
        var stopAskedAt: Date?
        var stopDone = false
        var forced = false
        var lastCheck = Date.distantPast
        // A sandbox whose exec never says anything (hung) is stopped after this long.
        let firstLineDeadline = firstLineTimeout.map { Date().addingTimeInterval($0) }
        var heardFromAgent = skip.0 > 0
        var stopIsFailure = false

        func askToStop() {
            stopDone = backend.stop(ref) || stopDone
        }
        func beginStop(_ reason: String) {
            guard stopReason == nil else {
                // Asked twice: no more waiting for the backend.
                if !forced { forced = true; process.signal(SIGKILL) }
                return
            }
            stopReason = reason
            stopAskedAt = Date()
            emit(.notice("stopping run \(ref.runID)…"))
            askToStop()
        }
        func checkOwnTrouble() {
            if let reason = sinks.failure ?? takePendingStop() { if stopReason == nil { beginStop(reason) } }
            // A run folder deleted under a live run: stop rather than write into nowhere (checked once a second).
            let now = Date()
            if stopReason == nil, now.timeIntervalSince(lastCheck) >= 1 {
                lastCheck = now
                if access(runDirectory, F_OK) != 0 { beginStop("the run's folder \(runDirectory) was deleted") }
            }
        }
        if cancel.isRequested { beginStop("stopped by the user") }

        func agentStderr(_ line: Data) {
            if skipErr > 0 { skipErr -= 1; return }
            let raw = redactor.redact(line)
            sinks.stderrLog.append(line: raw)
            let text = InertText.line(String(decoding: raw, as: UTF8.self))
            sinks.stderrTail = Array((sinks.stderrTail + [text]).suffix(20))
            emit(.stderr(text))
        }
        // Lines already stored are counted as the agent's lines, after any decoding.
        var resultSeen = false
        func agentLine(_ line: Data) {
            if skipOut > 0 { skipOut -= 1; return }
            let (event, stored) = sinks.ingest.ingest(line, at: clock())
            emit(.event(event, raw: stored))
            if !resultSeen, sinks.ingest.progress.result != nil {
                resultSeen = true
                onResult?()
            }
        }

        let status = ProcessRunner.stream(process, input: input, wakeFD: cancel.isRequested ? nil : cancel.fd,
                                          onStdoutLine: { line in
            if !heardFromAgent { onFirstLine?() }
            heardFromAgent = true
            guard let decoder else { return agentLine(line) }
            if decoder.finished { return }
            decoder.decode(line).forEach(agentLine)
            decoder.takeStderr().forEach(agentStderr)
            // A log stream goes on after the agent: once it said it is done, let the stream go.
            if decoder.finished { process.signal(SIGTERM) }
        }, onStderrLine: agentStderr, onWake: {
            sinks.ingest.flush()
            beginStop("stopped by the user")
        }, onBurstEnd: {
            sinks.ingest.flush()
            sinks.stderrLog.flush()
            checkOwnTrouble()
        }, timeout: {
            var waits: [TimeInterval] = []
            if stopAskedAt == nil, !heardFromAgent, let first = firstLineDeadline { waits.append(max(0, first.timeIntervalSinceNow)) }
            if stopAskedAt == nil, let deadline, sinks.ingest.progress.result == nil { waits.append(max(0, deadline.at.timeIntervalSinceNow)) }
            if stopAskedAt != nil && !forced { waits.append(Self.stopRetryInterval) }
            return waits.min()
        }, onTimeout: {
            if stopAskedAt == nil, let deadline, Date() >= deadline.at, sinks.ingest.progress.result == nil {
                stopIsFailure = true
                beginStop("timed out: no result within its --timeout of \(DurationText.format(deadline.seconds))")
                return
            }
            if stopAskedAt == nil, !heardFromAgent, let deadline = firstLineDeadline, Date() >= deadline {
                stopIsFailure = true
                beginStop("the agent printed nothing within \(Int(firstLineTimeout ?? 0))s: "
                          + "\(backend.kind.displayName)'s \(backend.traits.resourceNoun) did not start it (hung?)")
                return
            }
            guard let asked = stopAskedAt, !forced else { return }
            if Date().timeIntervalSince(asked) >= Self.stopDeadline {
                forced = true
                process.signal(SIGKILL)
            } else if !stopDone {
                askToStop()
            }
        })
        trace.mark("agent")
        sinks.ingest.flush()
        sinks.stderrLog.flush()
        return Followed(status: status, stopped: stopReason != nil, stderrTail: sinks.stderrTail, stopReason: stopReason,
                        forced: forced, decodedExit: decoder?.exitCode, stopIsFailure: stopIsFailure)
    }

    /// Reads how the sandbox ended, judges the run by its `result` event, removes the sandbox
    /// unless kept, and saves the final record.
    /// - Parameters:
    ///   - fromClient: how the agent ended, as its client's own exit status told (nothing is asked then).
    ///   - removedByClient: the client removed the sandbox itself as it ended (`podman run --rm`).
    ///   - beside: what ran beside the agent (a run this ccdeck started, not one it adopted).
    private func finish(_ record: inout RunRecord, followed: Followed, sinks: Sinks, fromClient: SandboxOutcome? = nil,
                        removedByClient: Bool = false, beside: BesideTheAgent? = nil) -> RunRecord {
        let progress = sinks.ingest.progress
        let ref = SandboxRef(record)
        trace.mark("after the client")
        let outcome = fromClient ?? backend.outcome(ref)
        trace.mark(fromClient == nil ? "outcome" : "outcome (from the client)")
        record.phases.containerStarted = outcome?.startedAt ?? (beside?.startedAt.wait() ?? nil) ?? record.phases.containerStarted
            ?? Self.stampedStart(runDirectory: store.directory(for: record.id))
        record.phases.firstEvent = progress.firstEventAt ?? record.phases.firstEvent
        record.phases.result = progress.resultAt ?? record.phases.result
        record.exitStatus = outcome?.exitCode ?? followed.decodedExit ?? followed.status?.code
        record.turns = progress.result != nil || progress.assistantMessages > 0 ? progress.turns : nil
        record.costUSD = progress.costUSD
        record.apiSeconds = progress.result?.durationAPIMS.map { Double($0) / 1000 }
        record.toolErrors = progress.toolErrors
        var verdict = RunJudgement.judge(result: progress.result, exitStatus: record.exitStatus, stopped: followed.stopped,
                                         stderrTail: followed.stderrTail, lastAPIFailure: progress.lastAPIFailure)
        if record.adoptedAt != nil && outcome == nil && progress.result == nil && !followed.stopped {
            verdict.reason = "the \(backend.traits.resourceNoun) is gone, and the output after ccdeck died with it"
        }
        let noun = backend.traits.resourceNoun
        var followed = followed
        if followed.stopReason == nil, let who = store.stopRequest(record.id) {
            // Another ccdeck stopped the sandbox: a stop, not a failure.
            followed.stopReason = "stopped from \(who)"
            followed.stopped = true
            verdict = RunVerdict(outcome: .stopped, reason: followed.stopReason!)
        }
        if let why = followed.stopReason {
            verdict.reason = why
            if followed.stopIsFailure { verdict.outcome = .failed }
            if followed.forced {
                verdict.reason += "; \(record.mode.displayName) did not stop the \(noun) within \(Int(Self.stopDeadline))s, "
                    + "so ccdeck ended its client and removed it"
            }
        }
        if !followed.stopped {
            do {
                try backend.collect(ref, into: record.workspace)
            } catch {
                // The work is not where it was asked for: not a success, whatever the agent said.
                if verdict.outcome == .succeeded { verdict = RunVerdict(outcome: .failed, reason: "the agent finished") }
                verdict.reason += "; its changes could not be brought back: \(error)"
            }
        }
        // What the agent changed is read from the workspace (brought back by now) while the
        // sandbox is removed: two independent waits, taken side by side.
        let changed = Joined<WorkspaceChanges.Summary?>()
        let discarded = Joined<Void>()
        if let baseline = record.changesBaseline,
           let tracker = beside?.tracker ?? changeTracker(workspace: record.workspace, id: record.id) {
            // The reading taken (and written down) at the agent's result stands when nothing was
            // touched since (a process the agent left running may have written on); else it is
            // read again. Its private repository goes beside the final save.
            if let early = beside?.earlyChanges.wait() ?? nil, !followed.stopped, tracker.unchanged(since: early.began) {
                record.changes = early.changes.summary
                discarded.start { tracker.discard() }
                trace.mark("changes (read at the result)")
            } else {
                changed.start { tracker.finish(baseline: baseline)?.summary }
            }
        }
        var removed = true
        if (!record.keep || followed.forced) && !removedByClient {
            // Removed as it stopped, beside the client's end; else now. The client has ended, so
            // the container has stopped and its wait answers at once, unless the client was
            // killed (a container that would not stop): that one is removed by force at once.
            // The wait is for the daemon's removal: the engine's time.
            let removedAlready = !followed.forced
                && beside.map { b in trace.engineCall { (b.removedEarly.wait(upTo: Self.stopDeadline) ?? nil) == true } } == true
            if !removedAlready { removed = removeWithRetry(ref, noun: noun, release: true) }
        }
        // The engine's raw log kept beside the record is read by now: only the redacted copy stays.
        unlink(store.directory(for: record.id) + "/" + RunSpec.keptOutputName)
        unlink(store.directory(for: record.id) + "/" + RunSpec.startStampName)
        if !removed { verdict.reason += "; the \(noun) could not be removed and is listed as a leftover" }
        trace.mark("remove")
        if let summary = changed.wait() {
            record.changes = summary
            trace.mark("changes (beside the removal)")
        }
        if let proxy = egressProxy {
            proxy.stop()
            record.egress = proxy.record
            releaseEgress(record.id)
        }
        record.state = RunState(verdict.outcome)
        record.reason = redactor.redact(verdict.reason)
        record.phases.cleanupDone = clock()
        record.endedAt = record.phases.cleanupDone
        sinks.releaseReserve()
        do { try store.save(record) } catch {
            emit(.notice("could not save the record of run \(record.id): \(Self.words(error))"))
        }
        trace.mark("save")
        _ = discarded.wait()
        trace.mark("private repository dropped")
        return record
    }

    /// The run's change tracker (nil without git): its private repository in the run's folder,
    /// the fresh folder's tree shared by the store.
    private func changeTracker(workspace: String, id: String) -> ChangeTracker? {
        ChangeTracker(workspace: workspace, runDirectory: store.directory(for: id), environment: environment,
                      sharedDirectory: store.root)
    }

    /// When the engine started the sandbox, from the stamp it wrote in the run's folder (see
    /// `RunSpec.startStampName`), or nil.
    static func stampedStart(runDirectory: String) -> Date? {
        var st = stat()
        guard stat(runDirectory + "/" + RunSpec.startStampName, &st) == 0 else { return nil }
        return Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
    }

    /// Removal is retried once: a sandbox left behind shows as a leftover, never silently forgotten.
    private func removeWithRetry(_ ref: SandboxRef, noun: String, release: Bool = false) -> Bool {
        for attempt in 1...2 {
            do {
                if release { try backend.release(ref) } else { try backend.remove(ref) }
                return true
            } catch {
                if attempt == 2 {
                    emit(.notice("could not remove \(noun) \(ref.name): \(redactor.redact("\(error)")) "
                                     + "(it shows as a leftover until removed)"))
                }
            }
        }
        return false
    }

    func makeSpec(record: RunRecord, request: RunRequest, owner: FileOwner) -> RunSpec {
        var env = environment
        // The token goes in only as the backend delivers it, under the variable its kind calls for.
        env["CLAUDE_CODE_OAUTH_TOKEN"] = nil
        env["ANTHROPIC_API_KEY"] = nil
        let secret = backend.traits.tokenDelivery == .hostProxy ? nil
            : token.map { Secret(name: $0.kind.environmentVariable, value: $0.value) }
        var pass = RunRequest.passedWhenSet.filter { env[$0] != nil }
        pass += request.passEnvironment.filter { !pass.contains($0) && $0 != secret?.name && env[$0] != nil }
        let mark = [Mark.run: record.id, Mark.mode: backend.kind.rawValue, Mark.store: store.storeID, Mark.schema: "1"]
        var spec = RunSpec(id: record.id, sandboxName: record.sandbox, image: request.image, workspace: record.workspace,
                           workspaceOwner: owner, prompt: request.prompt, mark: mark, token: secret, passEnvironment: pass,
                           environment: env, runtimeArguments: request.runtimeArguments)
        spec.options = request.options
        // A fresh workspace is never used again: a sandbox kept per workspace (incus's persistent
        // instance) would only be left behind, so such a backend makes one for this run alone.
        if request.workspace == nil && backend.traits.optionNames.contains("ephemeral") { spec.options["ephemeral"] = ["1"] }
        spec.runDirectory = store.directory(for: record.id)
        spec.removeAtEnd = !request.keep
        return spec
    }

    /// An error in words a user can act on (never "NSCocoaErrorDomain error 512").
    static func words(_ error: Error) -> String {
        if let e = error as? CocoaError {
            if let posix = e.underlying as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
            if let path = e.filePath { return "\(e.code == .fileWriteNoPermission ? "no permission to write" : "cannot use") \(InertText.line(path))" }
        }
        if let e = error as? POSIXError { return String(cString: strerror(e.code.rawValue)) }
        return "\(error)"
    }
}

extension CocoaError {
    var underlying: Error? { userInfo[NSUnderlyingErrorKey] as? Error }
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

    /// A digest of what `createFresh` writes (FNV-1a, stable across processes): the store's
    /// repository of the fresh folder's tree is named after it, so a ccdeck that writes other
    /// files there makes its own.
    public static let freshDigest: String = {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in ("package.json\0" + packageJSON).utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }()

    /// Creates the directory with a minimal `package.json`, writable by the image's `agent` user.
    /// It lives inside the run's 0700 directory, so opening it to uid 1000 exposes it to no one else.
    public static func createFresh(at path: String) throws {
        // Plain system calls: the folder is made on every run's path to its start.
        if mkdir(path, 0o777) != 0 && errno != EEXIST {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        let fd = open(path + "/package.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw RunStoreError.unreadable(path + "/package.json", String(cString: strerror(errno))) }
        defer { close(fd) }
        let error = Array(packageJSON.utf8).withUnsafeBytes { writeFully(fd, $0) }
        guard error == 0 else { throw RunStoreError.unreadable(path + "/package.json", String(cString: strerror(error))) }
        // Past the umask: the agent's user writes here.
        chmod(path, 0o777)
        fchmod(fd, 0o666)
        if geteuid() == 0 {
            let uid = uid_t(RunnerImage.agentUID)
            chown(path, uid, gid_t(RunnerImage.agentUID))
            fchown(fd, uid, gid_t(RunnerImage.agentUID))
        }
    }
}
