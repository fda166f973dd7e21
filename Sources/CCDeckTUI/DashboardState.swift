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

    /// How long a live run streaming here has been silent, once that is `after` or more.
    public func stalledFor(now: Date, after: TimeInterval) -> TimeInterval? {
        guard isLive, drivenHere, record.state == .running else { return nil }
        return progress.stalledFor(now: now, since: record.phases.imageReady ?? record.createdAt, after: after)
    }
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

/// An editable text with a cursor (in characters). It is kept as characters, so a key at the
/// cursor's end costs O(1) and a paste one insert: a whole-text rebuild per key made a 32 KB
/// paste cost tens of seconds.
public struct TextField: Sendable, Equatable {
    public enum EditOutcome: Sendable, Equatable {
        case edited
        /// Not an editing key: the caller may give it another meaning.
        case notAnEdit
        /// Refused or cut: the field holds `maxBytes` already.
        case full
    }

    public private(set) var characters: [Character]
    public private(set) var cursor: Int
    /// The text's size in UTF-8 bytes, kept as it changes (the limit is in bytes).
    public private(set) var byteCount: Int
    public let maxBytes: Int

    public init(_ text: String = "", maxBytes: Int = .max) {
        var chars: [Character] = []
        var bytes = 0
        for c in text {
            let size = c.utf8.count
            guard bytes + size <= maxBytes else { break }
            chars.append(c)
            bytes += size
        }
        characters = chars
        cursor = chars.count
        byteCount = bytes
        self.maxBytes = maxBytes
    }

    public var text: String { String(characters) }
    public var isEmpty: Bool { characters.isEmpty }

    /// Applies an editing key; a paste inserts its text at the cursor.
    @discardableResult
    public mutating func edit(_ key: Key) -> EditOutcome {
        switch key {
        case .char(let c):
            let size = c.utf8.count
            guard byteCount + size <= maxBytes else { return .full }
            characters.insert(c, at: cursor)
            byteCount += size
            cursor += 1
        case .paste(let text): return insert(text)
        case .backspace:
            if cursor > 0 {
                byteCount -= characters.remove(at: cursor - 1).utf8.count
                cursor -= 1
            }
        case .delete: if cursor < characters.count { byteCount -= characters.remove(at: cursor).utf8.count }
        case .left: cursor = max(0, cursor - 1)
        case .right: cursor = min(characters.count, cursor + 1)
        case .home, .ctrl("a"): cursor = 0
        case .end, .ctrl("e"): cursor = characters.count
        case .ctrl("u"):
            characters.removeAll()
            byteCount = 0
            cursor = 0
        default: return .notAnEdit
        }
        return .edited
    }

    /// Inserts text at the cursor in one step; `.full` when it had to be cut at `maxBytes`.
    @discardableResult
    public mutating func insert(_ text: String) -> EditOutcome {
        var added: [Character] = []
        var bytes = 0
        var cut = false
        for c in text {
            let size = c.utf8.count
            guard byteCount + bytes + size <= maxBytes else { cut = true; break }
            added.append(c)
            bytes += size
        }
        characters.insert(contentsOf: added, at: cursor)
        cursor += added.count
        byteCount += bytes
        return cut ? .full : .edited
    }
}

public struct LaunchForm: Sendable, Equatable {
    public enum Field: Int, Sendable, CaseIterable { case mode, prompt, workspace, timeout }

    /// A prompt this size is far past any task's; a bigger paste is cut with a notice.
    public static let maxPromptBytes = 1 << 20
    /// Longer than any path the system accepts (PATH_MAX).
    public static let maxWorkspaceBytes = 4_096

    public var modes: [BackendKind]
    public var modeIndex = 0
    public var prompt: TextField
    /// Empty: a fresh workspace.
    public var workspace = TextField(maxBytes: LaunchForm.maxWorkspaceBytes)
    /// Empty: no deadline. A duration (`90s`, `5m`, `1h30m`) stops the run past it.
    public var timeout = TextField(maxBytes: 32)
    public var field: Field = .prompt
    /// Why the last Enter did not launch (a bad workspace, a prompt no agent can take), shown in the form.
    public var problem: String?

