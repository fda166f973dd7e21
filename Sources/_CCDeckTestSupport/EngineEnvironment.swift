import CCDeckBackends
import Foundation

/// The real engines started by `scripts/testenv up` (via `scripts/test`): where they are and
/// which test image holds the real Claude Code CLI. End-to-end tests need it; they fail
/// loudly when CCDECK_E2E=1 promises it and it is missing, and are skipped otherwise.
public enum EngineEnvironment {
    public static var host: [String: String] { ProcessInfo.processInfo.environment }

    /// True when the end-to-end tests should run (scripts/test sets it).
    public static var enabled: Bool { host["CCDECK_E2E"] == "1" }

    public static var testImage: String { host["CCDECK_TEST_IMAGE"] ?? "ccdeck-test-runner:2.1.332" }

    /// Variables the scripted scenarios need inside the container (e.g. retry limits).
    public static var passThrough: [String] {
        (host["CCDECK_TEST_PASS_ENV"] ?? "CLAUDE_CODE_MAX_RETRIES").split(separator: " ").map(String.init)
    }

    /// The environment a test's `ccdeck` gets: private state, the engines, the model server, a canary token.
    public static func runEnvironment(home: String, model: ModelServer?, token: String?) -> [String: String] {
        var env = CCDeckInvocation.baseEnvironment(home: home)
        for name in passThrough { env[name] = host[name] }
        if let model {
            env["ANTHROPIC_BASE_URL"] = model.baseURL
            env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
        }
        env["CLAUDE_CODE_OAUTH_TOKEN"] = token
        return env
    }

    /// `ccdeck run` arguments for the test image on the host network (to reach the model on loopback).
    public static func runArguments(engine: String, extra: [String] = []) -> [String] {
        ["run", "--mode", engine, "--image", testImage, "--runtime-arg=--network=host"]
            + passThrough.flatMap { ["--pass-env", $0] } + extra
    }

    /// The Incus test image (an alias) from scripts/testenv.
    public static var incusImage: String { host["CCDECK_TEST_INCUS_IMAGE"] ?? "ccdeck-test-runner" }

    /// `ccdeck run --mode incus` arguments: the test image, and a proxy device that reaches the
    /// scripted model on the host's loopback (the instance has no network of its own).
    public static func incusArguments(model: ModelServer?, extra: [String] = []) -> [String] {
        var args = ["run", "--mode", "incus", "--image", incusImage] + passThrough.flatMap { ["--pass-env", $0] }
        if let model { args += ["--device", incusProxy(model)] }
        return args + extra
    }

    public static func incusProxy(_ model: ModelServer) -> String {
        "model,proxy,listen=tcp:127.0.0.1:\(model.port),connect=tcp:127.0.0.1:\(model.port),bind=instance"
    }

    /// A canary token: looks real, is unique per test, and must never show up anywhere.
    public static func canaryToken() -> String {
        "sk-ant-oat01-CANARY" + UUID().uuidString.replacingOccurrences(of: "-", with: "") + "ccdeckcanary0000"
    }
}

/// Watches every process's argv while a test runs, collecting any that contains `needle`.
public final class ArgvWatcher: @unchecked Sendable {
    private let needle: [UInt8]
    private let lock = NSLock()
    private var running = true
    private var hits: [String] = []
    private var scans = 0
    private var thread: Thread?

    public init(needle: String) {
        self.needle = Array(needle.utf8)
        let t = Thread { [unowned self] in self.loop() }
        thread = t
        t.start()
    }

    /// Stops watching; returns the offending command lines (inert) and the number of full scans made.
    public func stop() -> (hits: [String], scans: Int) {
        lock.lock()
        running = false
        lock.unlock()
        while true {
            lock.lock()
            let done = thread == nil
            lock.unlock()
            if done { break }
            usleep(5_000)
        }
        return (hits, scans)
    }

    private func loop() {
        while true {
            lock.lock()
            let go = running
            lock.unlock()
            guard go else { break }
            scanOnce()
            usleep(2_000)
        }
        lock.lock()
        thread = nil
        lock.unlock()
    }

    private func scanOnce() {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { $0.allSatisfy(\.isNumber) } ?? []
        for pid in pids {
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { continue }
            let bytes = [UInt8](data)
            if bytes.count >= needle.count, contains(bytes) {
                let line = String(decoding: bytes.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
                lock.lock()
                hits.append("pid \(pid): " + line.prefix(200))
                lock.unlock()
            }
        }
        lock.lock()
        scans += 1
        lock.unlock()
    }

    private func contains(_ bytes: [UInt8]) -> Bool {
        guard let first = needle.first else { return false }
        var i = 0
        while i + needle.count <= bytes.count {
            if bytes[i] == first && bytes[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}

/// An engine's CLI that notes each command it is asked (its first word) before running the real
/// one: which calls a run made through the CLI rather than the engine's socket.
public struct NotedCommands: Sendable {
    /// `environment` with the noting CLI first on its PATH.
    public let environment: [String: String]
    public let log: String

    /// Puts a noting `tool` in `home`/bin; nil when there is no real `tool` to run.
    public init?(_ tool: String, in home: TemporaryDirectory, environment: [String: String]) {
        guard let real = ChildProcess.resolve(tool, environment: EngineEnvironment.host) else { return nil }
        log = home.path + "/\(tool)-commands-\(UUID().uuidString.prefix(6)).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        home.write("bin/\(tool)", "#!/bin/sh\necho \"$1\" >> \"$CCDECK_TEST_NOTES_\(tool)\"\nexec '\(real)' \"$@\"\n", mode: 0o755)
        var env = environment
        env["PATH"] = home.path + "/bin:" + (env["PATH"] ?? "/usr/bin:/bin")
        env["CCDECK_TEST_NOTES_\(tool)"] = log
        self.environment = env
    }

    /// The commands asked so far, in order.
    public var commands: [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Forgets the commands asked so far.
    public func clear() { FileManager.default.createFile(atPath: log, contents: nil) }
}
