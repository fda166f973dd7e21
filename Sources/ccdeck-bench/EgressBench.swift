import CCDeckBackends
import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// `egress` measures what the allowlist adds to one request: a fresh connection, one small
// GET and its answer, to an upstream on loopback, taken four ways in rotation (so drift hits
// them alike): direct; through the proxy's TCP port (plain http); through ccdeck-netbridge
// and the proxy's unix socket, as an agent in a sandbox goes (plain http, and CONNECT then the
// GET inside the tunnel). Prints the median and p99 of each and what each adds to direct.

/// A loopback HTTP server: 200 and a short body, one request a connection.
final class BenchUpstream: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32

    init() throws {
        let (fd, port) = try LoopbackSocket.listen(backlog: 512)
        self.fd = fd
        self.port = port
        Thread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { if errno == EINTR { continue }; return }
                Thread {
                    var buf = [UInt8](repeating: 0, count: 4096)
                    var seen = [UInt8]()
                    while !seen.suffix(4).elementsEqual([13, 10, 13, 10]) {
                        let n = recv(c, &buf, buf.count, 0)
                        if n <= 0 { close(c); return }
                        seen += buf[0..<n]
                    }
                    let reply = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
                    _ = reply.withCString { send(c, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                    close(c)
                }.start()
            }
        }.start()
    }
}

func tcpConnect(_ port: UInt16) -> Int32 {
    guard let fd = LoopbackSocket.connect(port: port) else {
        fail("cannot connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
    }
    return fd
}

func sendText(_ fd: Int32, _ s: String) { _ = s.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) } }

/// Reads until `done` says the bytes so far are enough, or the other side closes.
func readUntil(_ fd: Int32, _ done: ([UInt8]) -> Bool) -> [UInt8] {
    var data = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 4096)
    while !done(data) {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        data += buf[0..<n]
    }
    return data
}

func egressBench(requests: Int) throws {
    let upstream = try BenchUpstream()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccdeck-bench-egress-\(getpid())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let proxy = try EgressProxy(policy: EgressPolicy(hosts: ["127.0.0.1"]), logPath: dir + "/egress.jsonl")
    let proxyPort = try proxy.listen(tcpPort: 0)
    try proxy.listen(unixPath: dir + "/proxy.sock")
    guard let bridge = EgressEndpoint.findBridge(environment: ProcessInfo.processInfo.environment) else {
        fail("ccdeck-netbridge is not beside ccdeck-bench (swift build -c release --product ccdeck-netbridge)")
    }
    // The bridge on the host's loopback (a free port), in front of a child that just waits.
    let probe = tcpListenerPort()
    let child = try ChildProcess.spawn(Command(bridge, [String(probe), dir + "/proxy.sock", "--", "sleep", "3600"], environment: [:]))
    defer { child.signal(SIGTERM) }
    for _ in 0..<100 {
        if let fd = LoopbackSocket.connect(port: probe) { close(fd); break }
        usleep(20_000)
    }

    let target = "127.0.0.1:\(upstream.port)"
    let closes: ([UInt8]) -> Bool = { _ in false }
    let paths: [(String, () -> Bool)] = [
        ("direct", {
            let fd = tcpConnect(upstream.port); defer { close(fd) }
            sendText(fd, "GET /x HTTP/1.1\r\nHost: \(target)\r\n\r\n")
            return String(decoding: readUntil(fd, closes), as: UTF8.self).hasPrefix("HTTP/1.1 200")
        }),
        ("proxy tcp, http", {
            let fd = tcpConnect(proxyPort); defer { close(fd) }
            sendText(fd, "GET http://\(target)/x HTTP/1.1\r\n\r\n")
            return String(decoding: readUntil(fd, closes), as: UTF8.self).hasPrefix("HTTP/1.1 200")
        }),
        ("bridge+socket, http", {
            let fd = tcpConnect(probe); defer { close(fd) }
            sendText(fd, "GET http://\(target)/x HTTP/1.1\r\n\r\n")
            return String(decoding: readUntil(fd, closes), as: UTF8.self).hasPrefix("HTTP/1.1 200")
        }),
        ("bridge+socket, CONNECT", {
            let fd = tcpConnect(probe); defer { close(fd) }
            sendText(fd, "CONNECT \(target) HTTP/1.1\r\n\r\n")
            let head = readUntil(fd) { $0.suffix(4).elementsEqual([13, 10, 13, 10]) }
            guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 200") else { return false }
            sendText(fd, "GET /x HTTP/1.1\r\nHost: \(target)\r\n\r\n")
            return String(decoding: readUntil(fd, closes), as: UTF8.self).hasPrefix("HTTP/1.1 200")
        }),
    ]
    var times = Array(repeating: [Double](), count: paths.count)
    for _ in 0..<20 { for p in paths { _ = p.1() } }  // warm up
    for _ in 0..<requests {
        for (i, p) in paths.enumerated() {
            let t0 = monotonic()
            guard p.1() else { fail("\(p.0): no 200") }
            times[i].append(monotonic() - t0)
        }
    }
    func pct(_ xs: [Double], _ q: Double) -> Double { let s = xs.sorted(); return s[min(s.count - 1, Int(Double(s.count - 1) * q))] }
    func us(_ x: Double) -> String { String(format: "%7.1f µs", x * 1e6) }
    let base = pct(times[0], 0.5)
    print("requests:  \(requests) per path, a fresh connection each, interleaved")
    for (i, p) in paths.enumerated() {
        let median = pct(times[i], 0.5)
        print("\(p.0.padding(toLength: 24, withPad: " ", startingAt: 0)) median \(us(median))  p99 \(us(pct(times[i], 0.99)))"
              + (i == 0 ? "" : "  adds \(us(median - base))"))
    }
    print("log lines: \(proxy.record.allowedConnections) allowed connections logged to egress.jsonl")
    proxy.stop()
}

/// A free loopback port (bound, read, released).
func tcpListenerPort() -> UInt16 {
    guard let (fd, port) = try? LoopbackSocket.listen() else { fail("no free loopback port") }
    close(fd)
    return port
}
