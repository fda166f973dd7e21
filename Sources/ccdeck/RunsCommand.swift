import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List and show the runs kept under $XDG_STATE_HOME/ccdeck.",
        subcommands: [List.self, Show.self],
        defaultSubcommand: List.self
    )

    static var store: RunStore { RunStore(environment: ProcessInfo.processInfo.environment) }

    /// A live record whose ccdeck is gone says so, instead of claiming to run forever.
    static func stateLabel(_ record: RunRecord, store: RunStore) -> String {
        store.isOrphaned(record) ? "\(record.state.rawValue) (ccdeck gone)" : record.state.rawValue
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "Every run, newest first.",
                                                        aliases: ["list"])

        @Flag(help: "Print JSON for scripts.")
        var json = false

        func run() throws {
            let store = RunsCommand.store
            let records = store.list()
            if json {
                Terminal.out(try Terminal.json(records))
                return
            }
            if records.isEmpty {
                Terminal.out("no runs yet in \(store.root) (start one with `ccdeck run`)")
                return
            }
            let rows = records.map { r -> [String] in
                [r.id, r.mode.displayName, RunsCommand.stateLabel(r, store: store), Terminal.localTime(r.createdAt),
                 r.wallTime.map(RunSummary.formatSeconds) ?? "-", r.turns.map(String.init) ?? "-",
                 r.costUSD.map(RunSummary.formatCost) ?? "-", Self.shorten(r.prompt, 40)]
            }
            Terminal.table(["ID", "MODE", "STATE", "CREATED", "WALL", "TURNS", "COST", "PROMPT"], rows).forEach(Terminal.out)
        }

        static func shorten(_ s: String, _ n: Int) -> String {
            let one = InertText.line(s.replacingOccurrences(of: "\n", with: " "))
            return one.count <= n ? one : String(one.prefix(n - 1)) + "…"
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
            let rows: [(String, String)] = [
                ("id", record.id), ("mode", record.mode.displayName), ("state", RunsCommand.stateLabel(record, store: store)),
                ("created", Terminal.localTime(record.createdAt)), ("image", record.image),
                ("container", record.container + (record.keep ? " (kept)" : "")), ("workspace", record.workspace),
                ("token", record.tokenSource ?? "-"), ("output", outputPath),
                ("prompt", InertText.line(record.prompt)),
            ]
            rows.forEach { Terminal.out(($0.0 + ":").padding(toLength: 11, withPad: " ", startingAt: 0) + $0.1) }
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
