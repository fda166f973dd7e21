@testable import CCDeckBackends
import CCDeckCore
import Foundation
import Testing
import _CCDeckTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The egress proxy on its own, over real sockets: what it forwards, what it refuses, and that
/// nothing off the list is ever reached, whatever the client sends.
@Suite struct EgressProxyTests {
    let dir = TemporaryDirectory("ccdeck-egress")

    /// A proxy allowing `localhost` (and what else is given), on a loopback port.
    func proxy(_ hosts: [String] = ["localhost"], timeout: TimeInterval = 10) throws -> (EgressProxy, UInt16) {
        let p = try EgressProxy(policy: EgressPolicy(hosts: hosts), logPath: dir.path + "/egress.jsonl")
        p.headTimeout = timeout
        return (p, try p.listen(tcpPort: 0))
    }

    var log: [EgressDecision] {
        let text = (try? String(contentsOfFile: dir.path + "/egress.jsonl", encoding: .utf8)) ?? ""
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601WithMilliseconds
        return text.split(separator: "\n").compactMap { try? decoder.decode(EgressDecision.self, from: Data($0.utf8)) }
    }

    @Test func connectToAnAllowedHostTunnels() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy()
        defer { p.stop() }
        let c = try Client(port: port)
        c.send("CONNECT localhost:\(server.port) HTTP/1.1\r\nHost: localhost:\(server.port)\r\n\r\n")
        #expect(c.readHead().hasPrefix("HTTP/1.1 200"))
        c.send("GET /through HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(c.readAll().contains(server.body))
        #expect(server.requests.first?.hasPrefix("GET /through ") == true)
        #expect(log.map(\.allowed) == [true] && log.first?.method == "CONNECT" && log.first?.host == "localhost")
        #expect(p.record.allowedConnections == 1 && p.record.denied.isEmpty)
    }

