import Foundation

/// Where a run is in its life. The first two are live; the rest are final.
public enum RunState: String, Sendable, Codable, Equatable {
    case starting, running, succeeded, failed, stopped

    public var isLive: Bool { self == .starting || self == .running }

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
public struct RunRecord: Sendable, Codable, Equatable, Identifiable {
    public var id: String
    public var mode: BackendKind
    public var image: String
    public var container: String
    public var workspace: String
    public var workspaceIsTemporary: Bool
    public var prompt: String
    public var keep: Bool
    public var createdAt: Date
    public var endedAt: Date?
    public var state: RunState
    public var phases: RunPhases
    public var reason: String?
    public var turns: Int?
    public var costUSD: Double?
    public var exitStatus: Int32?
    public var tokenSource: String?
    /// The ccdeck process driving the run, and the host it ran on: a live record whose
    /// driver is gone was left by a ccdeck that died.
    public var driverPID: Int32
    public var host: String

    public init(id: String, mode: BackendKind, image: String, container: String, workspace: String,
                workspaceIsTemporary: Bool, prompt: String, keep: Bool, createdAt: Date, driverPID: Int32,
                host: String, tokenSource: String?) {
        self.id = id
        self.mode = mode
        self.image = image
        self.container = container
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

    public var wallTime: TimeInterval? { endedAt.map { $0.timeIntervalSince(createdAt) } }

    /// A fresh id: sortable by time, short enough to type, unique enough for one host.
    public static func newID(at date: Date, random: UInt32 = UInt32.random(in: 0 ... .max)) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02d-%02d%02d%02d-%04x", c.year!, c.month!, c.day!, c.hour!, c.minute!,
                      c.second!, random & 0xFFFF)
    }
}
