import CCDeckBackends
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How background work talks to the UI thread: it appends a message and writes one byte to
/// a pipe the UI thread polls. Background code never touches the dashboard or ncurses.
public final class MessageQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [DashboardMessage] = []
    private var fds: [Int32] = [-1, -1]

    public init() {
        if let made = Pipe2.make(nonBlocking: true) { fds = [made.read, made.write] }
    }

    deinit { fds.forEach { close($0) } }

    /// The descriptor the UI thread polls.
    public var wakeFD: Int32 { fds[0] }

    public func post(_ message: DashboardMessage) {
        lock.lock()
        let wasEmpty = pending.isEmpty
        pending.append(message)
        lock.unlock()
        if wasEmpty {
            var byte: UInt8 = 1
            _ = write(fds[1], &byte, 1)
        }
    }

    /// Everything posted so far, in order; drains the pipe.
    public func take() -> [DashboardMessage] {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(fds[0], &buffer, buffer.count) > 0 {}
        lock.lock()
        defer { lock.unlock() }
        let out = pending
        pending.removeAll(keepingCapacity: true)
        return out
    }
}
