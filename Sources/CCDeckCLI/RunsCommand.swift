import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List and show the runs kept under $XDG_STATE_HOME/ccdeck.",
        subcommands: [List.self, Show.self, Diff.self],
        defaultSubcommand: List.self
    )

    static var store: RunStore { RunStore(environment: ProcessInfo.processInfo.environment) }

    /// A live record whose ccdeck is gone says so at once, instead of claiming to run forever.
    static func stateLabel(_ record: RunRecord, store: RunStore) -> String {
        store.driverLost(record) ? RunState.lostDriverLabel : record.state.rawValue
    }

    /// The mode, marked when this ccdeck has no backend of that name (a newer ccdeck wrote it).
    static func modeLabel(_ record: RunRecord) -> String {
        CLIContext.registry.kinds.contains(record.mode) ? record.mode.displayName : "\(record.mode.displayName) (unknown mode)"
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "Every run, newest first.",
                                                        aliases: ["list"])

        @Flag(help: "Print JSON for scripts: {\"runs\": [...], \"totals\": {...}} (totals per backend included).")
        var json = false

        @Option(help: ArgumentHelp("Only runs started within this long (1d, 12h, 30m).", valueName: "duration"))
        var since: String?

        @Flag(help: "After the table, the totals per backend.")
        var byBackend = false

        func validate() throws {
            if let since, DurationText.parse(since) == nil {
                throw ValidationError("--since takes a duration like 1d, 12h or 30m, not \(InertText.line(since))")
            }
        }

        struct Listing: Encodable {
            var runs: [RunRecord]
            var totals: RunTotals
        }

        func run() throws {
            let store = RunsCommand.store
            let now = Date()
            var records = store.list()
            if let cutoff = since.flatMap(DurationText.parse) { records = records.filter { $0.createdAt >= now.addingTimeInterval(-cutoff) } }
            let totals = RunTotals.of(records, now: now, byBackend: json || byBackend) { $0.state.isLive && !store.driverLost($0) }
            if json {
                Terminal.out(try Terminal.json(Listing(runs: records, totals: totals)))
                return
            }
            if records.isEmpty {
                Terminal.out(since == nil ? "no runs yet in \(store.root) (start one with `ccdeck run`)"
                                          : "no runs started within \(InertText.line(since!))")
                return
            }
            let rows = records.map { r -> [String] in
                [InertText.line(r.id), RunsCommand.modeLabel(r), r.isolation?.label ?? "-", RunsCommand.stateLabel(r, store: store),
                 Terminal.localTime(r.createdAt), r.wallTime.map(RunSummary.formatSeconds) ?? "-",
                 r.turns.map(String.init) ?? "-", r.toolErrors.map(String.init) ?? "-",
                 r.costUSD.map(RunSummary.formatCost) ?? "-", Self.shorten(r.prompt, 40)]
            }
            Terminal.table(["ID", "MODE", "ISOLATION", "STATE", "CREATED", "WALL", "TURNS", "TOOL ERRORS", "COST", "PROMPT"], rows)
                .forEach(Terminal.out)
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
        static let configuration = CommandConfiguration(abstract: "One run: its record and its output, rendered.")

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
                    text += ": " + egress.hosts.joined(separator: ", ") + "; \(egress.allowedConnections) connection"
                        + (egress.allowedConnections == 1 ? "" : "s") + " allowed"
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
}
