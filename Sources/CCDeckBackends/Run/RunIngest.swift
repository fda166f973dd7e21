import CCDeckCore
import Foundation

/// What happens to each line a run's agent prints: redacted, appended to `output.jsonl`,
/// parsed and folded into the run's progress. One per run, used from one thread.
public final class RunIngest {
    private let redactor: SecretRedactor
    private let output: AppendLog
    private let parser = StreamEventParser()
    public private(set) var progress = RunProgress()

    public init(outputPath: String, redactor: SecretRedactor) throws {
        self.redactor = redactor
        self.output = try AppendLog(path: outputPath)
    }

    /// The first write to `output.jsonl` that failed, in words naming the file.
    public var writeFailure: String? { output.failure }

    /// Writes what is buffered: call it when the current burst of lines is over.
    public func flush() { output.flush() }

    /// Folds a line already stored (by an earlier driver) into the progress, without storing it again.
    public func replay(_ stored: Data, at now: Date) {
        progress.apply(parser.parse(data: stored), at: now)
    }

    /// Returns the event and the bytes as stored (with the token redacted).
    public func ingest(_ line: Data, at now: Date) -> (event: StreamEvent, stored: Data) {
        let raw = redactor.redact(line)
        output.append(line: raw)
        let event = parser.parse(data: raw)
        progress.apply(event, at: now)
        return (event, raw)
    }
}
