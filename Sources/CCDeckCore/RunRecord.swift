import Foundation

/// Where a run is in its life. The first two are live; the rest are final.
public enum RunState: String, Sendable, Codable, Equatable {
    case starting, running, succeeded, failed, stopped
    /// A state this ccdeck does not know (written by a newer one): shown, never dropped.
    case unknown

    public var isLive: Bool { self == .starting || self == .running }

    /// How a live run whose driving ccdeck died reads, in every listing.
    public static let lostDriverLabel = "lost-driver"

    public init(_ outcome: RunOutcome) {
        switch outcome {
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .stopped: self = .stopped
        }
    }
}

/// Instants a run passes through, for the wall-time breakdown in its summary.
public struct RunPhases: Sendable, Codable, Equatable {
    public var imageReady: Date?
    public var containerStarted: Date?
    public var firstEvent: Date?
    public var result: Date?
    public var cleanupDone: Date?

    public init() {}

    /// Each phase as seconds since `start`, in order, skipping phases not reached.
    public func offsets(from start: Date) -> [(name: String, seconds: Double)] {
        let all: [(String, Date?)] = [("image ready", imageReady), ("container started", containerStarted),
                                      ("first agent event", firstEvent), ("result", result),
                                      ("cleanup", cleanupDone)]
        return all.compactMap { name, date in date.map { (name, $0.timeIntervalSince(start)) } }
    }
}

/// Everything kept about a run, as stored in `record.json`. Never holds the token.
///
/// Decoding is forgiving: a record written by another ccdeck (older: `container` instead of
/// `sandbox`; newer: a mode or fields this one does not know) still reads, so no run is ever
/// dropped from a listing because its record is not exactly this shape.
public struct RunRecord: Sendable, Codable, Equatable, Identifiable {
    public var id: String
    public var mode: BackendKind
    public var image: String
    /// The sandbox's name in its backend (container, sandbox, instance or machine name).
    public var sandbox: String
    /// The backend's own id for it, when it differs from the name (a Fly machine id).
    public var sandboxID: String?
    public var workspace: String
    public var workspaceIsTemporary: Bool
    /// The task, whole when it is short; a long one is cut here (`promptBytes` says how long it
    /// was) and kept whole in the run's `prompt.txt`.
    public var prompt: String
    public var promptBytes: Int?
    public var keep: Bool
    public var createdAt: Date
    public var endedAt: Date?
    public var state: RunState
    public var phases: RunPhases
    public var reason: String?
    public var turns: Int?
    public var costUSD: Double?
    /// Time the CLI spent waiting on the model API (its `duration_api_ms`).
    public var apiSeconds: Double?
    /// Tool calls that came back with `is_error`: a "success" with failed tools deserves a look.
    public var toolErrors: Int?
    public var exitStatus: Int32?
    public var tokenSource: String?
    /// What the sandbox was given, and so what it held while the agent ran.
    public var credentials: CredentialRecord?
    public var isolation: Isolation?
    public var workspaceTransport: WorkspaceTransport?
    /// Who the agent ran as inside, e.g. `uid 1000 (the image's agent user)`.
    public var agentUser: String?
    /// The ccdeck process driving the run, and the host it ran on: a live record whose
    /// driver is gone was left by a ccdeck that died.
    public var driverPID: Int32
    public var host: String
    /// When a dashboard took over a run whose ccdeck had died.
    public var adoptedAt: Date?
    /// The comparison this run is part of (`ccdeck compare`, or the dashboard's compare launch).
    public var group: String?
    /// What the run could reach: its allowlist, or that the filter was off or not enforced.
    public var egress: EgressRecord?
    /// `--timeout`: seconds the agent may run, counted from its start, before ccdeck stops it.
    public var timeout: Double?
    /// What the workspace was compared against (`git:<tree>`, `snapshot:<tree>`), taken at start.
    public var changesBaseline: String?
    /// What the run changed there (the list and patch are `changes.json` and `changes.diff`).
    public var changes: WorkspaceChanges.Summary?

