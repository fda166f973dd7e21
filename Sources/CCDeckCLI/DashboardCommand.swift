import ArgumentParser
import CCDeckBackends
import CCDeckCore
import CCDeckTUI
import Foundation

struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "The full-screen dashboard: live runs, backends, token expiry, orphans.",
        discussion: """
            Keys: n launch, a attach, s stop, d remove, t re-push token, tab focus, j/k or arrows move, \
            pgup/pgdn scroll, g/G top/bottom, ? help, q quit. Remap them in $XDG_CONFIG_HOME/ccdeck/keys.conf \
            (lines like `launch = n`). Runs launched here use --image, --runtime-arg and --pass-env like `ccdeck run`.
            """
    )

    @Flag(help: "Print docs/keybindings.md (every action and its keys) and exit.")
    var printKeybindings = false

    @Flag(help: "Hide launch, attach, stop, remove and re-push.")
    var readonly = false

    @Flag(help: "Monochrome (also when NO_COLOR is set and not empty).")
    var noColor = false

    @Option(help: "Runner image for runs launched from the dashboard.")
    var image = RunnerImage.defaultTag

    @Option(name: .customLong("runtime-arg"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Extra argument for the engine's `run` (repeatable).", valueName: "arg"))
    var runtimeArgs: [String] = []

    @Option(name: .customLong("pass-env"), help: ArgumentHelp("Pass this variable into launched runs by name (repeatable).",
                                                              valueName: "name"))
    var passEnv: [String] = []

    @OptionGroup var backendOptions: BackendOptions

    @OptionGroup var egressOptions: EgressOptions

    @OptionGroup var timeoutOption: TimeoutOption

    @Option(help: ArgumentHelp("Show a live run as stalled after this long without an event from its agent (default 5m).",
                               valueName: "duration"))
    var stallAfter: String?

    @Flag(help: "No terminal bell when a run launched here ends or stalls.")
    var noBell = false

    @Flag(help: "Leave the terminal window's title alone (default: it counts the runs that need you).")
    var noTitle = false

    func validate() throws {
        if let stallAfter, DurationText.parse(stallAfter) == nil {
            throw ValidationError("--stall-after takes a duration like 90s or 5m, not \(InertText.line(stallAfter))")
        }
        for name in passEnv where name.isEmpty || name.contains("=") {
            throw ValidationError("--pass-env takes a variable name, not NAME=value")
        }
    }

    func run() throws {
        if printKeybindings {
            Terminal.out(ActionTable.keybindingsMarkdown)
            return
        }
        var options = LaunchOptions(image: image, runtimeArguments: runtimeArgs, passEnvironment: passEnv)
        options.backendOptions = backendOptions.byName  // given to the runs launched on a backend that takes them
        let env = backendOptions.environment(ProcessInfo.processInfo.environment)
        let settings = try Self.loadSettings(env: env)
        options.timeout = timeoutOption.seconds ?? settings.timeout
        options.stallAfter = stallAfter.flatMap(DurationText.parse) ?? settings.stallAfter
        options.bell = settings.bell && !noBell
        options.title = settings.title && !noTitle
        options.egress = try egressOptions.policy(environment: backendOptions.environment(ProcessInfo.processInfo.environment))
        try Self.open(readonly: readonly, noColor: noColor, options: options,
                      environment: backendOptions.environment(ProcessInfo.processInfo.environment))
    }

    static func open(readonly: Bool, noColor: Bool, options: LaunchOptions,
                     environment env: [String: String] = ProcessInfo.processInfo.environment) throws {
        let overrides = try loadKeys(env: env)
        let colorWanted = !noColor && (env["NO_COLOR"] ?? "").isEmpty
        let terminal: NCursesTerminal
        do { terminal = try NCursesTerminal(colorWanted: colorWanted) } catch {
            throw CLIError.setup("\(error)")
        }
        // Every way out gives the terminal back (the runtime restores it too; twice is harmless).
        defer { terminal.restore() }
        var options = options
        options.adoptLostRuns = !readonly
        let services = LiveServices(environment: env, options: options, registry: CLIContext.registry)
        let size = terminal.size
        var state = DashboardState(width: size.width, height: size.height, now: Date(), readonly: readonly,
                                   registry: CLIContext.registry)
        state.defaultTimeout = options.timeout
        state.stallAfter = options.stallAfter
        state.ringBell = options.bell
        state.setTitle = options.title
        let dashboard = Dashboard(state: state,
                                  actions: ActionTable(readonly: readonly, overrides: overrides), output: services.output)
        let view = DashboardView(theme: Theme(glyphs: terminal.utf8 ? .unicode : .ascii, color: terminal.color))
        let status = DashboardRuntime(dashboard: dashboard, view: view, terminal: terminal, services: services).run()
        if status != 0 { throw ExitCode(status) }
    }

    /// `$XDG_CONFIG_HOME/ccdeck/dashboard.conf` (default `~/.config/ccdeck/dashboard.conf`), if present.
    static func loadSettings(env: [String: String]) throws -> DashboardSettings {
        let path = ConfigFiles.path("dashboard.conf", environment: env)
        guard let data = FileManager.default.contents(atPath: path) else { return DashboardSettings() }
        do { return try DashboardSettings.parse(String(decoding: data, as: UTF8.self)) } catch {
            throw CLIError.setup("malformed dashboard config \(InertText.line(path)): \(error)")
        }
    }

    /// `$XDG_CONFIG_HOME/ccdeck/keys.conf` (default `~/.config/ccdeck/keys.conf`), if present.
    static func loadKeys(env: [String: String]) throws -> [Action: [Key]] {
        let path = ConfigFiles.path("keys.conf", environment: env)
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        do { return try ActionTable.parseConfig(String(decoding: data, as: UTF8.self)) } catch {
            throw CLIError.setup("malformed key config \(path): \(error)")
        }
    }
}
