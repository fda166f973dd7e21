import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which hosts a run may reach. Hosts are names (or IP literals) as the agent's client asked for
/// them, matched exactly or under a `*.` wildcard: ccdeck's proxy decides by name, so nothing is
/// resolved once at start and nothing breaks when an address changes. An IP literal is allowed
/// only when it is itself on the list (a name's address is never reached by its number).
public struct EgressPolicy: Sendable, Equatable, Codable {
    /// Filter off: every host allowed, and the run's record says so.
    public var allowAll: Bool
    /// Normalized patterns: `api.anthropic.com`, `*.example.com`, `127.0.0.1`, `::1`.
    public var hosts: [String]

    public init(hosts: [String], allowAll: Bool = false) {
        self.allowAll = allowAll
        var seen = Set<String>()
        self.hosts = hosts.compactMap(Self.pattern).filter { seen.insert($0).inserted }
    }

    /// What Claude Code needs: the model API and the OAuth hosts; or, when `ANTHROPIC_BASE_URL`
    /// names another server (a gateway, a local model), that server's host alone.
    public static func claudeCodeHosts(environment: [String: String]) -> [String] {
        if let base = environment["ANTHROPIC_BASE_URL"], let host = URLComponents(string: base)?.host, !host.isEmpty {
            return [host]
        }
        return ["api.anthropic.com", "claude.ai", "console.anthropic.com", "platform.claude.com", "statsig.anthropic.com"]
    }

    /// The default list, plus the user's.
    public static func standard(environment: [String: String], extra: [String] = [], allowAll: Bool = false) -> EgressPolicy {
        EgressPolicy(hosts: claudeCodeHosts(environment: environment) + extra, allowAll: allowAll)
    }

    /// Is `host` (as a client named it) on the list?
    public func allows(_ host: String) -> Bool {
        if allowAll { return true }
        guard let name = Self.requestHost(host) else { return false }
        let isIP = Self.isIPLiteral(name)
        for pattern in hosts {
            if pattern == name { return true }
            if !isIP, pattern.hasPrefix("*."), name.hasSuffix(pattern.dropFirst(1)) { return true }
        }
        return false
    }

    /// A host as asked for: lowercased, without brackets or a trailing dot; nil when it is not a
    /// plausible host name or IP literal at all.
    public static func requestHost(_ raw: String) -> String? {
        var h = raw.lowercased()
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.hasSuffix(".") { h.removeLast() }
        guard !h.isEmpty, h.utf8.count <= 253,
              h.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || "-._:%".unicodeScalars.contains($0) })
        else { return nil }
        return h
    }

    /// A list entry, normalized; nil when it is not a host (a URL, a path, a bare `*`).
    public static func pattern(_ raw: String) -> String? {
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("*.") {
            guard let rest = requestHost(String(trimmed.dropFirst(2))), !rest.contains(":"), !rest.hasPrefix(".") else { return nil }
            return "*." + rest
        }
        guard let host = requestHost(trimmed), !host.hasPrefix("."), !host.hasPrefix("-") else { return nil }
        if host.contains(":") && !isIPLiteral(host) { return nil }  // host:port is not a host
        return host
    }

    public static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// `egress.conf`: one host a line, `#` comments; a line that is not a host is an error naming it.
    public static func parseList(_ text: String, source: String) throws -> [String] {
        var hosts: [String] = []
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if line.isEmpty { continue }
            guard let host = pattern(line) else {
                throw EgressListError(source: source, line: n + 1, text: InertText.line(String(line.prefix(80))))
            }
            hosts.append(host)
        }
        return hosts
    }
}

public struct EgressListError: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var line: Int
    public var text: String
    public init(source: String, line: Int, text: String) { self.source = source; self.line = line; self.text = text }
    public var description: String {
        "\(InertText.line(source)):\(line): \"\(text)\" is not a host name (write one host a line, like api.example.com or *.example.com)"
    }
}

/// What a run's egress was, in its record: the list it had, how many connections were allowed,
/// and every host it was refused (the full log is `egress.jsonl` in the run's folder).
public struct EgressRecord: Sendable, Codable, Equatable {
    public enum Enforcement: String, Sendable, Codable {
        /// No route out but ccdeck's proxy, which applied the list.
        case allowlist
        /// The user turned the filter off (`--allow-all`).
        case allowAll = "allow-all"
        /// This mode cannot hold the agent to a list; the network is the backend's.
        case notEnforced = "not-enforced"
    }

    public struct Denied: Sendable, Codable, Equatable {
        public var host: String
        public var port: Int
        public var count: Int
        public init(host: String, port: Int, count: Int) { self.host = host; self.port = port; self.count = count }
    }

    public var enforcement: Enforcement
    public var hosts: [String]
    /// Allowed tunnels and plain-http requests (several may share a kept connection); the name is the record's.
    public var allowedConnections: Int
    public var denied: [Denied]
    /// Why a run was not held to its list (`not-enforced`).
    public var reason: String?

    public init(enforcement: Enforcement, hosts: [String], allowedConnections: Int = 0, denied: [Denied] = [],
                reason: String? = nil) {
        self.enforcement = enforcement
        self.hosts = hosts
        self.allowedConnections = allowedConnections
        self.denied = denied
        self.reason = reason
    }

    /// Adds one decision of the proxy.
    public mutating func note(_ decision: EgressDecision) {
        if decision.allowed { allowedConnections += 1; return }
        if let i = denied.firstIndex(where: { $0.host == decision.host && $0.port == decision.port }) {
            denied[i].count += 1
        } else if denied.count < 200 {
            denied.append(Denied(host: decision.host, port: decision.port, count: 1))
        }
    }

    /// A few words for a details line: `egress allowlist of 5 hosts`, `egress unfiltered (--allow-all)`.
    public var label: String { "egress " + enforcementText }

    /// `allowlist of 2 hosts`, `unfiltered (--allow-all)`, `not filtered: its network is the backend's`.
    public var enforcementText: String {
        switch enforcement {
        case .allowlist: return "allowlist of \(hosts.count) host\(hosts.count == 1 ? "" : "s")"
        case .allowAll: return "unfiltered (--allow-all)"
        case .notEnforced: return "not filtered" + (reason.map { ": " + InertText.line($0) } ?? "")
        }
    }

    /// "evil.example:443 ×3, other.test:80": what the dashboard and `runs show` print (inert).
    public var deniedSummary: String {
        denied.map { InertText.line($0.host) + ":\($0.port)" + ($0.count > 1 ? " ×\($0.count)" : "") }.joined(separator: ", ")
    }
}

/// One connection the agent asked the proxy for, and what the proxy did: a line of `egress.jsonl`.
public struct EgressDecision: Sendable, Codable, Equatable {
    public var at: Date
    /// `CONNECT` for a tunnel (https), else the plain-http method.
    public var method: String
    public var host: String
    public var port: Int
    public var allowed: Bool
    /// Why it was refused or failed (off the list, malformed, upstream unreachable).
    public var reason: String?

    public init(at: Date, method: String, host: String, port: Int, allowed: Bool, reason: String? = nil) {
        self.at = at
        self.method = method
        self.host = host
        self.port = port
        self.allowed = allowed
        self.reason = reason
    }
}
