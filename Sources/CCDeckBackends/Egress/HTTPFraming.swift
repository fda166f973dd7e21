import Foundation

/// Where an HTTP/1.1 message's body ends (RFC 9112 §6), for the egress proxy to keep a plain-http
/// connection open across requests: it must find each request's head to decide it, and each
/// answer's end to know when the connection may go to another host. The bytes themselves pass
/// through unchanged; this only counts them.
struct BodyFraming: Equatable {
    enum State: Equatable {
        /// The message has no body left.
        case done
        /// This many bytes of body left.
        case length(Int)
        /// Reading a chunk-size line (its bytes so far in `line`).
        case chunkSize
        /// This many bytes of chunk data left, then the CRLF after them.
        case chunkData(Int)
        /// The line end after a chunk's data.
        case chunkEnd
        /// Trailer lines after the last chunk, until an empty one.
        case trailer
        /// Everything until the connection closes (an answer with no length).
        case untilClose
    }

    var state: State
    private var line: [UInt8] = []
    static let maxLine = 8 << 10

    init(_ state: State) { self.state = state }

    var isDone: Bool { state == .done }

    /// A request's body: chunked, or `Content-Length`, or none. Nil when the head is ambiguous
    /// (both, or lengths that disagree, or a transfer coding other than chunked): a request a
    /// server might frame differently from the proxy is refused, not guessed at.
    static func request(_ head: HTTPHead) -> BodyFraming? {
        // `Content-Length : 5` or a folded line: a server may read a length the proxy did not.
        guard head.wellFormed else { return nil }
        let codings = head.list("transfer-encoding").map { $0.lowercased() }
        let lengths = head.list("content-length")
        if !codings.isEmpty {
            guard codings == ["chunked"], lengths.isEmpty else { return nil }
            return BodyFraming(.chunkSize)
        }
        guard let length = Self.length(lengths) else { return nil }
        return BodyFraming(length == 0 ? .done : .length(length))
    }

    /// An answer's body, given the method of the request it answers: none for HEAD, 1xx, 204 and
    /// 304; chunked; `Content-Length`; else until the upstream closes.
    static func response(_ head: HTTPHead, status: Int, method: String) -> BodyFraming {
        if method == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 { return BodyFraming(.done) }
        let codings = head.list("transfer-encoding").map { $0.lowercased() }
        if !codings.isEmpty { return BodyFraming(codings.last == "chunked" ? .chunkSize : .untilClose) }
        let lengths = head.list("content-length")
        guard !lengths.isEmpty, let length = Self.length(lengths) else { return BodyFraming(.untilClose) }
        return BodyFraming(length == 0 ? .done : .length(length))
    }

    /// The one length all `Content-Length` values agree on (0 for none); nil when they do not, or one is not a number.
    private static func length(_ values: [String]) -> Int? {
        guard let first = values.first else { return 0 }
        guard first.count <= 18, !first.isEmpty, first.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let n = Int(first), values.allSatisfy({ $0 == first }) else { return nil }
        return n
    }

    /// Takes what of `bytes` belongs to this body: how many bytes (the rest begin the next
    /// message), or nil when a chunk's framing is malformed.
    mutating func consume(_ bytes: ArraySlice<UInt8>) -> Int? {
        var i = bytes.startIndex
        while i < bytes.endIndex {
            switch state {
            case .done:
                return i - bytes.startIndex
            case .untilClose:
                return bytes.count
            case .length(let left):
                let take = min(left, bytes.endIndex - i)
                i += take
                state = left == take ? .done : .length(left - take)
            case .chunkData(let left):
                let take = min(left, bytes.endIndex - i)
                i += take
                state = left == take ? .chunkEnd : .chunkData(left - take)
            case .chunkSize, .chunkEnd, .trailer:
                // A line, to its LF.
                guard let lf = bytes[i...].firstIndex(of: 0x0A) else {
                    line += bytes[i...]
                    guard line.count <= Self.maxLine else { return nil }
                    return bytes.count
                }
                line += bytes[i..<lf]
                i = lf + 1
                if line.last == 0x0D { line.removeLast() }
                defer { line.removeAll(keepingCapacity: true) }
                switch state {
                case .chunkEnd:
                    guard line.isEmpty else { return nil }
                    state = .chunkSize
                case .trailer:
                    if line.isEmpty { state = .done }
                default:
                    // `1a`, `1a;name=value`: the size in hex, extensions ignored.
                    let digits = line.prefix { $0 != 0x3B }.drop { $0 == 0x20 || $0 == 0x09 }
                        .reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
                    let hex = { (c: UInt8) in (0x30...0x39).contains(c) || (0x41...0x46).contains(c) || (0x61...0x66).contains(c) }
                    guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy(hex),
                          let size = Int(String(decoding: digits, as: UTF8.self), radix: 16), size >= 0 else { return nil }
                    state = size == 0 ? .trailer : .chunkData(size)
                }
            }
        }
        return bytes.count
    }
}

/// A message head's start line and fields (names lowercased), as sent.
struct HTTPHead {
    var startLine: String
    /// Each field: its name lowercased, its value trimmed, and its line as sent.
    var fields: [(name: String, value: String, line: String)]
    /// Every field line is `name: value`, the name a token (no space before the colon, no folding).
    var wellFormed = true

    init(_ bytes: ArraySlice<UInt8>) {
        // Only names and numbers are read: a stray non-UTF-8 byte in a value changes nothing.
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        startLine = lines.removeFirst()
        var fields: [(name: String, value: String, line: String)] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                  !line[..<colon].contains(where: { $0 == " " || $0 == "\t" }) else {
                wellFormed = false
                continue
            }
            fields.append((String(line[..<colon]).lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces),
                           line))
        }
        self.fields = fields
    }

    /// The elements of every `name` field, comma-separated lists joined (an empty element kept: `5,` is not `5`).
    func list(_ name: String) -> [String] {
        fields.filter { $0.name == name }
            .flatMap { $0.value.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// An answer's status code (`HTTP/1.1 200 OK`).
    var status: Int? {
        let parts = startLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), parts[1].count == 3 else { return nil }
        return Int(parts[1])
    }
}

/// Follows the answers coming back on a kept plain-http connection, to say when each ends.
struct AnswerReader {
    private var head: [UInt8] = []
    private var body = BodyFraming(.done)
    /// Framing lost (a head too large, an upgrade, a malformed chunk): every byte from here is
    /// passed on until the upstream closes, and no answer ends before that.
    private(set) var untilClose = false

    /// How many answers end in `bytes`. `methods` are those of the requests still awaiting an
    /// answer, oldest first (a HEAD's answer has no body).
    mutating func read(_ bytes: ArraySlice<UInt8>, methods: [String]) -> Int {
        var i = bytes.startIndex
        var ended = 0
        while i < bytes.endIndex, !untilClose {
            if !body.isDone {
                guard let n = body.consume(bytes[i...]) else { untilClose = true; break }
                i += n
                if body.isDone { ended += 1 }
                continue
            }
            let before = head.count
            head += bytes[i...]
            guard let end = EgressProxy.headEnd(head) else {
                if head.count > EgressProxy.maxHead { untilClose = true }
                break
            }
            i += end - before
            let parsed = HTTPHead(head[..<end])
            head.removeAll(keepingCapacity: true)
            guard let status = parsed.status, status != 101 else { untilClose = true; break }
            body = BodyFraming.response(parsed, status: status, method: ended < methods.count ? methods[ended] : "GET")
            // An interim answer (100 Continue): the final one follows.
            if body.isDone, status >= 200 { ended += 1 }
        }
        return ended
    }
}