    public init(modes: [BackendKind], prompt: String, timeout: TimeInterval? = nil) {
        self.modes = modes
        self.prompt = TextField(prompt, maxBytes: Self.maxPromptBytes)
        self.timeout = TextField(timeout.map(DurationText.format) ?? "", maxBytes: 32)
    }

    /// The choices the mode field cycles through: each mode, then (with two or more) all of them
    /// compared.
    public var choiceCount: Int { modes.count + (modes.count > 1 ? 1 : 0) }
    /// The last choice: the same prompt on every ready mode at once, then a comparison table.
    public var comparing: Bool { modeIndex == modes.count && modes.count > 1 }
    public var mode: BackendKind { modes[min(modeIndex, modes.count - 1)] }
}

/// A comparison launched from the dashboard: the same prompt on several modes, each in its own
/// fresh workspace; its table shows when every run has finished.
public struct PendingComparison: Sendable, Equatable {
    public var group: String
    public var prompt: String
    public var modes: [BackendKind]
    /// Modes whose run never came to be, and why.
    public var launchFailures: [BackendKind: String] = [:]
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
    case comparison(Comparison)
    case changes(ChangesView)
    /// The totals per backend.
    case totals
}

/// A run's changes, read from its folder: the list, then the patch; scrolled in place.
public struct ChangesView: Sendable, Equatable {
    public var runID: String
    /// Inert lines; nil while they are being read.
    public var lines: [String]?
    public var top = 0

    public init(runID: String, lines: [String]? = nil) {
        self.runID = runID
        self.lines = lines
    }
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
    case launch(mode: BackendKind, prompt: String, workspace: String?, timeout: TimeInterval? = nil)
    /// The same prompt on each mode, each in a fresh workspace, the runs marked with `group`.
    case compare(modes: [BackendKind], prompt: String, group: String, timeout: TimeInterval? = nil)
    case stop(runID: String)
    case removeRun(RunRecord)
    case removeOrphan(Orphan)
    /// Every leftover listed (persistent instances and live runs' sandboxes are no leftovers).
    case pruneOrphans([Orphan])
    case attach(RunRecord)
    case repushToken
    /// A run here finished, failed or stalled: the terminal's bell (unless turned off).
    case bell
    /// Read what the run changed (`changesLoaded` brings it).
    case loadChanges(runID: String)
    /// The next page of the run history, older than `before` (`olderRunsLoaded` brings it).
    case loadOlderRuns(before: RunCursor)
    /// The page of history just newer than `after`, dropped earlier to bound memory.
    case loadNewerRuns(after: RunCursor)
    case quit
}

/// A place in the run history: newest first by start time, then id.
public struct RunCursor: Sendable, Equatable {
    public var createdAt: Date
    public var id: String

    public init(_ record: RunRecord) {
        createdAt = record.createdAt
        id = record.id
    }
}

