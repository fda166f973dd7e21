import CCDeckBackends
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The scripted Anthropic Messages API server (Tests/Fixtures/model_server.py), started for one test.
public final class ModelServer: @unchecked Sendable {
    public let port: Int
    public let requestLog: String
    private let child: ChildProcess

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public init(scenario: String, logDirectory: String, delay: Double = 0) throws {
        requestLog = logDirectory + "/requests-\(scenario).jsonl"
        child = try ChildProcess.spawn(Command("python3", [TestPaths.fixtures + "/model_server.py", "--scenario", scenario,
                                                          "--port", "0", "--request-log", requestLog,
                                                          "--delay", String(delay)]),
                                       stdout: .pipe, stderr: .null)
        // The server prints `PORT <n>` once listening.
        var line = Data()
        var byte: UInt8 = 0
        while read(child.stdoutFD, &byte, 1) == 1, byte != 0x0A { line.append(byte) }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5)) else {
            child.signal(SIGKILL)
            child.wait()
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "model server did not start: \(text)"])
        }
        self.port = port
    }

    deinit {
        child.signal(SIGTERM)
        child.wait()
    }

    /// One JSON object per request the CLI made.
    public var requests: [[String: Any]] {
        let text = (try? String(contentsOfFile: requestLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}
