import CCDeckBackends
import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How runs launched from the dashboard are started (mirrors `ccdeck run`'s options).
public struct LaunchOptions: Sendable {
    public var image: String
    public var runtimeArguments: [String]
    public var passEnvironment: [String]

    public init(image: String = RunnerImage.defaultTag, runtimeArguments: [String] = [], passEnvironment: [String] = []) {
        self.image = image
        self.runtimeArguments = runtimeArguments
        self.passEnvironment = passEnvironment
    }
}

/// The real world: the run store, the token, the engines. Container engines are watched by
/// push (`docker events`, `podman events`); a stream that ends means the daemon went away,
/// and a slow reconnect loop (every 5 s) notices it coming back. Backends without events are
/// probed every 60 s.
public final class LiveServices: DashboardServices, @unchecked Sendable {
    public static let reconnectInterval: TimeInterval = 5
    public static let slowPollInterval: TimeInterval = 60

    let environment: [String: String]
    let store: RunStore
    let options: LaunchOptions
    private let outputSource: StoreOutputSource
    private var post: (@Sendable (DashboardMessage) -> Void) = { _ in }
    private let lock = NSLock()
    /// Runs this process drives: the write end of the pipe that stops each.
    private var stopPipes: [String: Int32] = [:]
    private var watchers: [ChildProcess] = []
    private var shuttingDown = false
    private var statuses: [BackendKind: BackendStatus] = [:]
    private let orphanQueue = DispatchQueue(label: "ccdeck.orphans")
    private let wakeup = NSCondition()
    private var orphanRefreshPending = false
    private var reloadPending = false

    public init(environment: [String: String], options: LaunchOptions) {
        self.environment = environment
        self.store = RunStore(environment: environment)
        self.options = options
        self.outputSource = StoreOutputSource(store: store)
    }

    public var output: OutputSource { outputSource }

    public func start(post: @escaping @Sendable (DashboardMessage) -> Void) {
        self.post = post
        background { [self] in
            post(.runsLoaded(loadRuns()))
        }
        background { [self] in
            post(.token(resolveToken()))
        }
        for kind in [BackendKind.docker, .podman] {
            Thread { [self] in superviseEngine(kind) }.start()
        }
        Thread { [self] in pollOthers() }.start()
    }

    func loadRuns() -> [RunEntry] { entries(store.list()) }

    private func entries(_ records: [RunRecord]) -> [RunEntry] {
        records.map { RunEntry(record: $0, driverGone: store.isOrphaned($0)) }
    }

    func resolveToken() -> TokenInfo {
        do { return .resolved(try TokenResolver(environment: environment).resolve()) } catch {
            return .failed("\(error)")
        }
    }

    // MARK: backends

    private func setStatus(_ s: BackendStatus) {
        lock.lock()
        let changed = statuses[s.kind] != s
        statuses[s.kind] = s
        lock.unlock()
        if changed { post(.backends([s])) }
    }

    private func isReady(_ kind: BackendKind) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return statuses[kind]?.state == .ready
    }

    private var stopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return shuttingDown
    }

    /// Probe; while ready, follow the engine's event stream; when it ends, probe again slowly.
    private func superviseEngine(_ kind: BackendKind) {
        let backend = ContainerBackend(kind: kind, environment: environment)
        while !stopping {
            let status = backend.probe(timeout: 3)
            setStatus(status)
            if status.state == .ready {
                refreshOrphans()
                followEvents(kind)  // blocks while the stream lasts
                if stopping { return }
                continue
            }
            if status.state == .notInstalled { return }
            sleepUnlessStopping(Self.reconnectInterval)
        }
    }

    private func followEvents(_ kind: BackendKind) {
        let filter = "label=\(RunDriver.labelPrefix)store=\(store.storeID)"
        let args = kind == .docker
            ? ["events", "--filter", filter, "--filter", "type=container", "--format", "{{json .}}"]
            : ["events", "--filter", filter, "--format", "json"]
        // The watcher dies with ccdeck, even when ccdeck is killed outright.
        guard let child = try? ChildProcess.spawn(Command(kind.rawValue, args, environment: environment).dyingWithParent())
        else { return }
        lock.lock()
        watchers.append(child)
        lock.unlock()
        let started = Date()
        _ = ProcessRunner.stream(child, onStdoutLine: { [self] _ in refreshOrphans(reloadRuns: true) })
        lock.lock()
        watchers.removeAll { $0 === child }
        lock.unlock()
        // A stream that cannot even start (no events support) must not spin: wait before retrying.
        if Date().timeIntervalSince(started) < 2 { sleepUnlessStopping(Self.reconnectInterval) }
    }

    private func pollOthers() {
        let others = BackendRegistry.all(environment: environment).filter { $0.kind != .docker && $0.kind != .podman }
        while !stopping {
            for s in BackendRegistry.probeAll(others, timeout: 3) { setStatus(s) }
            sleepUnlessStopping(Self.slowPollInterval)
        }
    }

    /// Waits without waking up in between; `shutdown` ends the wait at once.
    private func sleepUnlessStopping(_ seconds: TimeInterval) {
        let deadline = Date().addingTimeInterval(seconds)
        wakeup.lock()
        while !stopping && Date() < deadline { _ = wakeup.wait(until: deadline) }
        wakeup.unlock()
    }

    // MARK: orphans

    /// Lists ccdeck's containers (this store's labels only) whose run is not live. Coalesces
    /// bursts of engine events into one listing.
    func refreshOrphans(reloadRuns: Bool = false) {
        orphanQueue.async { [self] in
            reloadPending = reloadPending || reloadRuns
            if orphanRefreshPending { return }
            orphanRefreshPending = true
            orphanQueue.asyncAfter(deadline: .now() + 0.2) { [self] in
                orphanRefreshPending = false
                let records = store.list()  // read once for both answers
                if reloadPending { post(.runsLoaded(entries(records))) }
                reloadPending = false
                post(.orphans(listOrphans(records)))
            }
        }
    }

    func listOrphans(_ records: [RunRecord]) -> [Orphan] {
        let live = Set(records.filter { $0.state.isLive && !store.isOrphaned($0) }.map(\.id))
        var result: [Orphan] = []
        for kind in [BackendKind.docker, .podman] where isReady(kind) {
            let backend = ContainerBackend(kind: kind, environment: environment)
            let containers = (try? backend.containers(labelled: [RunDriver.labelPrefix + "store": store.storeID])) ?? []
            for c in containers {
                let run = c.labels[RunDriver.labelPrefix + "run"]
                if let run, live.contains(run) { continue }
                result.append(Orphan(id: c.id, name: c.name, backend: kind, runID: run, state: c.state, createdAt: c.createdAt))
            }
        }
        return result.sorted { ($0.createdAt ?? .distantPast) > ($1.createdAt ?? .distantPast) }
    }

    // MARK: actions

    public func launch(mode: BackendKind, prompt: String, workspace: String?) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { post(.notice(Notice("cannot launch: out of file descriptors", .error))); return }
        fds.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
        let (stopRead, stopWrite) = (fds[0], fds[1])
        Thread { [self] in
            defer { close(stopRead) }
            var runID: String?
            do {
                let token = try TokenResolver(environment: environment).resolve()
                let backend = ContainerBackend(kind: mode, environment: environment)
                let driver = RunDriver(backend: backend, store: store, token: token, environment: environment) { [self] update in
                    switch update {
                    case .created(let record):
                        // The run shows at once, even while its image is still being built.
                        runID = record.id
                        lock.lock()
                        stopPipes[record.id] = stopWrite
                        lock.unlock()
                        post(.runStarted(record))
                    case .started(let record):
                        post(.runStarted(record))
                    case .event(let event, _): if let runID { post(.runEvent(id: runID, event)) }
                    case .stderr(let line): if let runID { post(.runStderr(id: runID, line)) }
                    case .notice(let text): post(.notice(Notice(text)))
                    }
                }
                let request = RunRequest(prompt: prompt, workspace: workspace, image: options.image,
                                         buildIfMissing: options.image == RunnerImage.defaultTag ? ImageBuild(dockerfile: RunnerImage.dockerfile) : nil,
                                         runtimeArguments: options.runtimeArguments, passEnvironment: options.passEnvironment)
                let record = try driver.run(request, wakeFD: stopRead)
                post(.runFinished(record))
                post(.notice(Notice(RunSummary.lines(for: record).first ?? "run finished",
                                    record.state == .succeeded ? .info : .warning)))
            } catch let failure as RunDriver.Failure {
                if case .setup(_, let record?) = failure { post(.runFinished(record)) }
                post(.notice(Notice("launch failed: \(failure)", .error)))
            } catch {
                post(.notice(Notice("launch failed: \(error)", .error)))
            }
            lock.lock()
            if let id = runID { stopPipes[id] = nil }
            lock.unlock()
            close(stopWrite)
            refreshOrphans()
        }.start()
    }

    public func stop(runID: String) {
        lock.lock()
        let fd = stopPipes[runID]
        lock.unlock()
        guard let fd else {
            // Driven by another ccdeck: stop its container directly; that ccdeck records the outcome.
            background { [self] in
                guard let record = try? store.load(runID) else { return }
                let backend = ContainerBackend(kind: record.mode, environment: environment)
                backend.stop(RunSpec(id: record.id, image: record.image, sandboxName: record.container, workspace: record.workspace,
                                     prompt: record.prompt, labels: [:], passEnvironment: [], environment: environment,
                                     runtimeArguments: []))
                post(.notice(Notice("stopped \(record.container)")))
            }
            return
        }
        var byte: UInt8 = 1
        _ = write(fd, &byte, 1)
    }

    public func removeRun(_ record: RunRecord) {
        background { [self] in
            var removed: [String] = []
            for kind in [BackendKind.docker, .podman] where isReady(kind) {
                let backend = ContainerBackend(kind: kind, environment: environment)
                let labels = [RunDriver.labelPrefix + "store": store.storeID, RunDriver.labelPrefix + "run": record.id]
                for c in (try? backend.containers(labelled: labels)) ?? [] {
                    if (try? backend.removeContainer(id: c.id)) != nil { removed.append("\(kind.displayName) container \(c.name)") }
                }
            }
            do {
                try store.remove(record.id)
                removed.append("run \(record.id)")
                post(.runRemoved(id: record.id))
                post(.notice(Notice("removed " + removed.joined(separator: ", "))))
            } catch {
                post(.notice(Notice("could not remove run \(record.id): \(error)", .error)))
            }
            refreshOrphans()
        }
    }

    public func removeOrphan(_ orphan: Orphan) {
        background { [self] in
            let backend = ContainerBackend(kind: orphan.backend, environment: environment)
            // Check the labels again right before deleting: never anything that is not ours.
            let ours = ((try? backend.containers(labelled: [RunDriver.labelPrefix + "store": store.storeID])) ?? [])
                .contains { $0.id == orphan.id }
            guard ours else {
                post(.notice(Notice("\(orphan.name) is gone or not ccdeck's: nothing removed", .warning)))
                refreshOrphans()
                return
            }
            do {
                try backend.removeContainer(id: orphan.id)
                post(.notice(Notice("removed \(orphan.backend.displayName) container \(orphan.name)")))
            } catch {
                post(.notice(Notice("could not remove \(orphan.name): \(error)", .error)))
            }
            refreshOrphans()
        }
    }

    public func repushToken() {
        background { [self] in
            let info = resolveToken()
            post(.token(info))
            switch info {
            case .resolved(let t):
                let status = TokenStatus(token: t, now: Date())
                let left = status.timeLeft.map { $0 > 0 ? ", expires in \(TokenStatus.format(duration: $0))" : ", EXPIRED" } ?? ""
                // No backend keeps its own copy yet: containers get the token at launch.
                post(.notice(Notice("token re-read from \(Panes.shortSource(t.source))\(left); pushed to: none (no backend keeps a copy yet)",
                                    status.urgency == .expired ? .warning : .info)))
            case .failed(let why):
                post(.notice(Notice("token: \(why)", .error)))
            case .loading:
                break
            }
        }
    }

    public func attachCommand(for record: RunRecord) -> Command? {
        guard record.mode == .docker || record.mode == .podman else { return nil }
        return Command(record.mode.rawValue,
                       ["exec", "-it", "-w", "/workspace", record.container, "sh", "-c",
                        "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"],
                       environment: environment)
    }

    public func shutdown() {
        lock.lock()
        shuttingDown = true
        let toStop = watchers
        lock.unlock()
        for w in toStop { w.signal(SIGTERM) }
        wakeup.lock()
        wakeup.broadcast()
        wakeup.unlock()
    }

    private func background(_ work: @escaping @Sendable () -> Void) {
        DispatchQueue.global().async(execute: work)
    }
}

/// Reads runs' stored output on demand, keeping the indexes of the few runs looked at last.
final class StoreOutputSource: OutputSource, @unchecked Sendable {
    let store: RunStore
    private var indexes: [(id: String, index: RunOutputIndex)] = []

    init(store: RunStore) { self.store = store }

    private func index(_ id: String) -> RunOutputIndex {
        if let i = indexes.firstIndex(where: { $0.id == id }) {
            let entry = indexes.remove(at: i)
            indexes.insert(entry, at: 0)
            return entry.index
        }
        let idx = RunOutputIndex(path: store.outputPath(for: id))
        indexes.insert((id, idx), at: 0)
        if indexes.count > 4 { indexes.removeLast() }
        return idx
    }

    func lineCount(run id: String) -> Int { index(id).count }

    func line(run id: String, at i: Int) -> String? {
        index(id).line(at: i).map { String(decoding: $0, as: UTF8.self) }
    }
}
