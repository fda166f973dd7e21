#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A command to run: program, arguments and the complete environment it gets.
///
/// Secrets travel in `environment`, never in `arguments`: argv is world-readable in `ps`.
public struct Command: Sendable, Equatable {
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]

    public init(_ executable: String, _ arguments: [String] = [],
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    /// The same command, made to receive SIGTERM when ccdeck dies (even by SIGKILL), where
    /// util-linux's `setpriv` is there to set the parent-death signal. For helpers that must
    /// not outlive ccdeck, such as event watchers.
    /// Makes the calling thread, and every process it starts from now on, yield the CPU to
    /// everything else (nice 19: Linux keeps a nice value per thread, and a child inherits its
    /// spawning thread's). For work beside a run that must not slow it down on a busy machine.
    public static func lowerThisThread() {
        #if os(Linux)
        setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)  // who 0: the calling thread, on Linux
        #endif
    }

    public func dyingWithParent() -> Command {
        #if os(Linux)
        if let setpriv = ChildProcess.resolve("setpriv", environment: environment) {
            return Command(setpriv, ["--pdeathsig", "TERM", "--", executable] + arguments, environment: environment)
        }
        #endif
        return self
    }

}

public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public var succeeded: Bool { self == .exited(0) }
    public var code: Int32 {
        switch self {
        case .exited(let c): return c
        case .signaled(let s): return 128 + s
        }
    }

    public var description: String {
        switch self {
        case .exited(let c): return "exit status \(c)"
        case .signaled(let s): return "killed by signal \(s)"
        }
    }
}

public enum ProcessError: Error, Equatable, CustomStringConvertible {
    case notFound(String)
    case spawnFailed(String, errno: Int32)

    public var description: String {
        switch self {
        case .notFound(let name): return "\(name): command not found in PATH"
        case .spawnFailed(let name, let e): return "could not start \(name): \(String(cString: strerror(e)))"
        }
    }
}

#if os(Linux)
/// glibc's `pipe2`, which the Glibc module does not export (it sits behind `_GNU_SOURCE`).
@_silgen_name("pipe2")
private func linux_pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32
#endif

/// Pipes created close-on-exec in one step (`pipe2`), so a child that another thread spawns at
/// that moment can never inherit an end and hold it open.
public enum Pipe2 {
    public static func make(nonBlocking: Bool = false) -> (read: Int32, write: Int32)? {
        var fds: [Int32] = [-1, -1]
        var flags = O_CLOEXEC
        if nonBlocking { flags |= O_NONBLOCK }
        #if os(Linux)
        guard linux_pipe2(&fds, flags) == 0 else { return nil }
        #else
        guard pipe(&fds) == 0 else { return nil }
        fds.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
        if nonBlocking { fds.forEach { _ = fcntl($0, F_SETFL, fcntl($0, F_GETFL) | O_NONBLOCK) } }
        #endif
        return (fds[0], fds[1])
    }
}

/// A child process started with `posix_spawn`, in its own process group so a Ctrl-C
/// at the terminal reaches ccdeck alone, which then stops the run on purpose.
public final class ChildProcess: @unchecked Sendable {
    public enum Stream: Sendable { case null, inherit, pipe }

    public let pid: pid_t
    /// Read ends of the child's stdout / stderr, when piped. Owned by this object.
    public private(set) var stdoutFD: Int32 = -1
    public private(set) var stderrFD: Int32 = -1
    /// Write end of the child's stdin, when piped.
    public private(set) var stdinFD: Int32 = -1
    /// Set once by whichever thread reaps the child, read by any: under `statusLock`, so a pid
    /// that was reaped (and may be reused) is never signalled.
    private var status: ExitStatus?
    private let statusLock = NSLock()
    private var spawnedAt: UInt64 = 0
    /// Its life is the engine's time on the run's path (`CCDECK_TRACE`).
    private var countsAsEngine = false

    /// Counts this process's life as the engine's time on the run's path (`CCDECK_TRACE`): the
    /// sandbox's own process, whatever program a backend starts it through (local mode's `sh`).
    public func countAsEngineCall() {
        countsAsEngine = countsAsEngine || PhaseTrace.shared.countsAsEngine(nil)
    }

    private init(pid: pid_t) { self.pid = pid }

    deinit {
        for fd in [stdoutFD, stderrFD, stdinFD] where fd >= 0 { close(fd) }
    }

    /// Finds `name` on the PATH of `environment` (or accepts a path with a slash).
    public static func resolve(_ name: String, environment: [String: String]) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// A child that exits before reading all of its stdin must give ccdeck EPIPE, not kill it:
    /// SIGPIPE is ignored in any process that starts children through here (they get it back
    /// as default, with every other signal, at spawn).
    private static let ignoreSIGPIPE: Void = { _ = Glibc.signal(SIGPIPE, SIG_IGN) }()

