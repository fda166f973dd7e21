import Foundation

/// Where a run's own time goes: the steps between marks, in milliseconds (`CCDECK_TRACE=1`).
/// One per process, started as the command line is read, so the steps before and after the
/// driver (parsing, the token, the summary) are counted too.
public final class PhaseTrace: @unchecked Sendable {
    public static let shared = PhaseTrace(enabled: getenv("CCDECK_TRACE").map { String(cString: $0) } == "1")

    let enabled: Bool
    private let lock = NSLock()
    private var last: UInt64 = 0
    private var steps: [(String, Double)] = []
    /// The engine's own time on the run's path: its commands and API calls made by the thread
    /// that drives the run (a background question is not on the path). `wall - engine` is then
    /// ccdeck's own time, whatever the engine's noise (scripts/bench/fixed-cost reports it).
    private var engineNanos: UInt64 = 0
    private var engineCalls = 0

    /// The programs whose time is the engine's (the backends' clients), not ccdeck's.
    static let engines: Set<String> = ["docker", "podman", "incus", "bwrap", "sbx", "fly", "flyctl"]

    init(enabled: Bool) { self.enabled = enabled }

    public func start() {
        guard enabled else { return }
        lock.withLock { last = DispatchTime.now().uptimeNanoseconds }
    }

    public func mark(_ name: String) {
        guard enabled else { return }
        lock.withLock {
            guard last != 0 else { return }
            let now = DispatchTime.now().uptimeNanoseconds
            steps.append((name, Double(now - last) / 1e6))
            last = now
        }
    }

    /// Whether a call `path` (an engine's client; nil: an API call, or any process the caller
    /// says is the sandbox's own) makes now is the engine's time on the run's path.
    func countsAsEngine(_ path: String?) -> Bool {
        guard enabled, Thread.isMainThread else { return false }
        return path.map { Self.engines.contains(($0 as NSString).lastPathComponent) } ?? true
    }

    /// Adds the time since `started` (a `DispatchTime` reading) to the engine's share.
    func engineCall(since started: UInt64) {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.withLock {
            engineNanos += now - started
            engineCalls += 1
        }
    }

    /// Runs `body`, its time the engine's when it is on the run's path (an API call, a wait for
    /// the daemon).
    func engineCall<T>(_ body: () throws -> T) rethrows -> T {
        guard countsAsEngine(nil) else { return try body() }
        let started = DispatchTime.now().uptimeNanoseconds
        defer { engineCall(since: started) }
        return try body()
    }

    /// `record 2.1 ms · prepare 31.0 ms · …`, or nil when off; the steps are then forgotten.
    public func take() -> String? {
        guard enabled else { return nil }
        return lock.withLock {
            defer { steps = []; engineNanos = 0; engineCalls = 0 }
            guard !steps.isEmpty else { return nil }
            return steps.map { $0.0 + " " + String(format: "%.1f ms", $0.1) }.joined(separator: " · ")
                + String(format: " | engine %.1f ms in %d calls", Double(engineNanos) / 1e6, engineCalls)
        }
    }
}

/// One value computed on another thread, waited for by whoever needs it.
final class Joined<T>: @unchecked Sendable {
    private var value: T?
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    /// Starts `body` on its own thread; a second start is ignored.
    func start(_ body: @escaping @Sendable () -> T) {
        guard thread == nil else { return }
        let t = Thread { [self] in
            value = body()
            done.signal()
        }
        thread = t
        t.start()
    }

    /// The value; nil when nothing was started.
    func wait() -> T? {
        guard thread != nil else { return nil }
        done.wait()
        done.signal()
        return value
    }

    /// The value, or nil when nothing was started or it is not there within `seconds`.
    func wait(upTo seconds: TimeInterval) -> T? {
        guard thread != nil, done.wait(timeout: .now() + seconds) == .success else { return nil }
        done.signal()
        return value
    }
}
