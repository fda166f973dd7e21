import ArgumentParser
import CCDeckCore
import Foundation

/// `--timeout DURATION`, shared by `run`, `compare` and `dashboard` (the launch form's default).
struct TimeoutOption: ParsableArguments {
    @Option(help: ArgumentHelp("Stop the agent if it has no result this long after it started (90s, 5m, 1h30m); "
                               + "the run fails with that reason.", valueName: "duration"))
    var timeout: String?

    func validate() throws {
        if let timeout, DurationText.parse(timeout) == nil {
            throw ValidationError("--timeout takes a duration like 90s, 5m or 1h30m, not \(InertText.line(timeout))")
        }
    }

    var seconds: TimeInterval? { timeout.flatMap(DurationText.parse) }
}