    public init(id: String, mode: BackendKind, image: String, sandbox: String, workspace: String,
                workspaceIsTemporary: Bool, prompt: String, keep: Bool, createdAt: Date, driverPID: Int32,
                host: String, tokenSource: String?) {
        self.id = id
        self.mode = mode
        self.image = image
        self.sandbox = sandbox
        self.workspace = workspace
        self.workspaceIsTemporary = workspaceIsTemporary
        self.prompt = prompt
        self.keep = keep
        self.createdAt = createdAt
        self.state = .starting
        self.phases = RunPhases()
        self.driverPID = driverPID
        self.host = host
        self.tokenSource = tokenSource
    }

    enum CodingKeys: String, CodingKey {
        case id, mode, image, sandbox, sandboxID, workspace, workspaceIsTemporary, prompt, promptBytes, keep, createdAt, endedAt
        case state, phases, reason, turns, costUSD, apiSeconds, toolErrors, exitStatus, tokenSource, credentials, isolation
        case workspaceTransport, agentUser, driverPID, host, adoptedAt, group, egress, timeout, changesBaseline, changes
        case container  // the name of `sandbox` before there were backends other than containers
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        mode = try c.decode(BackendKind.self, forKey: .mode)
        createdAt = try c.decode(Date.self, forKey: .createdAt)
        image = (try? c.decodeIfPresent(String.self, forKey: .image)) ?? ""
        sandbox = (try? c.decodeIfPresent(String.self, forKey: .sandbox))
            ?? (try? c.decodeIfPresent(String.self, forKey: .container)) ?? ""
        sandboxID = (try? c.decodeIfPresent(String.self, forKey: .sandboxID))
        workspace = (try? c.decodeIfPresent(String.self, forKey: .workspace)) ?? ""
        workspaceIsTemporary = (try? c.decodeIfPresent(Bool.self, forKey: .workspaceIsTemporary)) ?? false
        prompt = (try? c.decodeIfPresent(String.self, forKey: .prompt)) ?? ""
        promptBytes = (try? c.decodeIfPresent(Int.self, forKey: .promptBytes)).flatMap { $0 >= 0 ? $0 : nil }
        keep = (try? c.decodeIfPresent(Bool.self, forKey: .keep)) ?? false
        endedAt = (try? c.decodeIfPresent(Date.self, forKey: .endedAt))
        state = (try? c.decodeIfPresent(RunState.self, forKey: .state)) ?? .unknown
        phases = (try? c.decodeIfPresent(RunPhases.self, forKey: .phases)) ?? RunPhases()
        reason = (try? c.decodeIfPresent(String.self, forKey: .reason))
        // Counts from a file: a negative or absurd one is unknown, not shown.
        turns = (try? c.decodeIfPresent(Int.self, forKey: .turns)).flatMap { (0...Int(Int32.max)).contains($0) ? $0 : nil }
        costUSD = (try? c.decodeIfPresent(Double.self, forKey: .costUSD)).flatMap { $0.isFinite && $0 >= 0 && $0 < 1e9 ? $0 : nil }
        apiSeconds = (try? c.decodeIfPresent(Double.self, forKey: .apiSeconds)).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
        toolErrors = (try? c.decodeIfPresent(Int.self, forKey: .toolErrors)).flatMap { (0...Int(Int32.max)).contains($0) ? $0 : nil }
        exitStatus = (try? c.decodeIfPresent(Int32.self, forKey: .exitStatus))
        tokenSource = (try? c.decodeIfPresent(String.self, forKey: .tokenSource))
        credentials = (try? c.decodeIfPresent(CredentialRecord.self, forKey: .credentials))
        isolation = (try? c.decodeIfPresent(Isolation.self, forKey: .isolation))
        workspaceTransport = (try? c.decodeIfPresent(WorkspaceTransport.self, forKey: .workspaceTransport))
        agentUser = (try? c.decodeIfPresent(String.self, forKey: .agentUser))
        driverPID = (try? c.decodeIfPresent(Int32.self, forKey: .driverPID)) ?? 0
        host = (try? c.decodeIfPresent(String.self, forKey: .host)) ?? ""
        adoptedAt = (try? c.decodeIfPresent(Date.self, forKey: .adoptedAt))
        group = (try? c.decodeIfPresent(String.self, forKey: .group)).map { String($0.prefix(64)) }
        egress = try? c.decodeIfPresent(EgressRecord.self, forKey: .egress)
        timeout = (try? c.decodeIfPresent(Double.self, forKey: .timeout)).flatMap { $0.isFinite && $0 > 0 ? $0 : nil }
        changesBaseline = (try? c.decodeIfPresent(String.self, forKey: .changesBaseline)).map { String($0.prefix(80)) }
        changes = try? c.decodeIfPresent(WorkspaceChanges.Summary.self, forKey: .changes)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(mode, forKey: .mode)
        try c.encode(image, forKey: .image)
        try c.encode(sandbox, forKey: .sandbox)
        try c.encodeIfPresent(sandboxID, forKey: .sandboxID)
        try c.encode(workspace, forKey: .workspace)
        try c.encode(workspaceIsTemporary, forKey: .workspaceIsTemporary)
        try c.encode(prompt, forKey: .prompt)
        try c.encodeIfPresent(promptBytes, forKey: .promptBytes)
        try c.encode(keep, forKey: .keep)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encodeIfPresent(endedAt, forKey: .endedAt)
        try c.encode(state, forKey: .state)
        try c.encode(phases, forKey: .phases)
        try c.encodeIfPresent(reason, forKey: .reason)
        try c.encodeIfPresent(turns, forKey: .turns)
        try c.encodeIfPresent(costUSD, forKey: .costUSD)
        try c.encodeIfPresent(apiSeconds, forKey: .apiSeconds)
        try c.encodeIfPresent(toolErrors, forKey: .toolErrors)
        try c.encodeIfPresent(exitStatus, forKey: .exitStatus)
        try c.encodeIfPresent(tokenSource, forKey: .tokenSource)
        try c.encodeIfPresent(credentials, forKey: .credentials)
        try c.encodeIfPresent(isolation, forKey: .isolation)
        try c.encodeIfPresent(workspaceTransport, forKey: .workspaceTransport)
        try c.encodeIfPresent(agentUser, forKey: .agentUser)
        try c.encode(driverPID, forKey: .driverPID)
        try c.encode(host, forKey: .host)
        try c.encodeIfPresent(adoptedAt, forKey: .adoptedAt)
        try c.encodeIfPresent(group, forKey: .group)
        try c.encodeIfPresent(egress, forKey: .egress)
        try c.encodeIfPresent(timeout, forKey: .timeout)
        try c.encodeIfPresent(changesBaseline, forKey: .changesBaseline)
        try c.encodeIfPresent(changes, forKey: .changes)
    }

    /// How much of a prompt a record keeps.
    public static let promptPreviewLength = 4_000

    /// The prompt as a record keeps it: whole up to the preview length, else cut with a mark.
    public static func promptPreview(_ prompt: String) -> (text: String, cut: Bool) {
        guard prompt.count > promptPreviewLength else { return (prompt, false) }
        return (String(prompt.prefix(promptPreviewLength)) + "…", true)
    }

    public var wallTime: TimeInterval? { endedAt.map { $0.timeIntervalSince(createdAt) } }

    /// A fresh id: sortable by time, short enough to type, unique enough for one host. (UTC from
    /// `gmtime_r`: a Foundation `Calendar` with a time zone loads ICU, ~0.5 ms of every run.)
    public static func newID(at date: Date, random: UInt32 = UInt32.random(in: 0 ... .max)) -> String {
        let c = RFC3339.civil(date), digits = RFC3339.digits
        let suffix = String(random & 0xFFFF, radix: 16)
        return digits(c.year, 4) + digits(c.month, 2) + digits(c.day, 2) + "-" + digits(c.hour, 2) + digits(c.minute, 2)
            + digits(c.second, 2) + "-" + String(repeating: "0", count: 4 - suffix.count) + suffix
    }
}
