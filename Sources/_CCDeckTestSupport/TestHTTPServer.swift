import CCDeckBackends
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP/1.1 server for the egress tests: the host an agent is (or is not) allowed to
/// reach. `/redirect` answers 302 to `redirectTo`; anything else 200 with `body`. It keeps every
/// request head it received, so a test can say it was reached, or never was.
public final class TestHTTPServer: @unchecked Sendable {
    public let port: UInt16
    public let body = "hello from the test server\n"
    public let redirectTo: String
    private let fd: Int32
    private let lock = NSLock()
    private var heads: [String] = []

    /// - Parameter any: listen on every address (a sandbox with its own network must not reach it).
    public init(any: Bool = false, redirectTo: String = "http://denied.invalid/") throws {
        self.redirectTo = redirectTo
        (fd, port) = try LoopbackSocket.listen(any: any, backlog: 256)
        let listener = fd
        Thread { [self] in
            while true {
                let c = accept(listener, nil, nil)
                if c < 0 { if errno == EINTR { continue }; return }
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

    private func serve(_ c: Int32) {
        defer { close(c) }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: data, as: UTF8.self).contains("\r\n\r\n") {
            let n = recv(c, &buf, buf.count, 0)
            if n <= 0 { return }
            data += buf[0..<n]
        }
        let head = String(decoding: data, as: UTF8.self).components(separatedBy: "\r\n\r\n")[0]
        lock.withLock { heads.append(head) }
        let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        // `/keepalive` answers as a server that would keep the connection (and then closes it).
        let connection = path.hasSuffix("/keepalive") ? "Connection: keep-alive\r\nKeep-Alive: timeout=5" : "Connection: close"
        let response = path.hasSuffix("/redirect")
            ? "HTTP/1.1 302 Found\r\nLocation: \(redirectTo)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            : "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\(connection)\r\n\r\n\(body)"
        _ = response.withCString { send(c, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
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
