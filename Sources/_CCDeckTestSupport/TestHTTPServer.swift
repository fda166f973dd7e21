import CCDeckBackends
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP/1.1 server for the egress tests: the host an agent is (or is not) allowed to
/// reach. `/redirect` answers 302 to `redirectTo`; a path with `keepalive` in it keeps the
/// connection for the next request (unless the request says `Connection: close`); `/nolength` answers with no length (its end is the close);
/// a HEAD is answered with a length and no body; anything else 200 with `body` and the close.
/// It keeps every request head and body it received and counts its connections, so a test can
/// say it was reached, how, or that it never was.
public final class TestHTTPServer: @unchecked Sendable {
    public let port: UInt16
    public let body = "hello from the test server\n"
    public let redirectTo: String
    private let fd: Int32
    private let lock = NSLock()
    private var heads: [String] = []
    private var bodies: [String] = []
    private var accepted = 0

    /// - Parameter any: listen on every address (a sandbox with its own network must not reach it).
    public init(any: Bool = false, redirectTo: String = "http://denied.invalid/") throws {
        self.redirectTo = redirectTo
        (fd, port) = try LoopbackSocket.listen(any: any, backlog: 256)
        let listener = fd
        Thread { [self] in
            while true {
                let c = accept(listener, nil, nil)
                if c < 0 { if errno == EINTR { continue }; return }
                lock.withLock { accepted += 1 }
                Thread { [self] in serve(c) }.start()
            }
        }.start()
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// The request heads received so far.
    public var requests: [String] { lock.withLock { heads } }
    /// The request bodies received so far (chunked ones decoded), in the same order.
    public var requestBodies: [String] { lock.withLock { bodies } }
    /// The connections accepted so far.
    public var connections: Int { lock.withLock { accepted } }

    private func serve(_ c: Int32) {
        defer { close(c) }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        func more() -> Bool {
            let n = recv(c, &buf, buf.count, 0)
            if n > 0 { data += buf[0..<n] }
            return n > 0
        }
        func take(_ n: Int) -> [UInt8]? {
            while data.count < n { guard more() else { return nil } }
            defer { data.removeFirst(n) }
            return Array(data[..<n])
        }
        func line() -> String? {
            while !data.contains(0x0A) { guard more() else { return nil } }
            let end = data.firstIndex(of: 0x0A)!
            defer { data.removeFirst(end + 1) }
            return String(decoding: data[..<end], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        while true {
            var headEnd: Range<Int>?
            while true {
                headEnd = data.firstRange(of: [13, 10, 13, 10])
                if headEnd != nil { break }
                guard more() else { return }
            }
            let head = String(decoding: data[..<headEnd!.lowerBound], as: UTF8.self)
            data.removeFirst(headEnd!.upperBound)
            let fields = head.lowercased().components(separatedBy: "\r\n")
            var received = [UInt8]()
            if fields.contains(where: { $0.hasPrefix("transfer-encoding:") && $0.contains("chunked") }) {
                while let size = line().flatMap({ Int($0.split(separator: ";")[0], radix: 16) }), size > 0 {
                    guard let chunk = take(size + 2) else { return }
                    received += chunk.dropLast(2)
                }
                while let trailer = line(), !trailer.isEmpty {}
            } else if let length = fields.first(where: { $0.hasPrefix("content-length:") })
                        .flatMap({ Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }) {
                guard let got = take(length) else { return }
                received = got
            }
            lock.withLock {
                heads.append(head)
                bodies.append(String(decoding: received, as: UTF8.self))
            }
            let parts = head.split(separator: " ")
            let path = parts.dropFirst().first.map(String.init) ?? "/"
            let keep = path.contains("keepalive") && !head.lowercased().contains("\r\nconnection: close")
            let response: String
            if parts.first == "HEAD" {
                response = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: keep-alive\r\n\r\n"
            } else if path.hasSuffix("/redirect") {
                response = "HTTP/1.1 302 Found\r\nLocation: \(redirectTo)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            } else if path.hasSuffix("/nolength") {
                response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n\(body)"
            } else {
                response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
                    + (keep ? "Connection: keep-alive\r\nKeep-Alive: timeout=5" : "Connection: close") + "\r\n\r\n\(body)"
            }
            _ = response.withCString { send(c, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            guard keep || parts.first == "HEAD" else { return }
        }
    }
}

public enum HostAddress {
    /// The host's first IPv4 address that is not loopback (what a sandbox must not reach directly).
    public static func firstNonLoopbackIPv4() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var cursor = list
        while let ifa = cursor {
            cursor = ifa.pointee.ifa_next
            guard let addr = ifa.pointee.ifa_addr, addr.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                var a = sin.pointee.sin_addr
                _ = inet_ntop(AF_INET, &a, &text, socklen_t(INET_ADDRSTRLEN))
            }
            let s = String(cString: text)
            if !s.hasPrefix("127.") { return s }
        }
        return nil
    }
}
