import Foundation

/// Where ccdeck's own config files live: `$XDG_CONFIG_HOME/ccdeck/NAME`, by default
/// `~/.config/ccdeck/NAME` (keys.conf, dashboard.conf, egress.conf).
public enum ConfigFiles {
    public static func path(_ name: String, environment: [String: String]) -> String {
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? (environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? NSHomeDirectory()) + "/.config"
        return base + "/ccdeck/" + name
    }
}
