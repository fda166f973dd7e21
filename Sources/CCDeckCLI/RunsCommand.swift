import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List and show the runs kept under $XDG_STATE_HOME/ccdeck.",
        subcommands: [List.self, Show.self, Diff.self, Prune.self, Reindex.self],
        defaultSubcommand: List.self
    )

    static var store: RunStore { RunStore(environment: ProcessInfo.processInfo.environment) }

    /// A live record whose ccdeck is gone says so at once, instead of claiming to run forever.
    static func stateLabel(_ record: RunRecord, store: RunStore) -> String {
        store.driverLost(record) ? RunState.lostDriverLabel : record.state.rawValue
    }

    /// The mode, marked when this ccdeck has no backend of that name (a newer ccdeck wrote it).
    static func modeLabel(_ record: RunRecord) -> String { modeLabel(record.mode) }

    static func modeLabel(_ mode: BackendKind) -> String {
        CLIContext.registry.kinds.contains(mode) ? mode.displayName : "\(mode.displayName) (unknown mode)"
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "Every run, newest first.",
                                                        aliases: ["list"])

        @Flag(help: "Print JSON for scripts: {\"runs\": [...], \"totals\": {...}} (totals per backend included).")
        var json = false

        @Option(help: ArgumentHelp("At most this many runs, newest first (default: 50 on a terminal; all with --json or "
                                   + "when piped).", valueName: "n"))
        var limit: Int?

        @Option(help: ArgumentHelp("Only runs started within this long (1d, 12h, 30m).", valueName: "duration"))
        var since: String?

        @Option(help: ArgumentHelp("Only runs in this state (repeatable): starting, running, succeeded, failed, stopped, "
                                   + "lost-driver.", valueName: "state"))
        var state: [String] = []

        @Option(help: ArgumentHelp("Only runs of this mode (repeatable): docker, podman, incus, local, …", valueName: "mode"))
        var mode: [String] = []

        @Option(help: ArgumentHelp("Only runs whose prompt contains this text (any case).", valueName: "text"))
        var grep: String?

        @Flag(help: "After the table, the totals per backend.")
        var byBackend = false

        static let states = ["starting", "running", "succeeded", "failed", "stopped", "unknown", RunState.lostDriverLabel]

        func validate() throws {
            if let since, DurationText.parse(since) == nil {
                throw ValidationError("--since takes a duration like 1d, 12h or 30m, not \(InertText.line(since))")
            }
            if let limit, limit < 1 { throw ValidationError("--limit takes a number of runs, 1 or more") }
            if let bad = state.first(where: { !Self.states.contains($0) }) {
                throw ValidationError("--state takes one of \(Self.states.joined(separator: ", ")), not \(InertText.line(bad))")
            }
        }

        func run() throws {
            let store = RunsCommand.store
            let now = Date()
            var query = RunIndex.Query(since: since.flatMap(DurationText.parse).map { now.addingTimeInterval(-$0) })
            // A lost driver's run is a live record whose ccdeck is gone: asked as live, told apart below.
            query.states = Array(Set(state.map { $0 == RunState.lostDriverLabel ? [RunState.starting, .running] : [RunState(rawValue: $0) ?? .unknown] }
                .joined()))
            query.modes = mode
            query.promptContains = grep
            let wanted = limit ?? (json || isatty(1) != 1 ? nil : 50)
            let filterLost = !state.isEmpty && (state.contains(RunState.lostDriverLabel) != state.contains { ["starting", "running"].contains($0) })
            query.limit = filterLost ? nil : wanted.map { $0 + 1 }  // one more: to say there are more
            var rows = store.rows(query)
            if filterLost {
                let wantLost = state.contains(RunState.lostDriverLabel)
                rows = rows.filter { !$0.state.isLive || (store.driverLost(row: $0) == wantLost) }
                if let wanted { rows = Array(rows.prefix(wanted + 1)) }
            }
            let more = wanted.map { rows.count > $0 } ?? false
            if let wanted { rows = Array(rows.prefix(wanted)) }
            let totals = store.totals(now: now, byBackend: json || byBackend)
            if json {
                // Each record passed through as stored (JSON ccdeck wrote), not decoded and made again.
                let totalsJSON = try Terminal.json(totals)
                var out = "{\n\"runs\": ["
                for (i, row) in rows.enumerated() {
                    // Made inert line by line as Terminal.json does (C1 controls, bidi overrides).
                    let lines = row.recordJSON.split(separator: 0x0A, omittingEmptySubsequences: false).map { InertText.jsonLine($0) }
                    out += (i == 0 ? "\n" : ",\n") + lines.joined(separator: "\n")
                }
                out += (rows.isEmpty ? "" : "\n") + "],\n\"totals\": " + totalsJSON + "\n}"
                Terminal.out(out)
                return
            }
            if rows.isEmpty {
                let filtered = !state.isEmpty || !mode.isEmpty || grep != nil
                Terminal.out(filtered ? "no runs match" : since.map { "no runs started within \(InertText.line($0))" }
                             ?? "no runs yet in \(store.root) (start one with `ccdeck run`)")
                return
            }
            let rowsText = rows.map { r -> [String] in
                [InertText.line(r.id), RunsCommand.modeLabel(r.mode), r.isolation?.label ?? "-",
                 r.state.isLive && store.driverLost(row: r) ? RunState.lostDriverLabel : r.state.rawValue,
                 Terminal.localTime(r.createdAt), r.wallTime.map(RunSummary.formatSeconds) ?? "-",
                 r.turns.map(String.init) ?? "-", r.toolErrors.map(String.init) ?? "-",
                 r.costUSD.map(RunSummary.formatCost) ?? "-", Self.shorten(r.prompt, 40)]
            }
            Terminal.table(["ID", "MODE", "ISOLATION", "STATE", "CREATED", "WALL", "TURNS", "TOOL ERRORS", "COST", "PROMPT"], rowsText)
                .forEach(Terminal.out)
            if more { Terminal.out("… older runs not shown: --limit N for more, --json for all") }
            Terminal.out("")
            Terminal.out(totals.line)
            if byBackend { totals.backendLines.forEach { Terminal.out("  " + $0) } }
        }

        static func shorten(_ s: String, _ n: Int) -> String {
            let one = InertText.line(s.replacingOccurrences(of: "\n", with: " "))
            return one.count <= n ? one : String(one.prefix(n - 1)) + "…"
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "What a run changed in its workspace: files added, modified and deleted, and the patch.",
            discussion: "Against a snapshot taken when the run started, or, in a git repository, against its HEAD "
                + "(neither HEAD nor the index is touched).")

        @Argument(help: "Run id, an unambiguous prefix of one, or `latest`.")
        var id: String

        @Flag(help: "Only the files and their counts.")
        var stat = false

        @Flag(help: "The list of files as JSON.")
        var json = false

        func run() throws {
            let store = RunsCommand.store
            let record = try store.find(id)
            let dir = store.directory(for: record.id)
            guard let data = FileManager.default.contents(atPath: dir + "/changes.json"),
                  let changes = try? RunStore.decoder.decode(WorkspaceChanges.self, from: data) else {
                throw CLIError.setup("run \(record.id) has no recorded changes: \(WorkspaceChanges.absentReason(record))")
            }
            if json {
                Terminal.out(try Terminal.json(changes))
                return
            }
            changes.statLines().forEach(Terminal.out)
            if stat { return }
            let patch = FileManager.default.contents(atPath: dir + "/changes.diff") ?? Data()
            if !patch.isEmpty { Terminal.out("") }
            WorkspaceChanges.patchLines(patch).forEach(Terminal.out)
            if let cut = changes.patchCutAt { Terminal.out("(the patch was cut at \(cut >> 20) MiB; the list above is whole)") }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One run: its record and its output, rendered.")

        @Argument(help: "Run id, an unambiguous prefix of one, or `latest`.")
        var id: String

        @Flag(help: "Print the record as JSON.")
        var json = false

        @Flag(help: "Print the stored stream-json output as it was received.")
        var raw = false

        func run() throws {
            let store = RunsCommand.store
            let record = try store.find(id)
            if json {
                Terminal.out(try Terminal.json(record))
                return
            }
            let outputPath = store.outputPath(for: record.id)
            let output = FileManager.default.contents(atPath: outputPath) ?? Data()
            if raw {
                for line in output.split(separator: 0x0A) { Terminal.out(InertText.jsonLine(line)) }
                return
            }
            let noun = CLIContext.registry.backend(record.mode, environment: [:])?.traits.resourceNoun ?? "sandbox"
            var rows: [(String, String)] = [
                ("id", record.id), ("mode", RunsCommand.modeLabel(record)),
                ("state", RunsCommand.stateLabel(record, store: store)),
                ("created", Terminal.localTime(record.createdAt)),
            ]
            if !record.image.isEmpty { rows.append(("image", record.image)) }
            rows.append((noun, record.sandbox + (record.sandboxID.map { " (\($0))" } ?? "") + (record.keep ? " (kept)" : "")))
            if let isolation = record.isolation { rows.append(("isolation", isolation.label)) }
            rows.append(("workspace", record.workspace + (record.workspaceTransport.map { " (\($0.label))" } ?? "")))
            if let user = record.agentUser { rows.append(("agent user", user)) }
            rows.append(("token", record.tokenSource ?? "-"))
            if let credentials = record.credentials { rows.append(("sandbox held", credentials.summary)) }
            if let errors = record.toolErrors, errors > 0 { rows.append(("tool errors", "\(errors)")) }
            if let egress = record.egress {
                var text = egress.enforcementText
                if egress.enforcement == .allowlist {
                    // A tunnel (https) or one plain-http request: each is one decision.
                    text += ": " + egress.hosts.joined(separator: ", ") + "; \(egress.allowedConnections) allowed"
                }
                rows.append(("egress", text))
                if !egress.denied.isEmpty {
                    rows.append(("denied", egress.deniedSummary + " (log: \(store.directory(for: record.id))/egress.jsonl)"))
                }
            }
            if let changes = record.changes {
                rows.append(("changes", changes.label + (changes.isEmpty ? "" : " (ccdeck runs diff \(record.id))")))
            }
            if let timeout = record.timeout { rows.append(("timeout", DurationText.format(timeout) + " from the agent's start")) }
            if let group = record.group { rows.append(("comparison", InertText.line(group))) }
            if let adopted = record.adoptedAt { rows.append(("adopted", Terminal.localTime(adopted) + " (its first ccdeck died)")) }
            var prompt = record.prompt.replacingOccurrences(of: "\n", with: " ")
            if let bytes = record.promptBytes { prompt += " (\(bytes) bytes in all: \(store.promptPath(for: record.id)))" }
            rows += [("output", outputPath), ("prompt", prompt)]
            rows.forEach { Terminal.out(($0.0 + ":").padding(toLength: 14, withPad: " ", startingAt: 0) + InertText.line($0.1)) }
            Terminal.out("")
            let parser = StreamEventParser()
            let renderer = EventRenderer()
            for line in output.split(separator: 0x0A) {
                renderer.render(parser.parse(data: Data(line))).forEach { Terminal.out($0.text) }
            }
            Terminal.out("")
            RunSummary.lines(for: record).forEach(Terminal.out)
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prune",
            abstract: "Delete old runs: their records, outputs and the workspaces ccdeck made for them.",
            discussion: "A live run is never touched. A workspace you named (--workspace) is never deleted.")

        @Option(help: ArgumentHelp("Runs that ended (or started, if they never ended) longer ago than this (30d, 12h).",
                                   valueName: "duration"))
        var olderThan: String

        @Flag(help: "Keep failed runs, whatever their age.")
        var keepFailed = false

        @Flag(help: "Only say what would be deleted.")
        var dryRun = false

        @Flag(help: "Delete without asking.")
        var yes = false

        func validate() throws {
            if DurationText.parse(olderThan) == nil {
                throw ValidationError("--older-than takes a duration like 30d, 12h or 30m, not \(InertText.line(olderThan))")
            }
        }

        func run() throws {
            let store = RunsCommand.store
            var query = RunIndex.Query()
            query.endedBefore = Date().addingTimeInterval(-DurationText.parse(olderThan)!)
            // Finished runs only: a state this ccdeck does not know (a newer one wrote it) may be live.
            query.states = [.succeeded, .failed, .stopped].filter { !(keepFailed && $0 == .failed) }
            let candidates = store.rows(query)
            if candidates.isEmpty {
                Terminal.out("no runs ended more than \(InertText.line(olderThan)) ago" + (keepFailed ? " (failed ones kept)" : ""))
                return
            }
            let bytes = candidates.reduce(Int64(0)) { $0 + RunsCommand.diskUsage(store.directory(for: $1.id)) }
            let what = "\(candidates.count) run\(candidates.count == 1 ? "" : "s") (\(RunsCommand.size(bytes)) on disk), "
                + "the oldest from \(Terminal.localTime(candidates.last!.createdAt)), the newest from \(Terminal.localTime(candidates.first!.createdAt))"
            if dryRun {
                for r in candidates.prefix(20) { Terminal.out("would delete \(r.id) \(r.state.rawValue) \(Terminal.localTime(r.createdAt))") }
                if candidates.count > 20 { Terminal.out("… and \(candidates.count - 20) more") }
                Terminal.out("would delete " + what)
                return
            }
            if !yes, try !Terminal.confirm("delete", what) {
                Terminal.out("nothing deleted")
                return
            }
            var deleted = 0
            var failed = 0
            for r in candidates {
                // Asked again from its file: a run adopted (live again) since the listing is kept.
                guard let record = try? store.load(r.id), !record.state.isLive else { continue }
                do {
                    try store.remove(r.id)
                    deleted += 1
                } catch {
                    Terminal.error("could not delete run \(r.id): \(error)")
                    failed += 1
                }
            }
            Terminal.out("deleted \(deleted) run\(deleted == 1 ? "" : "s")")
            if failed > 0 { throw ExitCode(1) }
        }
    }

    struct Reindex: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reindex",
            abstract: "Build the run index again from the record files (they are the truth; the index is only for listing).")

        func run() throws {
            let store = RunsCommand.store
            let started = Date()
            let count = try store.reindex { done, total in
                if isatty(2) == 1 { FileHandle.standardError.write(Data("\rccdeck: indexing runs: \(done)/\(total)".utf8)) }
            }
            if isatty(2) == 1 { FileHandle.standardError.write(Data("\n".utf8)) }
            Terminal.out("indexed \(count) run\(count == 1 ? "" : "s") in \(String(format: "%.1f", Date().timeIntervalSince(started)))s")
        }
    }

    /// Bytes used by the files under `path`.
    static func diskUsage(_ path: String) -> Int64 {
        var total: Int64 = 0
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        while let name = walker.nextObject() as? String {
            var st = stat()
            if lstat(path + "/" + name, &st) == 0 { total += Int64(st.st_blocks) * 512 }
        }
        return total
    }

    static func size(_ bytes: Int64) -> String {
        bytes >= 1 << 30 ? String(format: "%.1f GiB", Double(bytes) / Double(1 << 30))
            : bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
            : "\(bytes >> 10) KiB"
    }
}
