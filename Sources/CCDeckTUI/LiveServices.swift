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
    /// Take over runs whose ccdeck died (off for a read-only dashboard).
    public var adoptLostRuns: Bool
    /// Backend options (`device`, `profile`, …); each launch passes those its backend takes.
    public var backendOptions: [String: [String]] = [:]
    /// What the runs it launches may reach (nil: Claude Code's hosts and egress.conf's).
    public var egress: EgressPolicy?
    /// The launch form's timeout to start with (`dashboard --timeout`).
    public var timeout: TimeInterval?
    /// When a silent live run shows as stalled.
    public var stallAfter: TimeInterval = 300
    /// How the dashboard calls for attention.
    public var bell = true
    public var title = true

    public init(image: String = RunnerImage.defaultTag, runtimeArguments: [String] = [], passEnvironment: [String] = [],
                adoptLostRuns: Bool = true) {
        self.image = image
        self.runtimeArguments = runtimeArguments
        self.passEnvironment = passEnvironment
        self.adoptLostRuns = adoptLostRuns
    }
}

/// The real world: the run store, the token, and the backends of a registry, reached only
/// through the run contract. Backends with an event stream are watched by push (a stream that
/// ends means the daemon went away, and a slow reconnect loop, every 5 s, notices it coming
/// back); the others are probed every 60 s.
public final class LiveServices: DashboardServices, @unchecked Sendable {
    public static let reconnectInterval: TimeInterval = 5
    public static let slowPollInterval: TimeInterval = 60

    let environment: [String: String]
    let store: RunStore
    let options: LaunchOptions
    let registry: BackendRegistry
    private let backends: [BackendKind: any SandboxBackend]
    private let outputSource: StoreOutputSource
    private var post: (@Sendable (DashboardMessage) -> Void) = { _ in }
    private let lock = NSLock()
    /// Runs this process drives (launched or adopted): the write end of the pipe that stops each.
    /// Written to and closed only under `lock`, so a stop never reaches a reused descriptor.
    private var stopPipes: [String: Int32] = [:]
    private var watchers: [ChildProcess] = []
    private var shuttingDown = false
    private var statuses: [BackendKind: BackendStatus] = [:]
    private let orphanQueue = DispatchQueue(label: "ccdeck.orphans")
    private let wakeup = NSCondition()
    private var orphanRefreshPending = false
    private var reloadPending = false
    /// Runs of other ccdecks whose driver lock a thread waits on, to hear at once when they end.
    private var watchedDrivers: Set<String> = []

    public init(environment: [String: String], options: LaunchOptions, registry: BackendRegistry = .standard) {
        self.environment = environment
        self.store = RunStore(environment: environment)
        self.options = options
        self.registry = registry
        self.backends = Dictionary(uniqueKeysWithValues: registry.all(environment: environment).map { ($0.kind, $0) })
        self.outputSource = StoreOutputSource(store: store)
    }

    public var output: OutputSource { outputSource }

    public func start(post: @escaping @Sendable (DashboardMessage) -> Void) {
        self.post = post
        // An older store's first indexing is said in the dashboard, not on the terminal it draws.
        RunStore.onIndexProgress = { done, total in
            post(.notice(Notice("indexing the run history (first use): \(done)/\(total) runs")))
        }
        background { [self] in
            let (entries, complete) = loadRuns()
            post(.runsLoaded(entries))
            postHistory(complete: complete, loaded: entries.count)
            adoptLostRuns(entries)
        }
        background { [self] in
            post(.token(resolveToken()))
            postKeptTokens()
        }
        var polled: [any SandboxBackend] = []
        for kind in registry.kinds {
            guard let backend = backends[kind] else { continue }
            if backend.eventsCommand(store: store.storeID) != nil {
                Thread { [self] in supervise(backend) }.start()
            } else {
                polled.append(backend)
            }
        }
        let probedSlowly = polled
        Thread { [self] in poll(probedSlowly) }.start()
    }

    /// How many runs of the history a page holds.
    static let pageSize = 200

