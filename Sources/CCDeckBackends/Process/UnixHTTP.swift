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
    static func parse(_ data: Data, complete: Bool) -> Response? {
        guard let end = data.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: data[data.startIndex..<end.lowerBound], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else { return nil }
        var length: Int?
        var chunked = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "content-length" { length = Int(value) }
            if name == "transfer-encoding" && value.lowercased().contains("chunked") { chunked = true }
        }
        let rest = data[end.upperBound...]
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
        var body = Data()
        var i = data.startIndex
        let crlf = Data("\r\n".utf8)
        while true {
            guard let lineEnd = data.range(of: crlf, in: i..<data.endIndex) else { return nil }
            let sizeText = String(decoding: data[i..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
            let start = lineEnd.upperBound
            if size == 0 { return body }
            guard data.distance(from: start, to: data.endIndex) >= size + 2 else { return nil }
            let stop = data.index(start, offsetBy: size)
            body.append(data[start..<stop])
            i = data.index(stop, offsetBy: 2)
        }
    }

    /// A name (image, container) as one or more path segments of a request.
    public static func escape(_ name: String) -> String {
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/@")
        return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name
    }
}