/// Everything that can happen to the dashboard: keys and background news alike.
public enum DashboardMessage: Sendable {
    case key(Key)
    case resize(width: Int, height: Int)
    case tick(Date)
    case runsLoaded([RunEntry])
    /// After `runsLoaded`: whether the history goes on past the newest page, and its size.
    case runsHistory(complete: Bool, total: Int, totals: RunTotals?)
    /// A page older than the oldest run held; `complete`: nothing older is left.
    case olderRunsLoaded([RunEntry], complete: Bool)
    /// A page newer than the newest history run held; `reachedTop`: it joins the newest.
    case newerRunsLoaded([RunEntry], reachedTop: Bool)
    case runStarted(RunRecord)
    /// A launch ended before its run existed (no token, a setup error before the record).
    case launchFailed(String)
    /// A comparison's run on `mode` ended before it existed.
    case compareLaunchFailed(group: String, mode: BackendKind, why: String)
    case runEvent(id: String, StreamEvent)
    case runStderr(id: String, String)
    /// The run's egress proxy refused a connection.
    case runEgress(id: String, EgressDecision)
    /// A run's changes as lines to show (or why there are none).
    case changesLoaded(id: String, [String])
    case runFinished(RunRecord)
    case runRemoved(id: String)
    case backends([BackendStatus])
    case token(TokenInfo)
    /// What the backends that keep a copy of the token hold (a Fly app's secret).
    case keptTokens([KeptToken])
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
    /// What the launch form's Timeout starts with (`dashboard --timeout`).
    public var defaultTimeout: TimeInterval?
    /// A live run silent this long is shown as stalled (`dashboard --stall-after`, default 5 minutes).
    public var stallAfter: TimeInterval = 300
    /// Runs launched or adopted here that finished, failed or stalled while another was selected,
    /// oldest first; selecting one takes it off.
    public var attention: [String] = []
    /// Runs driven here already counted as stalled (so a stall rings once).
    public var stallsSeen: Set<String> = []
    /// How the dashboard calls for attention (`dashboard.conf`, `--no-bell`, `--no-title`).
    public var ringBell = true
    public var setTitle = true

    /// Whose days and weeks the totals count in (the local one).
    public var calendar: Calendar = .current

    /// Live runs, today's and this week's: over the runs this dashboard holds when that is the
    /// whole history, else as the store's index counts them (read again as runs end).
    public func totals(byBackend: Bool = false) -> RunTotals {
        if !history.complete || history.trimmedAbove, let stored = history.totals {
            var t = stored
            t.live = runs.filter(\.isLive).count
            return t
        }
        let live = Set(runs.filter(\.isLive).map(\.record.id))
        return RunTotals.of(runs.map(\.record), now: now, calendar: calendar, byBackend: byBackend) { live.contains($0.id) }
    }

    /// The terminal window's title: `ccdeck`, or how many runs need you.
    public var windowTitle: String {
        attention.isEmpty ? "ccdeck" : "ccdeck: \(attention.count) run\(attention.count == 1 ? " needs" : "s need") you"
    }
    public var focus: Pane = .runs
    /// The live runs and a window of the history, newest first: the rest of the history stays
    /// in the store's index and is paged in as the list is scrolled (see `RunHistoryWindow`).
    public var runs: [RunEntry] = []
    public var history = RunHistoryWindow()
    public var selectedRunID: String?
    public var outputPosition: OutputPosition = .follow
    public var backends: [BackendStatus]
    /// Backends whose first probe has answered; the others show as probing.
    public var probed: Set<BackendKind> = []
    public var selectedBackend = 0
    public var token: TokenInfo = .loading
    public var keptTokens: [KeptToken] = []
    public var orphans: [Orphan] = []
    public var orphansListed = false
    public var selectedOrphan = 0
    public var overlay: Overlay?
    public var notice: Notice?
    public var tailCapacity = 1_000
    /// Launches asked for whose run has not shown up yet, and whether the first to show up is to
    /// be stopped at once (`s` pressed before it could be selected).
    public var pendingLaunches = 0
    public var stopNextLaunch = false
    /// Comparisons whose runs are not all finished, and the last one that finished.
    public var comparisons: [PendingComparison] = []
    public var lastComparison: Comparison?

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

/// How much of the run history the dashboard holds, and what is past either end of it.
public struct RunHistoryWindow: Sendable, Equatable {
    /// Nothing older than the oldest run held is left to load.
    public var complete = true
    /// Newer history runs were dropped from the window (to bound memory) and are paged in again
    /// as the list is scrolled back up.
    public var trimmedAbove = false
    /// A page is on its way: one at a time.
    public var loading = false
    /// Runs in the store, when known.
    public var total: Int?
    /// The totals over the whole store, from its index (with the per-backend figures).
    public var totals: RunTotals?

    /// Rows from an end of the window at which the next page is asked for.
    public static let loadAhead = 60
    /// Finished runs held at most; past it, those farthest from the selection are let go.
    public static let maxHeld = 3_000

    public init() {}
}
