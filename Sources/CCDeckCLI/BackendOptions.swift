import ArgumentParser

/// The options only some backends take, shared by `run` and `dashboard` (which passes each run
/// it launches the ones its backend takes). They travel to the backend by name; a backend that
/// does not take one refuses it in words.
struct BackendOptions: ParsableArguments {
    @Option(name: .customLong("sandbox-cli"),
            help: ArgumentHelp("Sandbox mode: the CLI to use, docker (`docker sandbox`) or sbx (default: the one installed, sbx first).",
                               valueName: "docker|sbx"))
    var sandboxCLI: String?

    @Option(help: ArgumentHelp("docker and podman: runc (the host's kernel, the default) or gvisor (runsc: a user-space kernel); "
                               + "compare takes both, runc,gvisor.", valueName: "runc|gvisor"))
    var isolation: String?

    @Option(help: ArgumentHelp("Fly: the app (default: FLY_APP, else ./fly.toml's app).", valueName: "name"))
    var app: String?

    @Option(help: ArgumentHelp("Fly: the region (default: ./fly.toml's primary_region).", valueName: "region"))
    var region: String?

    @Flag(help: "Incus: an instance for the run alone, deleted after it (default: the workspace's kept instance).")
    var ephemeral = false

    @Option(name: .customLong("profile"), help: ArgumentHelp("Incus: a profile for a new instance (repeatable).", valueName: "name"))
    var profiles: [String] = []

    @Option(name: [.customShort("c"), .customLong("config")],
            help: ArgumentHelp("Incus: a config key for a new instance (repeatable).", valueName: "key=value"))
    var configs: [String] = []

    @Option(name: .customLong("device"),
            help: ArgumentHelp("Incus: a device for the run's instance, e.g. model,proxy,listen=tcp:127.0.0.1:8080,"
                               + "connect=tcp:127.0.0.1:8080,bind=instance (repeatable).", valueName: "name,type,key=value…"))
    var devices: [String] = []

    @Option(help: ArgumentHelp("Local: the claude to run in the sandbox (default: CCDECK_CLAUDE, else claude on PATH).",
                               valueName: "path"))
    var claude: String?

    func validate() throws {
        for config in configs where !config.contains("=") { throw ValidationError("-c takes key=value, not \(config)") }
    }

    /// The environment backends are made with: `--claude` stands for CCDECK_CLAUDE, so local
    /// mode's probe (Backends pane, `--mode auto`) sees the claude a run will use.
    func environment(_ env: [String: String]) -> [String: String] {
        var env = env
        if let claude { env["CCDECK_CLAUDE"] = claude }
        return env
    }

    /// By option name, as `RunSpec.options` carries them.
    var byName: [String: [String]] {
        var options: [String: [String]] = [:]
        if let sandboxCLI { options["sandbox-cli"] = [sandboxCLI] }
        if let isolation { options["isolation"] = [isolation] }
        if let app { options["app"] = [app] }
        if let region { options["region"] = [region] }
        if ephemeral { options["ephemeral"] = ["1"] }
        if !profiles.isEmpty { options["profile"] = profiles }
        if !configs.isEmpty { options["config"] = configs }
        if !devices.isEmpty { options["device"] = devices }
        if let claude { options["claude"] = [claude] }
        return options
    }
}
