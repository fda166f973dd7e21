import ArgumentParser

/// The options only Incus takes, shared by `run` and `dashboard` (which passes them to the runs
/// it launches on Incus). They travel to the backend by name; other backends refuse them.
struct IncusOptions: ParsableArguments {
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

    func validate() throws {
        for config in configs where !config.contains("=") { throw ValidationError("-c takes key=value, not \(config)") }
    }

    /// By option name, as `RunSpec.options` carries them.
    var byName: [String: [String]] {
        var options: [String: [String]] = [:]
        if ephemeral { options["ephemeral"] = ["1"] }
        if !profiles.isEmpty { options["profile"] = profiles }
        if !configs.isEmpty { options["config"] = configs }
        if !devices.isEmpty { options["device"] = devices }
        return options
    }
}
