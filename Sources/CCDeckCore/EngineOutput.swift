import Foundation

/// Parsers for what the container engines print. Recorded outputs pin them in tests.
public enum EngineOutput {
    public struct Versions: Sendable, Equatable {
        public var client: String?
        public var server: String?

        public init(client: String? = nil, server: String? = nil) {
            self.client = client
            self.server = server
        }
    }

    /// `docker version --format '{{json .}}'` and `podman version --format json`: the client
    /// part is printed even when the daemon is down (with `"Server": null`).
    public static func parseVersion(_ text: String) -> Versions? {
        guard let start = text.firstIndex(of: "{"),
              let value = JSONValue.parse(Data(text[start...].utf8)) else { return nil }
        return Versions(client: value["Client"]?["Version"]?.stringValue,
                        server: value["Server"]?["Version"]?.stringValue)
    }

    /// A container as `ps` reports it, normalised across docker and podman.
    public struct Container: Sendable, Equatable {
        public var id: String
        public var name: String
        public var state: String
        public var labels: [String: String]
        public var createdAt: Date?

        public init(id: String, name: String, state: String, labels: [String: String], createdAt: Date?) {
            self.id = id
            self.name = name
            self.state = state
            self.labels = labels
            self.createdAt = createdAt
        }
    }

    /// `docker ps -a --format '{{json .}}'` prints one object per line with labels as
    /// `a=b,c=d`; `podman ps -a --format json` prints one array with labels as an object.
    public static func parseContainers(_ text: String) -> [Container] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("[") {
            guard case .array(let items)? = JSONValue.parse(Data(trimmed.utf8)) else {
                return []
            }
            return items.compactMap(container(from:))
        }
        return trimmed.lineSlices.compactMap { line in
            JSONValue.parse(Data(line.utf8)).flatMap(container(from:))
        }
    }

    static func container(from v: JSONValue) -> Container? {
        guard let id = (v["ID"] ?? v["Id"])?.stringValue else { return nil }
        var name = ""
        switch v["Names"] {
        case .string(let s)?: name = s
        case .array(let a)?: name = a.first?.stringValue ?? ""
        default: break
        }
        var labels: [String: String] = [:]
        switch v["Labels"] {
        case .string(let s)?: labels = parseLabelList(s)
        case .object(let o)?: labels = o.compactMapValues(\.stringValue)
        default: break
        }
        var created: Date?
        switch v["Created"] ?? v["CreatedAt"] {
        case .number(let n)? where plausibleSeconds.contains(n): created = Date(timeIntervalSince1970: n)
        case .string(let s)?: created = parseDockerDate(s).flatMap(plausible)
        default: break
        }
        return Container(id: id, name: name, state: v["State"]?.stringValue ?? "", labels: labels, createdAt: created)
    }

    /// Engine instants outside 1970...2200 (in seconds) are not real: Docker prints year 1 for "never".
    static let plausibleSeconds: ClosedRange<TimeInterval> = 0...7_258_118_400

    static func plausible(_ date: Date) -> Date? { plausibleSeconds.contains(date.timeIntervalSince1970) ? date : nil }

    /// Docker's `a=b,c=d` label list. Values may contain `=`; commas inside values cannot be told apart.
    public static func parseLabelList(_ s: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in s.split(separator: ",") {
            guard let eq = pair.firstIndex(of: "=") else { continue }
            out[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        return out
    }

    /// `2026-11-29 01:45:12 +0000 UTC` (ps) or RFC 3339 with fractional seconds (inspect).
    public static func parseDockerDate(_ s: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss Z"
        if let d = f.date(from: s.components(separatedBy: " ").prefix(3).joined(separator: " ")) { return d }
        return parseRFC3339(s)
    }

    public static func parseRFC3339(_ s: String) -> Date? { RFC3339.parse(s) }

    /// The parts of `inspect` a run's summary needs.
    public struct ContainerState: Sendable, Equatable {
        public var startedAt: Date?
        public var finishedAt: Date?
        public var exitCode: Int32?
        public var running = false
    }

    /// `docker inspect NAME` / `podman inspect NAME`: a JSON array of one object.
    public static func parseInspectState(_ text: String) -> ContainerState? {
        guard case .array(let items)? = JSONValue.parse(Data(text.utf8)), let state = items.first?["State"] else { return nil }
        // A process's exit status is 0...255: anything else (1e40, -1, 1.5, "0") is no status at all.
        let exit = state["ExitCode"]?.wholeNumber(in: 0...255).map(Int32.init)
        var running = false
        if case .bool(let b)? = state["Running"] { running = b }
        return ContainerState(startedAt: state["StartedAt"]?.stringValue.flatMap(parseRFC3339).flatMap(plausible),
                              finishedAt: state["FinishedAt"]?.stringValue.flatMap(parseRFC3339).flatMap(plausible),
                              exitCode: exit, running: running)
    }
}