    @Test func connectToAHostOffTheListIsRefusedAndLogged() throws {
        let (p, port) = try proxy()
        defer { p.stop() }
        let reply = try Client(port: port).exchange("CONNECT denied.invalid:443 HTTP/1.1\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 403"), "\(reply)")
        #expect(reply.contains("denied.invalid is not on this run's allowlist"))
        #expect(log.count == 1 && log[0].allowed == false && log[0].host == "denied.invalid" && log[0].port == 443)
        #expect(p.record.denied == [EgressRecord.Denied(host: "denied.invalid", port: 443, count: 1)])
    }

    @Test func plainHTTPIsForwardedToItsOwnHostOnlyWithItsHostHeaderRewritten() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy()
        defer { p.stop() }
        // The Host header names another host: the request still goes only where its URL says.
        let reply = try Client(port: port).exchange(
            "GET http://localhost:\(server.port)/plain?q=1 HTTP/1.1\r\nHost: denied.invalid\r\nProxy-Connection: keep-alive\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 200") && reply.contains(server.body), "\(reply)")
        let head = try #require(server.requests.first)
        #expect(head.hasPrefix("GET /plain?q=1 HTTP/1.1"))
        #expect(head.contains("Host: localhost:\(server.port)") && !head.contains("denied.invalid"))
        #expect(!head.lowercased().contains("connection"), "hop-by-hop headers are the proxy's own: \(head)")
    }

    /// A plain-http connection is kept as the client and upstream keep it: an agent's next request
    /// to its model goes on the same connection, as it would without the proxy (a new connection
    /// for each cost the agent a few ms every time). Each request is still decided and logged.
    @Test func plainHTTPKeepsTheConnectionForTheNextRequestToTheSameHost() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy()
        defer { p.stop() }
        let c = try Client(port: port)
        for i in 0..<3 {
            c.send("POST http://localhost:\(server.port)/keepalive/\(i) HTTP/1.1\r\nHost: x\r\nProxy-Connection: keep-alive\r\n"
                   + "Content-Length: 5\r\n\r\nbody\(i)")
            let answer = c.readAnswer()
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.hasSuffix(server.body), "\(answer)")
            #expect(answer.contains("Connection: keep-alive"), "the upstream's own answer, unchanged: \(answer)")
        }
        #expect(server.connections == 1 && server.requestBodies == ["body0", "body1", "body2"])
        #expect(server.requests.map { $0.components(separatedBy: "\r\n")[0] }
                == (0..<3).map { "POST /keepalive/\($0) HTTP/1.1" })
        #expect(log.count == 3 && log.allSatisfy { $0.allowed && $0.host == "localhost" } && p.record.allowedConnections == 3)
        // The client's close ends it; a client's own `Connection: close` is passed on.
        c.send("GET http://localhost:\(server.port)/keepalive/last HTTP/1.1\r\nConnection: close\r\n\r\n")
        #expect(c.readAll().hasSuffix(server.body))
        #expect(server.requests.last?.contains("\r\nConnection: close") == true)
    }

    /// On a kept connection, a request naming another host is decided afresh and goes to its own
    /// upstream; one off the list is refused there, and nothing of it reaches anyone.
    @Test func aKeptConnectionsRequestToAnotherHostIsDecidedAfresh() throws {
        let first = try TestHTTPServer(), second = try TestHTTPServer()
        let (p, port) = try proxy(["localhost", "127.0.0.1"])
        defer { p.stop() }
        let c = try Client(port: port)
        c.send("GET http://localhost:\(first.port)/keepalive HTTP/1.1\r\n\r\n")
        #expect(c.readAnswer().hasSuffix(first.body))
        c.send("GET http://127.0.0.1:\(second.port)/keepalive HTTP/1.1\r\n\r\n")
        #expect(c.readAnswer().hasSuffix(second.body))
        #expect(first.requests.count == 1 && second.requests.count == 1)
        // A body that looks like a request is a body: passed to the upstream, never decided.
        let smuggled = "GET http://denied.invalid/ HTTP/1.1\r\n\r\n"
        c.send("POST http://127.0.0.1:\(second.port)/keepalive HTTP/1.1\r\nContent-Length: \(smuggled.utf8.count)\r\n\r\n" + smuggled)
        #expect(c.readAnswer().hasSuffix(second.body))
        #expect(second.requestBodies.last == smuggled && !log.contains { $0.host == "denied.invalid" })
        c.send("GET http://denied.invalid/keepalive HTTP/1.1\r\n\r\n")
        let refused = c.readAll()
        #expect(refused.hasPrefix("HTTP/1.1 403") && refused.contains("denied.invalid is not on this run's allowlist"), "\(refused)")
        #expect(first.requests.count == 1 && second.requests.count == 2)
        #expect(log.map(\.host) == ["localhost", "127.0.0.1", "127.0.0.1", "denied.invalid"])
        #expect(log.map(\.allowed) == [true, true, true, false])
    }

    /// A tunnel asked for after plain requests on the same connection gets the connection.
    @Test func aConnectAfterPlainRequestsTunnels() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy()
        defer { p.stop() }
        let c = try Client(port: port)
        c.send("GET http://localhost:\(server.port)/keepalive HTTP/1.1\r\n\r\n")
        #expect(c.readAnswer().hasSuffix(server.body))
        c.send("CONNECT localhost:\(server.port) HTTP/1.1\r\n\r\n")
        #expect(c.readHead().hasPrefix("HTTP/1.1 200 Connection established"))
        c.send("GET /inside HTTP/1.1\r\n\r\n")
        #expect(c.readAll().hasSuffix(server.body))
        #expect(server.connections == 2 && server.requests.last?.hasPrefix("GET /inside ") == true)
        #expect(log.map(\.method) == ["GET", "CONNECT"])
    }

    /// Pipelined requests to another host wait for the answers before them: the order holds.
    @Test func aRequestForAnotherHostWaitsForTheAnswersBeforeIt() throws {
        let first = try TestHTTPServer(), second = try TestHTTPServer()
        let (p, port) = try proxy(["localhost", "127.0.0.1"])
        defer { p.stop() }
        let c = try Client(port: port)
        c.send("GET http://localhost:\(first.port)/keepalive/a HTTP/1.1\r\n\r\n"
               + "HEAD http://localhost:\(first.port)/keepalive/b HTTP/1.1\r\n\r\n"
               + "GET http://127.0.0.1:\(second.port)/keepalive/c HTTP/1.1\r\n\r\n")
        #expect(c.readAnswer().hasSuffix(first.body))
        let head = c.readHead()
        #expect(head.hasPrefix("HTTP/1.1 200") && head.contains("Content-Length: \(first.body.utf8.count)"), "a HEAD's answer has no body")
        #expect(c.readAnswer().hasSuffix(second.body))
        #expect(first.requests.count == 2 && second.requests.count == 1)
    }

    /// A chunked request body is passed on whole, cut anywhere by the client's writes.
    @Test func aChunkedBodyIsPassedOnAndTheNextRequestFollows() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy()
        defer { p.stop() }
        let c = try Client(port: port)
        let request = "POST http://localhost:\(server.port)/keepalive HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
        for byte in request.utf8 {
            c.send(String(decoding: [byte], as: UTF8.self))
        }
        #expect(c.readAnswer().hasSuffix(server.body))
        c.send("GET http://localhost:\(server.port)/keepalive/2 HTTP/1.1\r\n\r\n")
        #expect(c.readAnswer().hasSuffix(server.body))
        #expect(server.requestBodies == ["hello, world", ""] && server.connections == 1)
    }

    /// A request whose body a server might frame otherwise than the proxy is refused, not guessed.
    @Test func anAmbiguousBodyLengthIsRefused() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy()
        defer { p.stop() }
        for fields in ["Content-Length: 3\r\nTransfer-Encoding: chunked", "Content-Length: 3\r\nContent-Length: 4",
                       "Transfer-Encoding: gzip, chunked", "Content-Length: -1", "Content-Length: 0x10",
                       "Transfer-Encoding : chunked", "X-A: 1\r\n Transfer-Encoding: chunked"] {
            let reply = try Client(port: port).exchange("POST http://localhost:\(server.port)/ HTTP/1.1\r\n\(fields)\r\n\r\nabc")
            #expect(reply.hasPrefix("HTTP/1.1 400"), "\(fields): \(reply)")
        }
        #expect(server.requests.isEmpty)
    }

    /// An answer with no length ends with the upstream's close, and so does the client's connection.
    @Test func anAnswerWithNoLengthEndsWithTheClose() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy()
        defer { p.stop() }
        let reply = try Client(port: port).exchange("GET http://localhost:\(server.port)/nolength HTTP/1.1\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 200") && reply.hasSuffix(server.body), "\(reply)")
    }

    /// A kept connection may wait for its next request as long as the client likes; only a head
    /// begun and not finished is cut off.
    @Test func anIdleKeptConnectionIsNotCutOff() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy(timeout: 0.3)
        defer { p.stop() }
        let c = try Client(port: port)
        c.send("GET http://localhost:\(server.port)/keepalive HTTP/1.1\r\n\r\n")
        #expect(c.readAnswer().hasSuffix(server.body))
        usleep(800_000)
        c.send("GET http://localhost:\(server.port)/keepalive/2 HTTP/1.1\r\n\r\n")
        #expect(c.readAnswer().hasSuffix(server.body))
        c.send("GET http://localhost:\(server.port)/keep")
        #expect(c.readAll().hasPrefix("HTTP/1.1 408"))
        #expect(server.requests.count == 2)
    }

    @Test func plainHTTPToAHostOffTheListNeverLeaves() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy(["example.org"])
        defer { p.stop() }
        let reply = try Client(port: port).exchange("POST http://localhost:\(server.port)/ HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
        #expect(reply.hasPrefix("HTTP/1.1 403"))
        #expect(server.requests.isEmpty)
    }

    /// An allowed name is no pass for its address, nor another spelling of it.
    @Test func anIPLiteralIsAllowedOnlyWhenListedItself() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy(["localhost", "*.localhost"])
        defer { p.stop() }
        for target in ["127.0.0.1:\(server.port)", "[::1]:\(server.port)", "2130706433:\(server.port)", "0x7f.1:\(server.port)",
                       "127.1:\(server.port)"] {
            let reply = try Client(port: port).exchange("CONNECT \(target) HTTP/1.1\r\n\r\n")
            #expect(reply.hasPrefix("HTTP/1.1 403") || reply.hasPrefix("HTTP/1.1 400"), "\(target): \(reply)")
        }
        #expect(server.requests.isEmpty)
        let (listed, listedPort) = try proxy(["127.0.0.1"])
        defer { listed.stop() }
        let reply = try Client(port: listedPort).exchange("GET http://127.0.0.1:\(server.port)/ HTTP/1.1\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 200"))
    }

    /// The proxy passes a redirect back; the client's next request is decided afresh.
    @Test func aRedirectToAnotherHostIsNotFollowed() throws {
        let server = try TestHTTPServer(redirectTo: "http://denied.invalid/next")
        let (p, port) = try proxy()
        defer { p.stop() }
        let reply = try Client(port: port).exchange("GET http://localhost:\(server.port)/redirect HTTP/1.1\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 302") && reply.contains("Location: http://denied.invalid/next"))
        let next = try Client(port: port).exchange("GET http://denied.invalid/next HTTP/1.1\r\n\r\n")
        #expect(next.hasPrefix("HTTP/1.1 403"))
        #expect(server.requests.count == 1)
        #expect(log.map(\.host) == ["localhost", "denied.invalid"] && log.map(\.allowed) == [true, false])
    }

    @Test func garbageGets400AndTheProxyGoesOn() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy()
        defer { p.stop() }
        for junk in ["\u{16}\u{03}\u{01}\u{00}\u{a5}binary hello\r\n\r\n", "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
                     "CONNECT localhost HTTP/1.1\r\n\r\n", "CONNECT localhost:99999 HTTP/1.1\r\n\r\n",
                     "GET http://user@localhost:\(server.port)/ HTTP/1.1\r\n\r\n", "get http://localhost/ HTTP/1.1\r\n\r\n",
                     "GET ftp://localhost/ HTTP/1.1\r\n\r\n", "\r\n\r\n"] {
            let reply = try Client(port: port).exchange(junk)
            #expect(reply.hasPrefix("HTTP/1.1 400"), "\(junk.debugDescription): \(reply)")
        }
        let huge = try Client(port: port).exchange("GET http://localhost/ HTTP/1.1\r\nX: " + String(repeating: "a", count: 40_000) + "\r\n\r\n")
        #expect(huge.hasPrefix("HTTP/1.1 431"))
        #expect(server.requests.isEmpty)
        #expect(try Client(port: port).exchange("GET http://localhost:\(server.port)/ HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 200"))
    }

    /// A client that never finishes its request head holds no one else up, and is cut off.
    @Test func aSlowClientTimesOutWhileOthersAreServed() throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy(timeout: 1)
        defer { p.stop() }
        let slow = try Client(port: port)
        slow.send("CONNECT localh")
        #expect(try Client(port: port).exchange("GET http://localhost:\(server.port)/ HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        #expect(slow.readAll(timeout: 10).hasPrefix("HTTP/1.1 408"))
    }

    @Test func manyConnectionsAtOnce() async throws {
        let server = try TestHTTPServer()
        let (p, port) = try proxy()
        defer { p.stop() }
        let replies = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<100 {
                group.addTask {
                    try Client(port: port).exchange("GET http://localhost:\(server.port)/n\(i) HTTP/1.1\r\n\r\n")
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(replies.count == 100 && replies.allSatisfy { $0.hasPrefix("HTTP/1.1 200") && $0.contains(server.body) })
        #expect(Set(server.requests.compactMap { $0.split(separator: " ").dropFirst().first }).count == 100)
        #expect(p.record.allowedConnections == 100 && log.count == 100)
    }

    /// A relay passes each write on as it comes: with Nagle, a request body written after its
    /// head on a kept connection waits for the upstream's delayed ACK (40 ms a request).
    @Test func upstreamConnectionsSendEachWriteAtOnce() throws {
        let server = try TestHTTPServer()
        guard case .success(let fd) = EgressProxy.connect(host: "localhost", port: Int(server.port), timeout: 5) else {
            Issue.record("cannot connect to the test server")
            return
        }
        defer { close(fd) }
        var on: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, &size) == 0 && on != 0)
    }

    @Test func anAllowedHostThatDoesNotAnswerIs502NotADenial() throws {
        let (p, port) = try proxy(["localhost"])
        defer { p.stop() }
        let reply = try Client(port: port).exchange("CONNECT localhost:1 HTTP/1.1\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 502"), "\(reply)")
        #expect(p.record.denied.isEmpty && log.first?.reason?.contains("cannot connect") == true)
    }

    @Test func aUnixSocketServesTheSameAndIsOpenToTheSandboxsUser() throws {
        let server = try TestHTTPServer()
        let p = try EgressProxy(policy: EgressPolicy(hosts: ["localhost"]), logPath: nil)
        defer { p.stop() }
        let path = dir.path + "/egress.sock"
        try p.listen(unixPath: path)
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o666)
        let reply = try Client(unixPath: path).exchange("GET http://localhost:\(server.port)/ HTTP/1.1\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 200"))
    }
}

