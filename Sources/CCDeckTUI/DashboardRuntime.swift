import CCDeckBackends
import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The dashboard's one UI thread: it blocks in `poll` on the keyboard, the message pipe and
/// the signal pipe (and, only when something on screen counts down, a timeout), applies
/// what arrived to the controller, and copies what changed to the terminal.
public final class DashboardRuntime {
    let dashboard: Dashboard
    let view: DashboardView
    let terminal: NCursesTerminal
    let services: DashboardServices
    let queue = MessageQueue()
    let signalFD: Int32
    public private(set) var exitStatus: Int32 = 0

    public init(dashboard: Dashboard, view: DashboardView, terminal: NCursesTerminal, services: DashboardServices) {
        self.dashboard = dashboard
        self.view = view
        self.terminal = terminal
        self.services = services
        signalFD = SignalPipe.install([SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT])
    }

    /// Runs until quit or a fatal signal; the terminal is restored before it returns.
    public func run() -> Int32 {
        defer {
            services.shutdown()
            terminal.restore()
        }
        let size = terminal.size
        dashboard.handle(.resize(width: size.width, height: size.height))
        dashboard.handle(.tick(Date()))
        draw()
        let queue = self.queue
        services.start { queue.post($0) }

        var running = true
        while running {
            var fds = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: queue.wakeFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
            var timeout: Int32 = -1
            if let next = dashboard.state.nextTick() {
                timeout = Int32(max(0, min(60_000, next.timeIntervalSinceNow * 1000 + 1)))
            }
            let n = poll(&fds, nfds_t(fds.count), timeout)
            if n < 0 && errno != EINTR { break }
            let woke = DispatchTime.now().uptimeNanoseconds
            dashboard.handle(.tick(Date()))

            if fds[2].revents != 0 {
                for sig in drainSignals() {
                    switch sig {
                    case SIGINT, SIGTERM, SIGHUP:
                        exitStatus = sig == SIGINT ? 0 : 128 + sig
                        running = false
                    case SIGWINCH:
                        let s = terminal.resize()
                        dashboard.handle(.resize(width: s.width, height: s.height))
                    case SIGTSTP:
                        terminal.stopForJobControl()
                        SignalPipe.reinstall(SIGTSTP)
                        let s = terminal.resize()
                        dashboard.handle(.resize(width: s.width, height: s.height))
                    default: break
                    }
                }
                if !running { break }
            }
            var keysRead = false
            if fds[0].revents != 0 {
                keysRead = true
                for key in terminal.readKeys() {
                    if key == .ctrl("c") { running = false; break }
                    if !perform(dashboard.handle(.key(key))) { running = false; break }
                }
                if !running { break }
            }
            if fds[1].revents != 0 {
                for message in queue.take() where !perform(dashboard.handle(message)) { running = false }
                if !running { break }
            }
            draw()
            if keysRead { latencyLog?.note(since: woke) }
        }
        return exitStatus
    }

    /// For benchmarks (`CCDECK_KEY_LATENCY_LOG=path`): per wake-up with keys, the milliseconds
    /// from the wake-up to the frame drawn (messages handled meanwhile included), one a line.
    final class LatencyLog {
        let fd: Int32
        init?(path: String?) {
            guard let path, !path.isEmpty else { return nil }
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            if fd < 0 { return nil }
        }
        deinit { close(fd) }
        func note(since start: UInt64) {
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            let line = String(format: "%.3f\n", ms)
            _ = line.withCString { write(fd, $0, strlen($0)) }
        }
    }

    private let latencyLog = LatencyLog(path: ProcessInfo.processInfo.environment["CCDECK_KEY_LATENCY_LOG"])

    private func draw(force: Bool = false) {
        terminal.draw(view.render(dashboard, source: services.output), force: force)
        if dashboard.state.setTitle { terminal.setTitle(dashboard.state.windowTitle) }
    }

    /// Carries out effects; false means quit.
    private func perform(_ effects: [Effect]) -> Bool {
        for effect in effects {
            switch effect {
            case .quit: return false
            case .bell: terminal.bell()
            case .loadChanges(let id): services.loadChanges(runID: id)
            case .loadOlderRuns(let cursor): services.loadRuns(olderThan: cursor)
            case .loadNewerRuns(let cursor): services.loadRuns(newerThan: cursor)
            case .launch(let mode, let prompt, let workspace, let timeout):
                services.launch(mode: mode, prompt: prompt, workspace: workspace, group: nil, timeout: timeout)
            case .compare(let modes, let prompt, let group, let timeout):
                for mode in modes { services.launch(mode: mode, prompt: prompt, workspace: nil, group: group, timeout: timeout) }
            case .stop(let id): services.stop(runID: id)
            case .removeRun(let record): services.removeRun(record)
            case .removeOrphan(let orphan): services.removeOrphan(orphan)
            case .pruneOrphans(let orphans): services.pruneOrphans(orphans)
            case .repushToken: services.repushToken()
            case .attach(let record): attach(record)
            }
        }
        return true
    }

    /// Hands the terminal to a shell in the run's sandbox, then takes it back intact.
    private func attach(_ record: RunRecord) {
        guard let command = services.attachCommand(for: record) else {
            dashboard.handle(.notice(Notice("attach is not available for \(record.mode.displayName) runs", .warning)))
            return
        }
        var status: ExitStatus?
        terminal.suspend {
            let banner = "ccdeck: attaching a shell in \(record.sandbox), in its workspace.\r\n"
                + "ccdeck: exit the shell (ctrl-d or `exit`) to come back to the dashboard.\r\n"
            FileHandle.standardOutput.write(Data(banner.utf8))
            // The shell shares ccdeck's process group so it owns the terminal's foreground.
            if let child = try? ChildProcess.spawn(command, stdin: .inherit, stdout: .inherit, stderr: .inherit,
                                                   newProcessGroup: false) {
                status = child.wait()
            }
            _ = drainSignals()  // a ctrl-c meant for the shell is not meant for the dashboard
        }
        let s = terminal.resize()
        dashboard.handle(.resize(width: s.width, height: s.height))
        dashboard.handle(.notice(Notice(status == nil ? "could not start \(command.executable) exec"
                                                      : "back from \(record.sandbox) (\(status!))",
                                        status == nil ? .error : .info)))
        draw(force: true)
    }

    private func drainSignals() -> [Int32] {
        var buffer = [UInt8](repeating: 0, count: 64)
        var out: [Int32] = []
        while true {
            let n = read(signalFD, &buffer, buffer.count)
            if n <= 0 { break }
            out += buffer[..<n].map { Int32($0) }
        }
        return out
    }
}
