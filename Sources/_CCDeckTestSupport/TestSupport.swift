import CCDeckBackends
import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Paths and helpers shared by every test target.
public enum TestPaths {
    /// The repository root, found from this file's location.
    public static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    public static var fixtures: String { repositoryRoot + "/Tests/Fixtures" }

    public static func fixture(_ name: String) -> String {
        let path = fixtures + "/" + name
        guard let data = FileManager.default.contents(atPath: path) else { fatalError("missing fixture \(path)") }
        return String(decoding: data, as: UTF8.self)
    }

    /// The built `ccdeck` executable (CCDECK_BIN, else the debug build next to the tests).
    public static var ccdeckBinary: String {
        if let bin = ProcessInfo.processInfo.environment["CCDECK_BIN"], !bin.isEmpty { return bin }
        for config in ["debug", "release"] {
            let candidate = repositoryRoot + "/.build/\(config)/ccdeck"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return repositoryRoot + "/.build/debug/ccdeck"
    }
}

extension TestPaths {
    /// `ccdeck-testhost`: the same command line with the tests' own backend (`proc`) registered.
    public static var testHostBinary: String {
        if let bin = ProcessInfo.processInfo.environment["CCDECK_TESTHOST_BIN"], !bin.isEmpty { return bin }
        return (ccdeckBinary as NSString).deletingLastPathComponent + "/ccdeck-testhost"
    }

    /// The real Claude Code CLI on the host (installed by `scripts/testenv install`), if there is one.
    public static var claudeBinary: String? {
        let bin = ProcessInfo.processInfo.environment["CCDECK_CLAUDE_BIN"] ?? ""
        return !bin.isEmpty && access(bin, X_OK) == 0 ? bin : nil
    }
}

/// A temporary folder removed when the value goes away.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(_ prefix: String = "ccdeck-test") {
        var template = Array((FileManager.default.temporaryDirectory.path + "/\(prefix)-XXXXXX").utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    public func write(_ name: String, _ text: String, mode: Int = 0o644) -> String {
        let file = path + "/" + name
        try? FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        // O_CLOEXEC: a child spawned by a parallel test must not inherit the write end of a
        // script about to be executed (exec would fail with ETXTBSY for as long as it lives).
        unlink(file)
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(mode))
        if fd >= 0 {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        return file
    }
}

/// Runs the real `ccdeck` executable and captures what it prints.
public struct CCDeckInvocation: Sendable {
    public var status: ExitStatus
    public var stdout: String
    public var stderr: String
    public var output: String { stdout + stderr }

    public init(status: ExitStatus, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    /// - Parameter environment: the complete environment (nothing is inherited implicitly).
    public static func run(_ arguments: [String], environment: [String: String], timeout: TimeInterval = 300,
                           input: Data? = nil) throws -> CCDeckInvocation {
        let out = try ProcessRunner.run(Command(TestPaths.ccdeckBinary, arguments, environment: environment),
                                        input: input, timeout: timeout)
        return CCDeckInvocation(status: out.status, stdout: out.stdout, stderr: out.stderr)
    }

    /// A minimal environment: PATH and a private HOME/state folder, no token.
    public static func baseEnvironment(home: String) -> [String: String] {
        let host = ProcessInfo.processInfo.environment
        var env = ["PATH": host["PATH"] ?? "/usr/local/bin:/usr/bin:/bin", "HOME": home,
                   "XDG_STATE_HOME": home + "/state", "LANG": "C.UTF-8"]
        for key in ["TMPDIR", "DOCKER_HOST", "CONTAINERS_CONF"] { env[key] = host[key] }
        return env
    }
}

/// `ccdeck` run in the background while a test waits for something it prints, then acts once
/// (a signal, a kill, a file removed), and reads it to the end.
public struct CCDeckInterrupted: Sendable {
    public var status: ExitStatus
    public var stdout: String
    public var stderr: String
    /// The marker was printed and the action ran.
    public var acted: Bool
    public var output: String { stdout + stderr }

    /// - Parameters:
    ///   - marker: text whose first appearance (on stdout, or stderr with `onStderr`) triggers `action`.
    ///   - action: given the ccdeck process (not yet reaped: a killed one stays a zombie till the end).
    public static func run(_ arguments: [String], environment: [String: String], binary: String = TestPaths.ccdeckBinary,
                           when marker: String, onStderr: Bool = false,
                           _ action: (ChildProcess) -> Void) throws -> CCDeckInterrupted {
        let child = try ChildProcess.spawn(Command(binary, arguments, environment: environment))
        var out = "", err = "", acted = false
        func check(_ text: String) {
            if !acted && text.contains(marker) {
                acted = true
                action(child)
            }
        }
        let status = ProcessRunner.stream(child, onStdoutLine: { line in
            out += String(decoding: line, as: UTF8.self) + "\n"
            if !onStderr { check(out) }
        }, onStderrLine: { line in
            err += String(decoding: line, as: UTF8.self) + "\n"
            if onStderr { check(err) }
        })
        return CCDeckInterrupted(status: status, stdout: out, stderr: err, acted: acted)
    }
}

extension RunStore {
    /// A run's folder, its driver's lock and its first record, as a driver makes them.
    public func create(_ record: RunRecord) throws -> DriverLock {
        let lock = try createFolder(for: record)
        try save(record)
        return lock
    }
}