    /// Spawns one at a time: with pipes made close-on-exec atomically this is no longer needed
    /// for them, but it keeps `resolve` and the ETXTBSY retry below simple to reason about.
    private static let spawnLock = NSLock()

    public static func spawn(_ command: Command, stdin: Stream = .null, stdout: Stream = .pipe,
                             stderr: Stream = .pipe, newProcessGroup: Bool = true) throws -> ChildProcess {
        spawnLock.lock()
        defer { spawnLock.unlock() }
        _ = ignoreSIGPIPE
        guard let path = resolve(command.executable, environment: command.environment) else {
            throw ProcessError.notFound(command.executable)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var parentEnds: [Int32] = [-1, -1, -1]
        var childEnds: [Int32] = []
        defer { childEnds.forEach { close($0) } }
        for (target, mode) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch mode {
            case .inherit: break
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .pipe:
                var fds: [Int32] = [-1, -1]
                guard let made = Pipe2.make() else { throw ProcessError.spawnFailed(path, errno: errno) }
                fds = [made.read, made.write]
                let (childEnd, parentEnd) = target == 0 ? (fds[0], fds[1]) : (fds[1], fds[0])
                childEnds.append(childEnd)
                parentEnds[Int(target)] = parentEnd
                posix_spawn_file_actions_adddup2(&actions, childEnd, target)
            }
        }

        // The child starts with default signal handling and an empty mask, whatever ccdeck set.
        var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        if newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT, SIGCHLD, SIGWINCH, SIGTSTP, SIGTTOU, SIGTTIN] {
            sigaddset(&defaults, sig)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)

        let argv = ([path] + command.arguments).map { strdup($0) } + [nil]
        let envp = command.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        // ETXTBSY: another thread's child briefly holds the just-written executable open for writing.
        var retries = 0
        while rc == ETXTBSY && retries < 50 {
            usleep(10_000)
            retries += 1
            rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        }
        guard rc == 0 else {
            parentEnds.filter { $0 >= 0 }.forEach { close($0) }
            throw ProcessError.spawnFailed(command.executable, errno: rc)
        }
        let child = ChildProcess(pid: pid)
        child.spawnedAt = DispatchTime.now().uptimeNanoseconds
        child.countsAsEngine = PhaseTrace.shared.countsAsEngine(path)
        child.stdinFD = parentEnds[0]
        child.stdoutFD = parentEnds[1]
        child.stderrFD = parentEnds[2]
        return child
    }

    /// Closes our end of the child's stdin (it then sees end of file).
    public func closeStdin() {
        if stdinFD >= 0 { close(stdinFD); stdinFD = -1 }
    }

    /// Sends a signal to the child's whole process group (or the child alone). The lock is held
    /// across the kill, so the waiting thread cannot reap the child in between.
    public func signal(_ sig: Int32, group: Bool = true) {
        statusLock.lock()
        defer { statusLock.unlock() }
        guard status == nil else { return }
        if group { _ = kill(-pid, sig) } else { _ = kill(pid, sig) }
    }

    /// The exit status, once some thread has waited for it.
    public var exitStatus: ExitStatus? {
        statusLock.lock()
        defer { statusLock.unlock() }
        return status
    }

    /// Blocks until the child exits. It waits without reaping (`WNOWAIT`), then reaps under the
    /// lock, so `signal` never reaches a pid that was already given back to the system.
    @discardableResult
    public func wait() -> ExitStatus {
        if let s = exitStatus { return s }
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        statusLock.lock()
        defer { statusLock.unlock() }
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        let s = Self.decode(raw)
        status = s
        if countsAsEngine { PhaseTrace.shared.engineCall(since: spawnedAt) }
        return s
    }

    static func decode(_ raw: Int32) -> ExitStatus {
        let sig = raw & 0x7F
        return sig == 0 ? .exited((raw >> 8) & 0xFF) : .signaled(sig)
    }
}

/// A small static program shipped beside ccdeck (`ccdeck-netbridge`, `ccdeck-dockerrun`), or
/// the one `variable` names.
public enum BundledHelper {
    public static func find(_ name: String, variable: String, environment: [String: String]) -> String? {
        if let given = environment[variable], !given.isEmpty { return access(given, X_OK) == 0 ? given : nil }
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let candidate = (exe as NSString).deletingLastPathComponent + "/" + name
        return access(candidate, X_OK) == 0 ? candidate : nil
    }
}