    /// The live runs and the newest page of the history (from the store's index: opening the
    /// dashboard does not depend on the size of the history); whether that is all of it.
    func loadRuns() -> (entries: [RunEntry], complete: Bool) {
        let newest = store.rows(RunIndex.Query(limit: Self.pageSize))
        let live = store.rows(RunIndex.Query(states: [.starting, .running]))
        var seen = Set<String>()
        let records = (live + newest).filter { seen.insert($0.id).inserted }.compactMap { try? $0.record() }
        return (entries(records), newest.count < Self.pageSize)
    }

    /// The history's size and totals, from the index (no record decoded).
    private func postHistory(complete: Bool, loaded: Int) {
        post(.runsHistory(complete: complete, total: store.index.flatMap { try? $0.count() } ?? loaded,
                          totals: store.totals(now: Date(), byBackend: true)))
    }

    public func loadRuns(olderThan cursor: RunCursor) {
        loadPage({ $0.olderThan = (cursor.createdAt, cursor.id) }) { .olderRunsLoaded($0, complete: $1) }
    }

    public func loadRuns(newerThan cursor: RunCursor) {
        loadPage({ $0.newerThan = (cursor.createdAt, cursor.id) }) { .newerRunsLoaded($0, reachedTop: $1) }
    }

    /// One page of the history past a cursor, off the UI thread; `last` says nothing lies beyond.
    private func loadPage(_ beyond: @escaping @Sendable (inout RunIndex.Query) -> Void,
                          _ message: @escaping @Sendable (_ entries: [RunEntry], _ last: Bool) -> DashboardMessage) {
        background { [self] in
            var query = RunIndex.Query(limit: Self.pageSize)
            beyond(&query)
            let rows = store.rows(query)
            post(message(entries(rows.compactMap { try? $0.record() }), rows.count < Self.pageSize))
        }
    }

    private func entries(_ records: [RunRecord]) -> [RunEntry] {
        let list = records.map { RunEntry(record: $0, driverGone: store.driverLost($0)) }
        watchOtherDrivers(list)
        return list
    }

    /// For each live run another ccdeck drives, a thread that sleeps on its driver lock: when that
    /// ccdeck finishes or dies the lock is let go, and the runs are read again then, not polled.
    private func watchOtherDrivers(_ list: [RunEntry]) {
        let live = list.filter { $0.record.state.isLive && !$0.driverGone }.map(\.record.id)
        lock.lock()
        let fresh = live.filter { !watchedDrivers.contains($0) && stopPipes[$0] == nil }
        watchedDrivers.formUnion(fresh)
        lock.unlock()
        for id in fresh {
            let thread = Thread { [self] in
                store.waitForDriver(id)
                lock.lock()
                watchedDrivers.remove(id)
                lock.unlock()
                refreshOrphans(reloadRuns: true)
            }
            thread.stackSize = 64 << 10
            thread.start()
        }
    }

