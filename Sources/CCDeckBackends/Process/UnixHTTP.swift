import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 request over a unix socket, answer read to the end: how ccdeck asks an engine
/// daemon (dockerd, incusd) a question without starting its CLI. A CLI call costs 12–30 ms,
/// almost all of it the client starting; the same question over the socket costs under 1 ms.
public struct UnixHTTP: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var body: Data
        public var text: String { String(decoding: body, as: UTF8.self) }
        public var succeeded: Bool { (200..<300).contains(status) }
    }

    public enum Failure: Error, Equatable {
        /// Nothing listens there (daemon down, socket gone).
        case cannotConnect(String)
        case timedOut
        /// The daemon closed the connection or answered something that is not HTTP.
        case badAnswer
    }

    public let socketPath: String
    public var timeout: TimeInterval

    public init(socketPath: String, timeout: TimeInterval) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    public func get(_ path: String) throws -> Response { try request("GET", path) }

    /// `path` is sent as given: the caller escapes what goes into it (`escape`).
    public func request(_ method: String, _ path: String, body: Data? = nil) throws -> Response {
        try PhaseTrace.shared.engineCall { try exchange(method, path, body: body) }
    }

    private func exchange(_ method: String, _ path: String, body: Data?) throws -> Response {
        guard let fd = LoopbackSocket.connect(unixPath: socketPath) else {
            throw Failure.cannotConnect("cannot connect to \(socketPath): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let deadline = Date().addingTimeInterval(timeout)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: ccdeck\r\nConnection: close\r\n"
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        var out = Data(head.utf8)
        if let body { out.append(body) }
        try out.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0 { if errno == EINTR { continue }; throw Failure.badAnswer }
                sent += n
            }
        }
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw Failure.timedOut }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(min(left * 1000, Double(Int32.max)).rounded(.up)))
            if ready < 0 { if errno == EINTR { continue }; throw Failure.badAnswer }
            if ready == 0 { throw Failure.timedOut }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 { if errno == EINTR { continue }; throw Failure.badAnswer }
            if n == 0 { break }
            answer.append(contentsOf: buffer[0..<n])
            if let done = Self.parse(answer, complete: false) { return done }
        }
        guard let response = Self.parse(answer, complete: true) else { throw Failure.badAnswer }
        return response
    }

    /// The response in `data`, or nil when more is to come. `complete`: the peer closed.
    /// Read as bytes: Foundation's string splitting and trimming cost ~0.5 ms on first use, beside
    /// a run whose sandbox is starting.
    static func parse(_ data: Data, complete: Bool) -> Response? {
        let bytes = [UInt8](data)
        guard let end = find([0x0D, 0x0A, 0x0D, 0x0A], in: bytes, from: 0) else { return nil }
        // The head's lines end with CRLF: split at LF, the CR dropped.
        let lines = bytes[..<end].split(separator: 0x0A, omittingEmptySubsequences: false).map { $0.last == 0x0D ? $0.dropLast() : $0 }
        let statusParts = lines.first?.split(separator: 0x20) ?? []
        guard statusParts.count >= 2, statusParts[0].starts(with: Array("HTTP/1.".utf8)),
              let status = Int(String(decoding: statusParts[1], as: UTF8.self)) else { return nil }
        var length: Int?
        var chunked = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = lowercasedASCII(line[..<colon])
            let value = lowercasedASCII(trimmed(line[(colon + 1)...]))
            if name == "content-length" { length = Int(value) }
            if name == "transfer-encoding" && value.contains("chunked") { chunked = true }
        }
        let rest = bytes[(end + 4)...]
        if status == 204 || status == 304 || (100..<200).contains(status) { return Response(status: status, body: Data()) }
        if chunked {
            guard let body = dechunk(Data(rest)) else { return complete ? Response(status: status, body: Data(rest)) : nil }
            return Response(status: status, body: body)
        }
        if let length {
            if rest.count >= length { return Response(status: status, body: Data(rest.prefix(length))) }
            return nil
        }
        return complete ? Response(status: status, body: Data(rest)) : nil
    }

    /// A whole chunked body, or nil while its last chunk has not arrived.
    static func dechunk(_ data: Data) -> Data? {
        let bytes = [UInt8](data)
        var body = Data()
        var i = 0
        while true {
            guard let lineEnd = find([0x0D, 0x0A], in: bytes, from: i) else { return nil }
            let sizeField = bytes[i..<lineEnd].split(separator: UInt8(ascii: ";"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
            guard let size = Int(String(decoding: trimmed(sizeField), as: UTF8.self), radix: 16), size >= 0 else { return nil }
            let start = lineEnd + 2
            if size == 0 { return body }
            guard bytes.count - start >= size + 2 else { return nil }
            body.append(contentsOf: bytes[start..<(start + size)])
            i = start + size + 2
        }
    }

    /// Where `needle` first occurs in `bytes` at or after `from`.
    private static func find(_ needle: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
        guard bytes.count >= needle.count, from <= bytes.count - needle.count else { return nil }
        var i = from
        while i <= bytes.count - needle.count {
            if bytes[i] == needle[0] && bytes[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = bytes
        while let first = s.first, first == 0x20 || first == 0x09 { s = s.dropFirst() }
        while let last = s.last, last == 0x20 || last == 0x09 { s = s.dropLast() }
        return s
    }

    private static func lowercasedASCII(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    /// A name (image, container) as one or more path segments of a request.
    public static func escape(_ name: String) -> String {
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/@")
        return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name
    }
}
