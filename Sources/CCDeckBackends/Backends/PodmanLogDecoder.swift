import Foundation

/// podman's `k8s-file` log, as conmon writes it beside a run (`--log-opt path=…`): one record a
/// line, `TIMESTAMP STREAM TAG CONTENT`, where TAG `P` is part of a long line whose rest follows
/// and `F` ends it. The log outlives a container its engine removed itself (`--rm`), so an
/// adopting ccdeck re-reads from it what the agent printed after the first ccdeck died.
public final class PodmanLogDecoder: OutputDecoder {
    public init() {}
    private var partial: [String: Data] = [:]
    private var stderrLines: [Data] = []
    public let finished = false
    public let exitCode: Int32? = nil

    public func decode(_ record: Data) -> [Data] {
        // Three space-separated fields, then the content as written (spaces and all).
        var fields: [Data] = []
        var rest = record[...]
        for _ in 0..<3 {
            guard let space = rest.firstIndex(of: 0x20) else {
                // A record with no content: `TS stream F` (an empty line).
                fields.append(Data(rest))
                rest = rest[rest.endIndex...]
                break
            }
            fields.append(Data(rest[rest.startIndex..<space]))
            rest = rest[rest.index(after: space)...]
        }
        guard fields.count == 3 else { return [] }
        let stream = String(decoding: fields[1], as: UTF8.self)
        guard stream == "stdout" || stream == "stderr" else { return [] }
        var line = partial.removeValue(forKey: stream) ?? Data()
        line.append(contentsOf: rest)
        if fields[2].first == UInt8(ascii: "P") {
            partial[stream] = line
            return []
        }
        if stream == "stderr" {
            stderrLines.append(line)
            return []
        }
        return [line]
    }

    public func takeStderr() -> [Data] {
        defer { stderrLines.removeAll() }
        return stderrLines
    }
}