    /// What each backend that keeps a copy of the token holds, as ccdeck noted it.
    private func postKeptTokens() {
        post(.keptTokens(registry.kinds.compactMap { (backends[$0] as? any TokenKeeper)?.keptToken(store: store) }))
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

    /// Probe; while ready, follow the backend's event stream; when it ends, probe again slowly.
    private func supervise(_ backend: any SandboxBackend) {
        while !stopping {
            let status = backend.probe(timeout: 3)
            setStatus(status)
            if status.state == .ready {
                refreshOrphans(reloadRuns: true)  // and take over its runs whose ccdeck died
                followEvents(backend)  // blocks while the stream lasts
                if stopping { return }
                continue
            }
            if status.state == .notInstalled { return }
            sleepUnlessStopping(Self.reconnectInterval)
        }
    }

    private func followEvents(_ backend: any SandboxBackend) {
        // The watcher dies with ccdeck, even when ccdeck is killed outright.
        guard let command = backend.eventsCommand(store: store.storeID),
              let child = try? ChildProcess.spawn(command.dyingWithParent()) else { return }
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

    private func poll(_ polled: [any SandboxBackend]) {
        guard !polled.isEmpty else { return }
        while !stopping {
            for s in BackendRegistry.probeAll(polled, timeout: 3) { setStatus(s) }
            refreshOrphans(reloadRuns: true)
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

    // MARK: orphans and lost runs

    /// Lists ccdeck's resources (this store's mark only) whose run is not live. Coalesces bursts
    /// of backend events into one listing; a reload also takes over runs whose ccdeck died.
    func refreshOrphans(reloadRuns: Bool = false) {
        orphanQueue.async { [self] in
            reloadPending = reloadPending || reloadRuns
            if orphanRefreshPending { return }
            orphanRefreshPending = true
            orphanQueue.asyncAfter(deadline: .now() + 0.2) { [self] in
                orphanRefreshPending = false
                if reloadPending {
                    let (loaded, complete) = loadRuns()
                    post(.runsLoaded(loaded))
                    postHistory(complete: complete, loaded: loaded.count)
                    adoptLostRuns(loaded)
                }
                reloadPending = false
                post(.orphans(listOrphans(store.liveRecords())))
            }
        }
    }

    /// - Parameter records: the live runs (those whose sandboxes are not leftovers).
    func listOrphans(_ records: [RunRecord]) -> [Orphan] {
        let live = Set(records.filter { $0.state.isLive && !store.driverLost($0) }.map(\.id))
        var result: [Orphan] = []
        for kind in registry.kinds where isReady(kind) {
            guard let backend = backends[kind] else { continue }
            for r in (try? backend.resources(store: store.storeID)) ?? [] {
                if let run = r.runID, live.contains(run) { continue }
                result.append(r)
            }
        }
        return result.sorted { ($0.createdAt ?? .distantPast) > ($1.createdAt ?? .distantPast) }
    }

    /// Takes over every run whose ccdeck died and whose backend can re-read its output: the
    /// run's lock decides, so two dashboards never adopt the same run.
    func adoptLostRuns(_ entries: [RunEntry]) {
        guard options.adoptLostRuns else { return }
        for entry in entries where entry.driverGone {
            // Only while its backend answers: a daemon that is down says nothing about the run.
            guard let backend = backends[entry.record.mode], isReady(entry.record.mode),
                  backend.outputCommand(SandboxRef(entry.record)) != nil,
                  let driverLock = store.takeOver(entry.record.id) else { continue }
            // Read again under the lock: the record may have changed since it was listed.
            guard let record = try? store.load(entry.record.id), record.state.isLive else { continue }
            // The token is not given again, only known, so that the re-read output is redacted too.
            var known: Token?
            if case .resolved(let t) = resolveToken() { known = t }
            drive(record.id, backend: backend, token: known) { [self] driver, stopRead in
                post(.notice(Notice("adopting run \(record.id): its ccdeck is gone")))
                return driver.adopt(record, lock: driverLock, wakeFD: stopRead)
            }
        }
    }

    // MARK: actions

    public func launch(mode: BackendKind, prompt: String, workspace: String?, group: String?, timeout: TimeInterval?) {
        let failed: @Sendable (String) -> DashboardMessage = { why in
            group.map { .compareLaunchFailed(group: $0, mode: mode, why: why) } ?? .launchFailed(why)
        }
        guard let backend = backends[mode], backend.traits.canRun else {
            post(failed("mode \(mode.displayName) cannot run here"))
            return
        }
        let token: Token?
        if backend.traits.tokenDelivery == .hostProxy { token = nil } else {
            switch resolveToken() {
            case .resolved(let t): token = t
            case .failed(let why): post(failed(why)); return
            case .loading: post(failed("the token is still being read")); return
            }
        }
        drive(nil, backend: backend, token: token, failed: failed) { [self] driver, stopRead in
            var request = RunRequest(prompt: prompt, workspace: workspace, image: options.image,
                                     buildIfMissing: options.image == RunnerImage.defaultTag ? ImageBuild(dockerfile: RunnerImage.dockerfile) : nil,
                                     runtimeArguments: backend.traits.takesRuntimeArguments ? options.runtimeArguments : [],
                                     passEnvironment: options.passEnvironment)
            request.options = options.backendOptions.filter { backend.traits.optionNames.contains($0.key) }
            request.group = group
            request.egress = options.egress
            request.timeout = timeout
            return try driver.run(request, wakeFD: stopRead)
        }
    }

    /// Drives one run (launched or adopted) on its own thread, with a pipe that stops it.
    private func drive(_ knownID: String?, backend: any SandboxBackend, token: Token?,
                       failed: @escaping @Sendable (String) -> DashboardMessage = { .launchFailed($0) },
                       _ body: @escaping @Sendable (RunDriver, Int32) throws -> RunRecord) {
        guard let fds = Pipe2.make() else {
            post(knownID == nil ? failed("out of file descriptors") : .notice(Notice("cannot start: out of file descriptors", .error)))
            return
        }
        let (stopRead, stopWrite) = fds
        let runID = RunIDBox(knownID)
        if let knownID { register(knownID, stopWrite) }
        Thread { [self] in
            defer { close(stopRead) }
            let driver = RunDriver(backend: backend, store: store, token: token, environment: environment) { [self] update in
                switch update {
                case .created(let record):
                    // The run shows at once, even while its image is still being built.
                    runID.value = record.id
                    register(record.id, stopWrite)
                    post(.runStarted(record))
                case .started(let record):
                    post(.runStarted(record))
                case .event(let event, _): if let id = runID.value { post(.runEvent(id: id, event)) }
                case .stderr(let line): if let id = runID.value { post(.runStderr(id: id, line)) }
                case .notice(let text): post(.notice(Notice(text)))
                case .egress(let decision):
                    // Refusals only: an allowed connection changes nothing on screen.
                    if !decision.allowed, let id = runID.value { post(.runEgress(id: id, decision)) }
                }
            }
            do {
                let record = try body(driver, stopRead)
                post(.runFinished(record))
                post(.notice(Notice(RunSummary.lines(for: record).first ?? "run finished",
                                    record.state == .succeeded ? .info : .warning)))
            } catch let failure as RunDriver.Failure {
                if case .setup(_, let record?) = failure {
                    post(.runFinished(record))
                    post(.notice(Notice("launch failed: \(failure)", .error)))
                } else {
                    post(failed("\(failure)"))  // it never became a run
                }
            } catch {
                post(failed("\(error)"))
            }
            lock.lock()
            if let id = runID.value { stopPipes[id] = nil }
            close(stopWrite)
            lock.unlock()
            refreshOrphans()
        }.start()
    }

    private func register(_ id: String, _ fd: Int32) {
        lock.lock()
        stopPipes[id] = fd
        lock.unlock()
    }

    private final class RunIDBox: @unchecked Sendable {
        var value: String?
        init(_ value: String?) { self.value = value }
    }

    public func stop(runID: String) {
        lock.lock()
        if let fd = stopPipes[runID] {
            var byte: UInt8 = 1
            _ = write(fd, &byte, 1)
            lock.unlock()
            return
        }
        lock.unlock()
        // Driven by another ccdeck: say so beside the run, then stop its sandbox; that ccdeck
        // records the outcome, as a stop.
        background { [self] in
            guard let record = try? store.load(runID) else { return }
            store.recordStopRequest(record.id, by: "another ccdeck (a dashboard, pid \(getpid()))")
            guard let backend = backends[record.mode] else {
                post(.notice(Notice("cannot stop \(record.id): mode \(record.mode.displayName) is not known to this ccdeck", .error)))
                return
            }
            let ok = backend.stop(SandboxRef(record))
            post(.notice(Notice(ok ? "stopped \(record.sandbox)" : "could not stop \(record.sandbox)", ok ? .info : .error)))
        }
    }

    public func removeRun(_ record: RunRecord) {
        background { [self] in
            var removed: [String] = []
            var failed: [String] = []
            if let backend = backends[record.mode], isReady(record.mode) {
                for r in (try? backend.resources(store: store.storeID)) ?? [] where r.runID == record.id {
                    do {
                        try backend.remove(SandboxRef(runID: record.id, name: r.name, id: r.id))
                        removed.append("\(backend.traits.resourceNoun) \(r.name)")
                    } catch {
                        failed.append("\(r.name): \(error)")
                    }
                }
            }
            guard failed.isEmpty else {
                // The record stays while its sandbox does: nothing is forgotten half-removed.
                post(.notice(Notice("could not remove \(failed.joined(separator: "; ")): run \(record.id) kept", .error)))
                refreshOrphans()
                return
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
        pruneOrphans([orphan])
    }

    /// Removes each, after checking again right before that it carries ccdeck's mark: never
    /// anything that is not ours, whatever the list said.
    public func pruneOrphans(_ orphans: [Orphan]) {
        background { [self] in
            var removed: [String] = []
            var problems: [String] = []
            var marked: [BackendKind: [SandboxResource]] = [:]
            for orphan in orphans {
                guard let backend = backends[orphan.backend] else { continue }
                if marked[orphan.backend] == nil { marked[orphan.backend] = (try? backend.resources(store: store.storeID)) ?? [] }
                guard marked[orphan.backend]!.contains(where: { $0.id == orphan.id }) else {
                    problems.append("\(orphan.name) is gone or not ccdeck's: nothing removed")
                    continue
                }
                do {
                    try backend.remove(SandboxRef(runID: orphan.runID ?? "", name: orphan.id, id: orphan.id))
                    removed.append("\(orphan.backend.displayName) \(backend.traits.resourceNoun) \(orphan.name)")
                } catch {
                    problems.append("could not remove \(orphan.name): \(error)")
                }
            }
            if let problem = problems.first {
                post(.notice(Notice(problem + (problems.count > 1 ? " (and \(problems.count - 1) more)" : ""),
                                    removed.isEmpty ? .warning : .error)))
            } else if removed.count == 1 {
                post(.notice(Notice("removed \(removed[0])")))
            } else {
                post(.notice(Notice("removed \(removed.count) leftovers")))
            }
            refreshOrphans()
        }
    }

    public func loadChanges(runID: String) {
        background { [self] in
            let dir = store.directory(for: runID)
            guard let data = FileManager.default.contents(atPath: dir + "/changes.json"),
                  let changes = try? RunStore.decoder.decode(WorkspaceChanges.self, from: data) else {
                let why = (try? store.load(runID)).map(WorkspaceChanges.absentReason) ?? "its record cannot be read"
                post(.changesLoaded(id: runID, ["no recorded changes: " + why]))
                return
            }
            let patch = FileManager.default.contents(atPath: dir + "/changes.diff") ?? Data()
            // Bounded: a rewritten lockfile should not take the dashboard's memory with it.
            post(.changesLoaded(id: runID, changes.statLines() + [""] + WorkspaceChanges.patchLines(patch, limit: 20_000)))
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
                // Backends that keep their own copy (a Fly app's secret) get it again; the others
                // get the token at launch.
                var pushed: [String] = []
                var failed: [String] = []
                for kind in registry.kinds where isReady(kind) {
                    guard let keeper = backends[kind] as? any TokenKeeper else { continue }
                    do { pushed.append(try keeper.pushToken(t, store: store)) } catch { failed.append("\(kind.displayName): \(error)") }
                }
                let to = pushed.isEmpty ? "none (no ready backend keeps a copy)" : pushed.joined(separator: ", ")
                postKeptTokens()
                if let failure = failed.first {
                    post(.notice(Notice("token re-read from \(Panes.shortSource(t.source))\(left); could not push: \(failure)", .error)))
                } else {
                    post(.notice(Notice("token re-read from \(Panes.shortSource(t.source))\(left); pushed to: \(to)",
                                        status.urgency == .expired ? .warning : .info)))
                }
            case .failed(let why):
                post(.notice(Notice("token: \(why)", .error)))
            case .loading:
                break
            }
        }
    }

    public func attachCommand(for record: RunRecord) -> Command? {
        backends[record.mode]?.attachCommand(SandboxRef(record))
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

    /// Reads only the beginning of a long line from disk.
    func line(run id: String, at i: Int, maxBytes: Int) -> StoredLine? {
        guard let (bytes, length) = index(id).line(at: i, maxBytes: maxBytes) else { return nil }
        var stored = StoredLine(bytes: bytes, maxBytes: maxBytes)
        stored.omittedBytes = length - stored.text.utf8.count
        return stored
    }
}
