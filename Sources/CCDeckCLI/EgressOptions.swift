import ArgumentParser
import CCDeckBackends
import CCDeckCore

/// What a run may reach, shared by `run`, `compare` and `dashboard`: Claude Code's own hosts
/// (or ANTHROPIC_BASE_URL's), the user's `egress.conf`, and `--allow-host`; `--allow-all` turns
/// the filter off and the record says so.
struct EgressOptions: ParsableArguments {
    @Option(name: .customLong("allow-host"),
            help: ArgumentHelp("Let the agent reach this host too (repeatable; *.example.com for its subdomains). "
                               + "Added to Claude Code's hosts and $XDG_CONFIG_HOME/ccdeck/egress.conf.", valueName: "host"))
    var allowHosts: [String] = []

    @Flag(help: "Do not filter the agent's network at all (recorded with the run).")
    var allowAll = false

    func validate() throws {
        for host in allowHosts where EgressPolicy.pattern(host) == nil {
            throw ValidationError("--allow-host takes a host name like api.example.com or *.example.com, not \(InertText.line(host))")
        }
        if allowAll && !allowHosts.isEmpty { throw ValidationError("--allow-all allows every host: drop --allow-host") }
    }

    /// The run's allowlist; a malformed egress.conf is a usage error naming its line.
    func policy(environment: [String: String]) throws -> EgressPolicy {
        do {
            return try EgressConfig.standardPolicy(environment: environment, extra: allowHosts, allowAll: allowAll)
        } catch {
            throw CLIError.usage("\(error)")
        }
    }
}
