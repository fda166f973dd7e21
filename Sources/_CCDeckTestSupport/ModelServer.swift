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

    /// - Parameter workspace: where the scenario's tools write (default `/workspace`, a container's mount).
    public init(scenario: String, logDirectory: String, delay: Double = 0, workspace: String? = nil) throws {
        requestLog = logDirectory + "/requests-\(scenario)-\(UUID().uuidString.prefix(8)).jsonl"
        child = try ChildProcess.spawn(Command("python3", [TestPaths.fixtures + "/model_server.py", "--scenario", scenario,
                                                          "--port", "0", "--request-log", requestLog,
                                                          "--delay", String(delay)]
                                                   + (workspace.map { ["--workspace", $0] } ?? [])),
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

    /// True when some request's first user message held exactly `prompt` as one text block.
    public func received(prompt: String) -> Bool {
        let digest = SHA256Hex.of(Data(prompt.utf8))
        return requests.contains { request in
            ((request["first_user_texts"] as? [[String: Any]]) ?? []).contains { $0["sha256"] as? String == digest }
        }
    }

    /// One JSON object per request the CLI made.
    public var requests: [[String: Any]] {
        let text = (try? String(contentsOfFile: requestLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}

/// A SHA-256 digest in hex, from coreutils' `sha256sum` (tests only: no crypto library needed).
enum SHA256Hex {
    static func of(_ data: Data) -> String {
        let out = try? ProcessRunner.run(Command("sha256sum", [], environment: ["PATH": "/usr/bin:/bin"]), input: data, timeout: 30)
        return String((out?.stdout ?? "").prefix(64))
    }
}