/// A raw client: bytes in, bytes out, every wait bounded.
final class Client: @unchecked Sendable {
    let fd: Int32

    init(port: UInt16) throws {
        guard let fd = LoopbackSocket.connect(port: port) else { throw POSIXError(.ECONNREFUSED) }
        self.fd = fd
    }

    init(unixPath: String) throws {
        guard let fd = LoopbackSocket.connect(unixPath: unixPath) else { throw POSIXError(.ECONNREFUSED) }
        self.fd = fd
    }

    deinit { close(fd) }

    func send(_ text: String) { _ = EgressProxy.sendAll(fd, Array(text.utf8)) }

    /// Until the response head ends.
    func readHead(timeout: TimeInterval = 10) -> String {
        var data = [UInt8]()
        var byte: UInt8 = 0
        while !String(decoding: data, as: UTF8.self).hasSuffix("\r\n\r\n"), EgressProxy.waitReadable(fd, seconds: timeout),
              recv(fd, &byte, 1, 0) == 1 {
            data.append(byte)
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Until the other side closes.
    func readAll(timeout: TimeInterval = 10) -> String {
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while EgressProxy.waitReadable(fd, seconds: timeout) {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            data += buf[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// One answer: its head, then as many bytes as its Content-Length says.
    func readAnswer(timeout: TimeInterval = 10) -> String {
        let head = readHead(timeout: timeout)
        let length = head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        var body = [UInt8]()
        var byte: UInt8 = 0
        while body.count < length, EgressProxy.waitReadable(fd, seconds: timeout), recv(fd, &byte, 1, 0) == 1 { body.append(byte) }
        return head + String(decoding: body, as: UTF8.self)
    }

    func exchange(_ text: String) -> String {
        send(text)
        return readAll()
    }
}
