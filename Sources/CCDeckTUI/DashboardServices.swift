import CCDeckBackends
import CCDeckCore
import Foundation

/// The outside world as the dashboard runtime sees it. The live implementation drives real
/// backends; tests use a fake. Every method returns at once; results arrive as messages.
public protocol DashboardServices: AnyObject {
    /// Loads runs, reads the token, probes backends and starts watching them.
    func start(post: @escaping @Sendable (DashboardMessage) -> Void)
    /// `group` marks a comparison's runs; a failure before the run exists then arrives as
    /// `compareLaunchFailed`.
    func launch(mode: BackendKind, prompt: String, workspace: String?, group: String?, timeout: TimeInterval?)
    func stop(runID: String)
    func removeRun(_ record: RunRecord)
    func removeOrphan(_ orphan: Orphan)
    func pruneOrphans(_ orphans: [Orphan])
    func repushToken()
    /// Reads what a finished run changed; `changesLoaded` brings the lines.
    func loadChanges(runID: String)
    /// A page of the run history older (or newer) than `cursor`: `olderRunsLoaded` or
    /// `newerRunsLoaded` brings it.
    func loadRuns(olderThan cursor: RunCursor)
    func loadRuns(newerThan cursor: RunCursor)
    /// The command that opens an interactive shell in a live run's sandbox.
    func attachCommand(for record: RunRecord) -> Command?
    /// Stops background work before the process exits (live runs keep running).
    func shutdown()
    var output: OutputSource { get }
}

extension DashboardServices {
    /// A service with its whole history in its first load has no pages.
    public func loadRuns(olderThan cursor: RunCursor) {}
    public func loadRuns(newerThan cursor: RunCursor) {}
}
