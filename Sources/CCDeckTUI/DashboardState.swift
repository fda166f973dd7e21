import CCDeckBackends
import CCDeckCore
import Foundation

public enum Pane: Int, Sendable, CaseIterable {
    case runs, output, backends, token, orphans

    public var title: String {
        switch self {
        case .runs: return "Runs"
        case .output: return "Output"
        case .backends: return "Backends"
        case .token: return "Token"
        case .orphans: return "Orphans"
        }
    }
}

/// A run as the dashboard knows it: its record, and for runs this process drives, the live
/// tail and counters.
public struct RunEntry: Sendable {
    public var record: RunRecord
    public var tail: RunTail
    public var progress: RunProgress
    /// Driven by this dashboard (so it can be stopped and streams live).
    public var drivenHere: Bool
    /// A live record whose ccdeck is gone (and that no one here has taken over yet).
    public var driverGone: Bool

    public init(record: RunRecord, drivenHere: Bool = false, driverGone: Bool = false, tailCapacity: Int = 1_000) {
        self.record = record
        self.tail = RunTail(capacity: tailCapacity)
        self.progress = RunProgress()
        self.drivenHere = drivenHere
        self.driverGone = driverGone
    }

    public var isLive: Bool { record.state.isLive && !driverGone }
    public var turns: Int? { record.turns ?? (progress.result != nil || progress.assistantMessages > 0 ? progress.turns : nil) }
    public var cost: Double? { record.costUSD ?? progress.costUSD }
    public var toolErrors: Int { max(record.toolErrors ?? 0, progress.toolErrors) }
}

/// A resource carrying ccdeck's mark whose run is no longer live.
public typealias Orphan = SandboxResource

public enum TokenInfo: Sendable, Equatable {
    case loading
    case resolved(Token)
    case failed(String)
}

/// An editable line of text with a cursor (in characters).
public struct TextField: Sendable, Equatable {
    public var text: String
    public var cursor: Int

    public init(_ text: String = "") {
        self.text = text
        self.cursor = text.count
    }

    /// Applies an editing key; false when the key is not an edit.
    public mutating func edit(_ key: Key) -> Bool {
        var chars = Array(text)
        switch key {
        case .char(let c): chars.insert(c, at: cursor); cursor += 1
        case .backspace: if cursor > 0 { chars.remove(at: cursor - 1); cursor -= 1 }
        case .delete: if cursor < chars.count { chars.remove(at: cursor) }
        case .left: cursor = max(0, cursor - 1)
        case .right: cursor = min(chars.count, cursor + 1)
        case .home, .ctrl("a"): cursor = 0
        case .end, .ctrl("e"): cursor = chars.count
        case .ctrl("u"): chars.removeAll(); cursor = 0
        default: return false
        }
        text = String(chars)
        return true
    }
}

public struct LaunchForm: Sendable, Equatable {
    public enum Field: Int, Sendable, CaseIterable { case mode, prompt, workspace }

    public var modes: [BackendKind]
    public var modeIndex = 0
    public var prompt: TextField
    /// Empty: a fresh workspace.
    public var workspace = TextField()
    public var field: Field = .prompt

    public init(modes: [BackendKind], prompt: String) {
        self.modes = modes
        self.prompt = TextField(prompt)
    }

    public var mode: BackendKind { modes[modeIndex] }
}

public struct Confirmation: Sendable, Equatable {
    public var title: String
    public var lines: [String]
    public var onYes: Effect
}

public enum Overlay: Sendable, Equatable {
    case help
    case launch(LaunchForm)
    case confirm(Confirmation)
}

public struct Notice: Sendable, Equatable {
    public enum Level: Sendable { case info, warning, error }
    public var text: String
    public var level: Level

    public init(_ text: String, _ level: Level = .info) {
        self.text = InertText.line(text)
        self.level = level
    }
}

/// What the dashboard asks the outside world to do; the runtime carries it out.
public enum Effect: Sendable, Equatable {
    case launch(mode: BackendKind, prompt: String, workspace: String?)
    case stop(runID: String)
    case removeRun(RunRecord)
    case removeOrphan(Orphan)
    case attach(RunRecord)
    case repushToken
    case quit
}

/// Everything that can happen to the dashboard: keys and background news alike.
public enum DashboardMessage: Sendable {
    case key(Key)
    case resize(width: Int, height: Int)
    case tick(Date)
    case runsLoaded([RunEntry])
    case runStarted(RunRecord)
    case runEvent(id: String, StreamEvent)
    case runStderr(id: String, String)
    case runFinished(RunRecord)
    case runRemoved(id: String)
    case backends([BackendStatus])
    case token(TokenInfo)
    case orphans([Orphan])
    case notice(Notice)
}

public struct DashboardState: Sendable {
    /// Backends runs can be launched on, in display order (from the registry).
    public var runnableModes: [BackendKind]

    public var width: Int
    public var height: Int
    public var now: Date
    public var readonly: Bool
    public var focus: Pane = .runs
    public var runs: [RunEntry] = []
    public var selectedRunID: String?
    public var outputPosition: OutputPosition = .follow
    public var backends: [BackendStatus]
    /// Backends whose first probe has answered; the others show as probing.
    public var probed: Set<BackendKind> = []
    public var selectedBackend = 0
    public var token: TokenInfo = .loading
    public var orphans: [Orphan] = []
    public var orphansListed = false
    public var selectedOrphan = 0
    public var overlay: Overlay?
    public var notice: Notice?
    public var tailCapacity = 1_000

    public init(width: Int, height: Int, now: Date, readonly: Bool = false,
                registry: BackendRegistry = .standard) {
        self.width = width
        self.height = height
        self.now = now
        self.readonly = readonly
        backends = registry.kinds.map { BackendStatus(kind: $0, state: .notResponding, detail: "probing…") }
        runnableModes = registry.runnable(environment: [:]).map(\.kind)
    }

    public var selectedRunIndex: Int? { runs.firstIndex { $0.record.id == selectedRunID } }
    public var selectedRun: RunEntry? { selectedRunIndex.map { runs[$0] } }
    public var liveRunsDrivenHere: [RunEntry] { runs.filter { $0.drivenHere && $0.isLive } }
    public var readyModes: [BackendKind] {
        runnableModes.filter { kind in backends.contains { $0.kind == kind && $0.state == .ready } }
    }

    /// When the screen next changes by itself (a countdown or an elapsed time), if ever.
    public func nextTick() -> Date? {
        var candidates: [Date] = []
        if runs.contains(where: { $0.isLive }) {
            candidates.append(Date(timeIntervalSince1970: (now.timeIntervalSince1970 + 1).rounded(.down)))
        }
        if case .resolved(let token) = token, let expiresAt = token.expiresAt {
            let left = expiresAt.timeIntervalSince(now)
            // The countdown shows seconds under an hour, minutes above; expired shows minutes ago.
            let step: TimeInterval = abs(left) < 3600 ? 1 : 60
            let phase = left.truncatingRemainder(dividingBy: step)
            var wait = phase > 0 ? phase : step + phase
            if wait <= 0.001 { wait += step }
            candidates.append(now.addingTimeInterval(wait))
        }
        return candidates.min()
    }
}
