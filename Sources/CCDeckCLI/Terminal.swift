import CCDeckBackends
import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Printing helpers. Every line goes through inert rendering on its way out, whatever
/// printed it: text ccdeck did not write (paths, names, prompts, engine messages, records) can
/// never put an escape sequence on the terminal. JSON is escaped (C0 and C1) the same way.
///
/// A stdout that is closed (`| head`) or full (`> /dev/full`) is not a crash: the first failed
/// write is remembered, nothing more is written there, and the command ends with one error line.
enum Terminal {
    /// Why standard output stopped taking what ccdeck prints, once it did.
    nonisolated(unsafe) private(set) static var outputFailure: String?

    static func out(_ line: String) {
        guard outputFailure == nil else { return }
        if let errno = write(1, safe(line) + "\n") {
            outputFailure = String(cString: strerror(errno))
        }
    }

    /// A line that is already inert JSON (from `json` or `InertText.jsonLine`).
    static func outJSON(_ text: String) {
        guard outputFailure == nil else { return }
        if let errno = write(1, text + "\n") { outputFailure = String(cString: strerror(errno)) }
    }

    static func err(_ line: String) {
        _ = write(2, safe(line) + "\n")
    }

    static func error(_ message: String) {
        err("ccdeck: error: " + message)
    }

    static func warning(_ message: String) {
        err("ccdeck: warning: " + message)
    }

    /// Each line made inert; ccdeck's own text passes unchanged (one byte scan).
    static func safe(_ text: String) -> String {
        // (Not `replacingOccurrences`: Foundation's NSString path costs ~0.2 ms on first use.)
        guard !InertText.linesAreInert(text) else { return text }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { InertText.line($0) }.joined(separator: "\n")
    }

    /// Writes all of `text`; the errno of a failed write, or nil.
    private static func write(_ fd: Int32, _ text: String) -> Int32? {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return nil
    }

    /// Left-aligned columns separated by two spaces; the last column is not padded.
    static func table(_ header: [String], _ rows: [[String]]) -> [String] {
        let all = [header] + rows.map { $0.map { InertText.line($0) } }
        var widths = Array(repeating: 0, count: header.count)
        for row in all { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        return all.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
    }

    /// JSON with every control character escaped: JSONEncoder escapes C0, and C1 and DEL are
    /// escaped here, so `jq` or a terminal showing it stays safe.
    static func json<T: Encodable>(_ value: T, pretty: Bool = true) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601WithMilliseconds
        let text = String(decoding: try e.encode(value), as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { InertText.jsonLine($0.utf8) }.joined(separator: "\n")
    }

    /// Asks "`verb` `what`? [y/N]" on the terminal. Without a terminal to ask on, the answer is
    /// an error saying to add --yes.
    static func confirm(_ verb: String, _ what: String) throws -> Bool {
        guard isatty(0) == 1 else { throw CLIError.usage("\(what) to \(verb): add --yes to \(verb) them without a question") }
        FileHandle.standardError.write(Data("\(verb) \(what)? [y/N] ".utf8))
        guard let answer = readLine() else { return false }
        return ["y", "yes"].contains(answer.lowercased())
    }

    /// Made once: a DateFormatter costs ~100 µs to make (ICU locale lookups), a listing of
    /// thousands of runs made one a row. Commands use it from their one thread.
    nonisolated(unsafe) private static let localTimeFormatter: DateFormatter = {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss zzz"
        return f
    }()

    static func localTime(_ date: Date) -> String {
        localTimeFormatter.string(from: date)
    }
}
