import CCDeckCore
import Foundation

/// The user's own additions to every run's allowlist: `$XDG_CONFIG_HOME/ccdeck/egress.conf`
/// (default `~/.config/ccdeck/egress.conf`), one host a line (`*.example.com` for a domain's
/// subdomains), `#` comments. A line that is not a host stops the run with its line number.
public enum EgressConfig {
    /// The file's hosts; none when there is no file.
    public static func hosts(environment: [String: String]) throws -> [String] {
        let path = ConfigFiles.path("egress.conf", environment: environment)
        guard access(path, F_OK) == 0 else { return [] }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EgressProxyError("cannot read \(InertText.line(path))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw EgressProxyError("\(InertText.line(path)) is not UTF-8 text (one host a line)")
        }
        return try EgressPolicy.parseList(text, source: path)
    }

    /// Claude Code's hosts, the config file's, and `extra` (`--allow-host`).
    public static func standardPolicy(environment: [String: String], extra: [String] = [], allowAll: Bool = false) throws -> EgressPolicy {
        EgressPolicy.standard(environment: environment, extra: try hosts(environment: environment) + extra, allowAll: allowAll)
    }
}
