import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation

/// What ccdeck left in its backends: every resource carrying this store's mark, on every backend
/// that answers, and removal of named ones. Nothing without ccdeck's mark is listed or removed.
struct SandboxesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandboxes",
        abstract: "List and remove the sandboxes ccdeck made (containers, instances, …), on every backend.",
        subcommands: [List.self, Remove.self, Prune.self],
        defaultSubcommand: List.self
    )

    /// One resource and why it is there.
    struct Entry: Encodable {
        var backend: String
        var name: String
        var id: String
        var state: String
        var createdAt: Date?
        var run: String?
        /// `live run`, `persistent`, `run finished`, `driver gone`, `run unknown`.
        var why: String
    }

    /// Every backend's resources for this store, with the run each belongs to and why it is there.
    static func entries(env: [String: String], all: Bool = false) -> (entries: [Entry], unanswered: [String]) {
        let store = RunStore(environment: env)
        // Each resource's run, asked of the index by id (not every record of the history).
        var cache: [String: RunRecord?] = [:]
        func runRecord(_ id: String) -> RunRecord? {
            if let known = cache[id] { return known }
            let found = try? store.load(id)
            cache[id] = found
            return found
        }
        var entries: [Entry] = []
        var unanswered: [String] = []
        let backends = CLIContext.registry.all(environment: env)
        let statuses = BackendRegistry.probeAll(backends, timeout: 3)
        for (backend, status) in zip(backends, statuses) where status.state == .ready {
            guard let found = try? backend.resources(store: store.storeID) else {
                unanswered.append(backend.kind.displayName)
                continue
            }
            for r in found {
                let record = r.runID.flatMap(runRecord)
                let why: String
                if r.persistent { why = "persistent" }
                else if let record, record.state.isLive { why = store.driverLost(record) ? "driver gone" : "live run" }
                else if record != nil { why = "run finished" }
                else { why = "run unknown" }
                entries.append(Entry(backend: r.backend.rawValue, name: r.name, id: r.id, state: r.state, createdAt: r.createdAt,
                                     run: r.runID, why: why))
            }
            if all {
                for r in (try? backend.foreignResources(store: store.storeID)) ?? [] {
                    entries.append(Entry(backend: r.backend.rawValue, name: r.name, id: r.id, state: r.state, createdAt: r.createdAt,
                                         run: nil, why: "not ccdeck's"))
                }
            }
        }
        return (entries.sorted { ($0.createdAt ?? .distantPast) > ($1.createdAt ?? .distantPast) }, unanswered)
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "Every sandbox ccdeck made, on every backend.",
                                                        aliases: ["list"])

        @Flag(help: "Print JSON for scripts.")
        var json = false

        @Flag(help: "Also the sandboxes that are not ccdeck's (marked so; nothing ccdeck does touches them).")
        var all = false

        func run() throws {
            let (entries, unanswered) = SandboxesCommand.entries(env: CLIContext.environment, all: all)
            unanswered.forEach { Terminal.warning("\($0) did not list its sandboxes") }
            if json {
                Terminal.out(try Terminal.json(entries))
                return
            }
            if entries.isEmpty {
                Terminal.out("no sandboxes of ccdeck's on any ready backend")
                return
            }
            let now = Date()
            let rows = entries.map { e -> [String] in
                [e.backend, e.name, e.state, e.createdAt.map { RunSummary.formatSeconds(now.timeIntervalSince($0)) } ?? "-",
                 e.run ?? "-", e.why]
            }
            Terminal.table(["BACKEND", "NAME", "STATE", "AGE", "RUN", "WHY"], rows).forEach(Terminal.out)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove sandboxes ccdeck made, by name.")

        @Argument(help: "Names (or ids) from `ccdeck sandboxes ls`.")
        var names: [String]

        func validate() throws {
            if names.isEmpty { throw ValidationError("name at least one sandbox (see `ccdeck sandboxes ls`)") }
        }

        func run() throws {
            let env = CLIContext.environment
            let store = RunStore(environment: env)
            var failed = false
            let backends = CLIContext.registry.all(environment: env)
            let found = backends.flatMap { b in ((try? b.resources(store: store.storeID)) ?? []).map { (b, $0) } }
            for name in names {
                // Only what carries this store's mark: a name that is not ccdeck's is refused, never removed.
                guard let (backend, r) = found.first(where: { $0.1.name == name || $0.1.id == name }) else {
                    Terminal.error("\(name) is not a sandbox of ccdeck's (see `ccdeck sandboxes ls`): nothing removed")
                    failed = true
                    continue
                }
                do {
                    try backend.remove(SandboxRef(runID: r.runID ?? "", name: r.id, id: r.id))
                    Terminal.out("removed \(backend.kind.displayName) \(backend.traits.resourceNoun) \(r.name)")
                } catch {
                    Terminal.error("could not remove \(r.name): \(error)")
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prune",
            abstract: "Remove every leftover: sandboxes of runs that ended or whose ccdeck died (not live runs, not persistent instances).")

        @Flag(help: "Say what would go, remove nothing.")
        var dryRun = false

        @Option(help: ArgumentHelp("Only leftovers older than this (e.g. 30m, 2h, 1d).", valueName: "duration"))
        var olderThan: String?

        @Flag(help: "Do not ask first.")
        var yes = false

        func validate() throws {
            if let olderThan, Self.seconds(olderThan) == nil {
                throw ValidationError("--older-than takes a duration like 45s, 30m, 2h or 1d, not \(olderThan)")
            }
        }

        /// `45s`, `30m`, `2h`, `1d` in seconds.
        static func seconds(_ text: String) -> TimeInterval? {
            guard let unit = text.last, let n = Double(text.dropLast()), n >= 0, n.isFinite else { return nil }
            switch unit {
            case "s": return n
            case "m": return n * 60
            case "h": return n * 3600
            case "d": return n * 86_400
            default: return nil
            }
        }

        func run() throws {
            let env = CLIContext.environment
            let (entries, unanswered) = SandboxesCommand.entries(env: env)
            unanswered.forEach { Terminal.warning("\($0) did not list its sandboxes: its leftovers stay") }
            let cutoff = olderThan.flatMap(Self.seconds).map { Date().addingTimeInterval(-$0) }
            let leftovers = entries.filter { e in
                ["run finished", "driver gone", "run unknown"].contains(e.why)
                    && (cutoff == nil || (e.createdAt.map { $0 < cutoff! } ?? true))
            }
            if leftovers.isEmpty {
                Terminal.out("no leftovers")
                return
            }
            for e in leftovers { Terminal.out("\(dryRun ? "would remove" : "removing") \(e.backend) \(e.name) (\(e.why))") }
            if dryRun { return }
            if !yes, try !Terminal.confirm("remove", "\(leftovers.count) leftover(s)") {
                Terminal.out("nothing removed")
                return
            }
            let backends = Dictionary(CLIContext.registry.all(environment: env).map { ($0.kind.rawValue, $0) }, uniquingKeysWith: { a, _ in a })
            var failed = 0
            for e in leftovers {
                guard let backend = backends[e.backend] else { continue }
                do {
                    try backend.remove(SandboxRef(runID: e.run ?? "", name: e.id, id: e.id))
                } catch {
                    Terminal.error("could not remove \(e.name): \(error)")
                    failed += 1
                }
            }
            Terminal.out("removed \(leftovers.count - failed) leftover(s)")
            if failed > 0 { throw ExitCode(1) }
        }
    }
}
