import ArgumentParser
import CCDeckBackends
import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The same task on several modes, N times each, each run in its own fresh workspace, one table.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Run the same task on several modes and compare them: outcomes, phases, wall and API time, turns, cost.",
        discussion: """
            Modes that are not ready are listed with the reason and skipped; a failing mode does not stop the others. \
            Ctrl-C stops every run the comparison started and removes their sandboxes. Incus runs are ephemeral here. \
            Exit status: 0 the comparison ran (whatever its runs' outcomes), 2 usage or setup error, 130/143 interrupted. \
            --json follows docs/compare-schema.json.
            """
    )

    @Option(help: ArgumentHelp("Modes to compare, comma-separated (default: every mode that can run).", valueName: "m1,m2"))
    var modes: String?

    @Option(name: .customLong("repeat"), help: "Runs of each mode.")
    var repeatCount = 1

    @Flag(help: "All runs at once (default: one after another).")
    var parallel = false

    @Option(help: "The task for the agent.")
    var prompt: String?

    @Option(help: "Read the task from this file.")
    var promptFile: String?

    @Option(help: "Runner image for the modes that use one.")
    var image = RunnerImage.defaultTag

    @Option(name: .customLong("runtime-arg"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Extra argument for docker's and podman's `run` (repeatable).", valueName: "arg"))
    var runtimeArgs: [String] = []

    @Option(name: .customLong("pass-env"), help: ArgumentHelp("Pass this host variable into the sandboxes by name (repeatable).",
                                                              valueName: "name"))
    var passEnv: [String] = []

    @OptionGroup var backendOptions: BackendOptions

    @OptionGroup var egressOptions: EgressOptions

    @OptionGroup var timeoutOption: TimeoutOption

    @Flag(help: "Print the comparison as JSON (docs/compare-schema.json).")
    var json = false

    @Flag(help: "Print the comparison as Markdown.")
    var markdown = false

    func validate() throws {
        guard (1...50).contains(repeatCount) else { throw ValidationError("--repeat takes 1 to 50") }
        if json && markdown { throw ValidationError("give --json or --markdown, not both") }
        if prompt != nil && promptFile != nil { throw ValidationError("give --prompt or --prompt-file, not both") }
        for name in passEnv where name.isEmpty || name.contains("=") {
            throw ValidationError("--pass-env takes a variable name, not NAME=value")
        }
        for i in (backendOptions.isolation ?? "runc").split(separator: ",") where !["runc", "gvisor"].contains(String(i)) {
            throw ValidationError("--isolation takes runc, gvisor or runc,gvisor")
        }
    }

    /// One column of the comparison: a backend, with the options it runs with.
    struct Variant {
        var name: String
        var backend: any SandboxBackend
        var isolation: String?
        var options: [String: [String]]
        var notReady: String?
    }

    func run() throws {
        let env = backendOptions.environment(CLIContext.environment)
        let registry = CLIContext.registry
        var text = prompt ?? RunRequest.defaultPrompt
        if let promptFile {
            guard let data = FileManager.default.contents(atPath: promptFile) else {
                throw CLIError.usage("cannot read --prompt-file \(InertText.line(promptFile))")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        if let problem = RunRequest.problem(with: text) { throw CLIError.usage(problem) }

        let backends: [any SandboxBackend]
        if let modes {
            backends = try modes.split(separator: ",").map { try registry.require(BackendKind(String($0)), environment: env) }
        } else {
            backends = registry.runnable(environment: env)
        }
        let statuses = BackendRegistry.probeAll(backends, timeout: 3)
        // --isolation runc,gvisor sets docker and podman runs under each, side by side.
        let isolationList = (backendOptions.isolation ?? "runc").split(separator: ",").map(String.init)
        var variants: [Variant] = []
        for (backend, status) in zip(backends, statuses) {
            var options = backendOptions.byName.filter { backend.traits.optionNames.contains($0.key) && $0.key != "isolation" }
            if backend.traits.optionNames.contains("ephemeral") { options["ephemeral"] = ["1"] }  // nothing kept between runs
            let notReady = !backend.traits.canRun ? "cannot run yet"
                : status.state == .ready ? nil : status.state.label + (status.detail.isEmpty ? "" : ": \(status.detail)")
            if backend.traits.optionNames.contains("isolation") {
                for isolation in isolationList {
                    var o = options
                    o["isolation"] = [isolation]
                    let name = backend.kind.rawValue + (isolation == "runc" ? "" : "+" + isolation)
                    variants.append(Variant(name: name, backend: backend, isolation: isolation, options: o, notReady: notReady))
                }
            } else {
                variants.append(Variant(name: backend.kind.rawValue, backend: backend, isolation: nil, options: options, notReady: notReady))
            }
        }
        let runnable = variants.filter { $0.notReady == nil }
        guard !runnable.isEmpty else {
            throw CLIError.setup("no mode to compare is ready: " + variants.map { "\($0.name): \($0.notReady ?? "?")" }.joined(separator: "; "))
        }
        var token: Token?
        if runnable.contains(where: { $0.backend.traits.tokenDelivery != .hostProxy }) {
            token = try TokenResolver(environment: env).resolve()
        }

        let jobs = runnable.flatMap { v in (0..<repeatCount).map { (v, $0) } }
        let (task, runToken) = (text, token)
        let egress = try egressOptions.policy(environment: env)
        let runner = Runner(count: jobs.count)
        runner.watchSignals()
        let store = RunStore(environment: env)
        let groupID = Comparison.newGroupID()
        let work: @Sendable (Int) -> Void = { (index: Int) in
            let (variant, n) = jobs[index]
            guard !runner.stopping, let stopFD = runner.stopFD(index) else { return }
            var request = RunRequest(prompt: task, image: image,
                                     buildIfMissing: image == RunnerImage.defaultTag ? ImageBuild(dockerfile: RunnerImage.dockerfile) : nil,
                                     runtimeArguments: variant.backend.traits.takesRuntimeArguments ? runtimeArgs : [],
                                     passEnvironment: passEnv)
            request.options = variant.options
            request.group = groupID
            request.egress = egress
            request.timeout = timeoutOption.seconds
            let driver = RunDriver(backend: variant.backend, store: store,
                                   token: variant.backend.traits.tokenDelivery == .hostProxy ? nil : runToken, environment: env) { _ in }
            let record: RunRecord?
            do { record = try driver.run(request, wakeFD: stopFD) } catch let failure as RunDriver.Failure {
                if case .setup(_, let r) = failure { record = r } else { record = nil }
                if record == nil { Terminal.err("compare: \(variant.name) \(n + 1)/\(repeatCount): \(failure)") }
            } catch {
                record = nil
                Terminal.err("compare: \(variant.name) \(n + 1)/\(repeatCount): \(error)")
            }
            if let record {
                runner.finish(index, record)
                Terminal.err("compare: \(variant.name) \(n + 1)/\(repeatCount): \(record.state.rawValue)"
                             + (record.wallTime.map { " in \(RunSummary.formatSeconds($0))" } ?? "")
                             + (record.state == .succeeded ? "" : ": \(record.reason ?? "")"))
            }
        }
        Terminal.err("compare: \(runnable.map(\.name).joined(separator: ", ")), \(repeatCount) run\(repeatCount == 1 ? "" : "s") each"
                     + (parallel ? ", all at once" : ", one after another"))
        if parallel {
            let group = DispatchGroup()
            for i in jobs.indices {
                group.enter()
                let thread = Thread { work(i); group.leave() }
                thread.stackSize = 1 << 20
                thread.start()
            }
            group.wait()
        } else {
            for i in jobs.indices { work(i) }
        }

        let records = runner.records
        let comparison = Comparison(prompt: text, repeatCount: repeatCount, parallel: parallel, variants: variants.map { v in
            (v.name, v.backend.kind.rawValue, v.isolation, v.notReady,
             jobs.indices.filter { jobs[$0].0.name == v.name }.compactMap { records[$0] })
        })
        if json {
            Terminal.out(try Terminal.json(comparison))
        } else if markdown {
            Terminal.out(comparison.markdown)
        } else {
            let (header, rows) = comparison.table
            Terminal.table(header, rows.map { $0 + Array(repeating: "", count: max(0, header.count - $0.count)) }).forEach(Terminal.out)
            Terminal.out("")
            comparison.findings.forEach { Terminal.out("- " + $0) }
        }
        if runner.stopping {
            let sig = SignalPipe.received
            throw ExitCode(sig > 0 ? 128 + sig : 130)
        }
    }

    /// The comparison's runs: a stop pipe each, so one Ctrl-C stops them all; their records.
    final class Runner: @unchecked Sendable {
        private let lock = NSLock()
        private var pipes: [(read: Int32, write: Int32)?]
        private(set) var records: [RunRecord?]
        private var stopped = false

        init(count: Int) {
            pipes = (0..<count).map { _ in Pipe2.make() }
            records = Array(repeating: nil, count: count)
        }

        var stopping: Bool {
            lock.lock()
            defer { lock.unlock() }
            return stopped
        }

        func stopFD(_ i: Int) -> Int32? { pipes[i]?.read }

        func finish(_ i: Int, _ record: RunRecord) {
            lock.lock()
            records[i] = record
            lock.unlock()
        }

        /// A signal stops every run: started ones through their pipes, the rest never start.
        func watchSignals() {
            let fd = SignalPipe.install()
            let thread = Thread { [self] in
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                while poll(&p, 1, -1) < 0 && errno == EINTR {}
                lock.lock()
                stopped = true
                for pipe in pipes { if let pipe { var byte: UInt8 = 1; _ = write(pipe.write, &byte, 1) } }
                lock.unlock()
            }
            thread.start()
        }
    }
}
