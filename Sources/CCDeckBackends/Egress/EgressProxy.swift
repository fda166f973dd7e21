import CCDeckCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// ccdeck's egress filter: an HTTP proxy that a sandbox with no route out reaches through a
/// unix socket (or, for tests and benchmarks, a loopback port). It serves `CONNECT host:port`
/// (https and any other tunnel) and plain-http requests in absolute form, decides each by the
/// host name the client asked for, and never forwards anywhere else: it follows no redirect
/// (a redirect is the client's next request, decided afresh), takes an IP literal only when
/// the list names it, and sends a plain request to the host of its own request line alone.
///
/// Every decision is one JSON line in the log (`egress.jsonl` in the run's folder) and one call
/// of `onDecision`. One thread per connection: a run opens a handful at once, not thousands, and
/// a blocked client holds no one else up. A client that sends garbage gets 400, one too slow
/// to send its request head gets 408, and the proxy goes on serving the others.
public final class EgressProxy: @unchecked Sendable {
    public let policy: EgressPolicy
    /// How long a client has to send its request head, and an upstream to accept.
    public var headTimeout: TimeInterval = 10
    public var connectTimeout: TimeInterval = 10
    static let maxHead = 32 << 10

    private let lock = NSLock()
    private var listeners: [Int32] = []
    private var open: Set<Int32> = []
    private var stopped = false
    private var log: FileHandle?
    private var summary: EgressRecord
    private let onDecision: (@Sendable (EgressDecision) -> Void)?
    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601WithMilliseconds
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// - Parameter logPath: the JSONL log, appended to (created 0600); nil for none.
    /// - Parameter startingFrom: what an earlier proxy of the same run counted (an adopted run).
    public init(policy: EgressPolicy, logPath: String?, startingFrom: EgressRecord? = nil,
                onDecision: (@Sendable (EgressDecision) -> Void)? = nil) throws {
        self.policy = policy
        self.onDecision = onDecision
        summary = startingFrom ?? EgressRecord(enforcement: policy.allowAll ? .allowAll : .allowlist, hosts: policy.hosts)
        if let logPath {
            let fd = Glibc.open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw EgressProxyError("cannot write the egress log \(logPath): \(String(cString: strerror(errno)))") }
            log = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        }
    }

    deinit { stop() }

    /// What the proxy did so far, for the run's record.
    public var record: EgressRecord { lock.withLock { summary } }

    /// Listens on a unix socket at `path` (replacing a stale one), open to every user: the
    /// agent's uid inside a container is not ccdeck's. Whoever can reach the path is the sandbox
    /// it is bound into; the folder around it is ccdeck's own.
    public func listen(unixPath path: String) throws {
        guard var addr = LoopbackSocket.unixAddress(path) else {
            throw EgressProxyError("the egress socket's path is too long for a unix socket: \(InertText.line(path))")
        }
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw EgressProxyError("cannot make the egress socket: \(String(cString: strerror(errno)))") }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o666) == 0, Glibc.listen(fd, 128) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw EgressProxyError("cannot listen on \(InertText.line(path)): \(why)")
        }
        serve(fd)
    }

    /// Listens on 127.0.0.1 (`port` 0: any free port); returns the port.
    @discardableResult
    public func listen(tcpPort port: UInt16 = 0) throws -> UInt16 {
        let (fd, bound) = try LoopbackSocket.listen(port: port)
        serve(fd)
        return bound
    }

    /// Stops listening and cuts every open connection.
    public func stop() {
        let (fds, conns): ([Int32], Set<Int32>) = lock.withLock {
            stopped = true
            defer { listeners = []; }
            return (listeners, open)
        }
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
        for fd in conns { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    // MARK: serving

    private func serve(_ listener: Int32) {
        lock.withLock { listeners.append(listener) }
        let thread = Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE {
                        if errno == EMFILE || errno == ENFILE { usleep(50_000) }
                        if lock.withLock({ !stopped }) { continue }
                    }
                    return
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                guard track(client) else { close(client); return }
                let worker = Thread { [self] in
                    handle(client)
                    untrack(client)
                    close(client)
                }
                worker.stackSize = 256 << 10
                worker.start()
            }
        }
        thread.stackSize = 256 << 10
        thread.start()
    }

    private func track(_ fd: Int32) -> Bool {
        lock.withLock {
            guard !stopped else { return false }
            open.insert(fd)
            return true
        }
    }

    private func untrack(_ fd: Int32) { _ = lock.withLock { open.remove(fd) } }

    /// One client connection, from its request head to the end of the tunnel.
    private func handle(_ client: Int32) {
        let deadline = Date().addingTimeInterval(headTimeout)
        var buffer = [UInt8]()
        var headEnd: Int?
        while headEnd == nil {
            guard buffer.count < Self.maxHead else {
                refuse(client, 431, "request head too large", method: "?", host: "", port: 0)
                return
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0, Self.waitReadable(client, seconds: remaining) else {
                if !buffer.isEmpty { refuse(client, 408, "request head not sent within \(Int(headTimeout))s", method: "?", host: "", port: 0) }
                return
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = recv(client, &chunk, chunk.count, 0)
            if n <= 0 { return }
            buffer += chunk[0..<n]
            headEnd = Self.headEnd(buffer)
        }
        let head = Array(buffer[..<headEnd!])
        let rest = Array(buffer[headEnd!...])
        guard let request = ProxyRequest(head: head) else {
            refuse(client, 400, "not an HTTP proxy request", method: "?", host: "", port: 0)
            return
        }
        if request.method == "CONNECT" {
            tunnel(client, request, rest: rest)
        } else {
            relayPlain(client, first: request, rest: rest)
        }
    }

    /// `CONNECT host:port`: decided, then the bytes both ways until either side ends.
    private func tunnel(_ client: Int32, _ request: ProxyRequest, rest: [UInt8]) {
        guard policy.allows(request.host) else {
            refuse(client, 403, "not on this run's egress allowlist", method: request.method, host: request.host, port: request.port)
            return
        }
        let upstream: Int32
        switch Self.connect(host: request.host, port: request.port, timeout: connectTimeout) {
        case .failure(let why):
            refuse(client, 502, why, method: request.method, host: request.host, port: request.port, allowedByList: true)
            return
        case .success(let fd):
            upstream = fd
        }
        defer { close(upstream) }
        guard track(upstream) else { return }
        defer { untrack(upstream) }
        decide(request.method, request.host, request.port, allowed: true, reason: nil)
        guard Self.sendAll(client, Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)) else { return }
        if !rest.isEmpty, !Self.sendAll(upstream, rest) { return }
        Self.splice(client, upstream)
    }

    /// What comes next from a plain-http client: a request, or the refusal its head earned.
    private enum NextRequest {
        case request(ProxyRequest)
        case refusal(Int, String)
    }

    /// Plain http on one client connection, kept open for as long as the client and the upstream
    /// keep it (as a direct connection would be: a new connection per request costs an agent a
    /// few ms each time). Each request's head is read whole, decided by its own URL's host and
    /// forwarded in origin form; its body is passed on as its framing says, and every answer is
    /// passed back unchanged. The connection stays with one upstream while requests name its
    /// host and port; a request naming another waits until the answers before it are through,
    /// then goes to its own upstream, decided afresh. No byte of a request goes anywhere before
    /// its head is decided, and only to the upstream of that head's host.
    private func relayPlain(_ client: Int32, first: ProxyRequest, rest: [UInt8]) {
        var next: NextRequest? = .request(first)
        var input = rest                    // from the client, not yet passed on
        var body = BodyFraming(.done)       // the request body being passed on
        var upstream: (fd: Int32, host: String, port: Int)?
        var awaiting: [String] = []         // the methods of the requests whose answers are still to come
        var answers = AnswerReader()
        var clientEnded = false
        var headDeadline: Date?
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        func dropUpstream() {
            guard let fd = upstream?.fd else { return }
            untrack(fd)
            close(fd)
            upstream = nil
        }
        defer { dropUpstream() }
        /// A decided request's head and as much of its body as has come, in one write.
        func forward(_ request: ProxyRequest, _ framing: BodyFraming, to fd: Int32) -> Bool {
            decide(request.method, request.host, request.port, allowed: true, reason: nil)
            (body, next, headDeadline) = (framing, nil, nil)
            awaiting.append(request.method)
            guard let n = body.consume(input[...]) else { return false }
            defer { input.removeFirst(n) }
            return Self.sendAll(fd, request.forwardedHead + input[..<n])
        }

        while true {
            if case .request(let request) = next, let framing = request.body, let to = upstream,
               to.host == request.host, to.port == request.port {
                // The same upstream: on at once, even while earlier answers are coming.
                guard forward(request, framing, to: to.fd) else { return }
            } else if let pending = next, awaiting.isEmpty {
                // Another upstream, or a refusal: every answer before it has been passed back.
                dropUpstream()
                guard case .request(let request) = pending else {
                    if case .refusal(let status, let why) = pending { refuse(client, status, why, method: "?", host: "", port: 0) }
                    return
                }
                if request.method == "CONNECT" {
                    // A tunnel after plain requests: the connection is the tunnel's from here.
                    tunnel(client, request, rest: input)
                    return
                }
                guard let framing = request.body else {
                    refuse(client, 400, "the request's body length is ambiguous (Content-Length with Transfer-Encoding, "
                           + "lengths that disagree, or a coding other than chunked)", method: request.method, host: "", port: 0)
                    return
                }
                guard policy.allows(request.host) else {
                    refuse(client, 403, "not on this run's egress allowlist", method: request.method, host: request.host,
                           port: request.port)
                    return
                }
                switch Self.connect(host: request.host, port: request.port, timeout: connectTimeout) {
                case .failure(let why):
                    refuse(client, 502, why, method: request.method, host: request.host, port: request.port, allowedByList: true)
                    return
                case .success(let fd):
                    guard track(fd) else { close(fd); return }
                    upstream = (fd, request.host, request.port)
                }
                answers = AnswerReader()
                guard forward(request, framing, to: upstream!.fd) else { return }
            }

            if next == nil, !input.isEmpty {
                if !body.isDone, let to = upstream?.fd {
                    // The request's body, as far as its framing says.
                    guard let n = body.consume(input[...]), Self.sendAll(to, Array(input[..<n])) else { return }
                    input.removeFirst(n)
                    continue
                }
                if let end = Self.headEnd(input) {
                    next = ProxyRequest(head: Array(input[..<end])).map { .request($0) } ?? .refusal(400, "not an HTTP proxy request")
                    input.removeFirst(end)
                    continue
                }
                if input.count >= Self.maxHead {
                    (next, input) = (.refusal(431, "request head too large"), [])
                    continue
                }
                if headDeadline == nil { headDeadline = Date().addingTimeInterval(headTimeout) }
            }
            if clientEnded, awaiting.isEmpty, next == nil { return }

            // Wait for the client (unless a request of its is waiting its turn) and the upstream.
            let readClient = next == nil && !clientEnded
            var fds = [pollfd(fd: readClient ? client : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: upstream?.fd ?? -1, events: Int16(POLLIN), revents: 0)]
            var wait: Int32 = -1
            if readClient, let deadline = headDeadline {
                wait = Int32(max(0, min(deadline.timeIntervalSinceNow * 1000, Double(Int32.max))).rounded(.up))
            }
            let r = poll(&fds, 2, wait)
            if r < 0 { if errno == EINTR { continue }; return }
            if r == 0 {
                (next, input) = (.refusal(408, "request head not sent within \(Int(headTimeout))s"), [])
                continue
            }
            if fds[1].revents != 0, let from = upstream?.fd {
                let n = recv(from, &buffer, buffer.count, 0)
                if n < 0 && errno == EINTR { continue }
                // The upstream closed (an answer that runs until the close ends with it): so does the client's.
                guard n > 0, Self.sendAll(client, Array(buffer[0..<n])) else { return }
                let ended = answers.read(buffer[0..<n], methods: awaiting)
                awaiting.removeFirst(min(ended, awaiting.count))
            }
            if fds[0].revents != 0 {
                let n = recv(client, &buffer, buffer.count, 0)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { return }
                if n == 0 {
                    clientEnded = true
                    // Passed on, as a half-close; a client that ends between requests ends the connection.
                    if let to = upstream?.fd { shutdown(to, Int32(SHUT_WR)) }
                    if awaiting.isEmpty, body.isDone { return }
                } else {
                    input += buffer[0..<n]
                }
            }
        }
    }

    private func refuse(_ client: Int32, _ status: Int, _ why: String, method: String, host: String, port: Int,
                        allowedByList: Bool = false) {
        decide(method, host, port, allowed: false, reason: why, counted: !allowedByList)
        let phrase = [400: "Bad Request", 403: "Forbidden", 408: "Request Timeout", 431: "Request Header Fields Too Large",
                      502: "Bad Gateway"][status] ?? "Error"
        let body = "ccdeck egress: \(status == 403 ? "\(host) is not on this run's allowlist" : why)\n"
        let response = "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
            + "X-Ccdeck-Egress: \(status == 403 ? "denied" : "error")\r\nConnection: close\r\n\r\n" + body
        _ = Self.sendAll(client, Array(response.utf8))
    }

    /// Logs a decision. An allowed host whose upstream failed is logged, not counted as denied.
    private func decide(_ method: String, _ host: String, _ port: Int, allowed: Bool, reason: String?, counted: Bool = true) {
        let decision = EgressDecision(at: Date(), method: String(method.prefix(16)), host: String(host.prefix(253)), port: port,
                                      allowed: allowed, reason: reason)
        var line = (try? encoder.encode(decision)) ?? Data()
        line.append(0x0A)
        lock.withLock {
            if counted, !host.isEmpty { summary.note(decision) }
            try? log?.write(contentsOf: line)
        }
        onDecision?(decision)
    }

    // MARK: sockets

    static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 3..<b.count where b[i] == 0x0A && b[i - 1] == 0x0D && b[i - 2] == 0x0A && b[i - 3] == 0x0D {
            return i + 1
        }
        return nil
    }

    static func waitReadable(_ fd: Int32, seconds: TimeInterval) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ms = Int32(min(seconds * 1000, Double(Int32.max)).rounded(.up))
        while true {
            let r = poll(&p, 1, ms)
            if r < 0 && errno == EINTR { continue }
            return r > 0
        }
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Both directions until both have ended (a half-close is passed on) or either breaks.
    static func splice(_ a: Int32, _ b: Int32) {
        var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        var open = [true, true]
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while open[0] || open[1] {
            for i in 0..<2 { fds[i].fd = open[i] ? (i == 0 ? a : b) : -1 }
            let r = poll(&fds, 2, -1)
            if r < 0 { if errno == EINTR { continue }; return }
            for i in 0..<2 where open[i] && fds[i].revents != 0 {
                let from = i == 0 ? a : b, to = i == 0 ? b : a
                let n = recv(from, &buffer, buffer.count, 0)
                if n > 0 {
                    guard sendAll(to, Array(buffer[0..<n])) else { return }
                } else if n == 0 {
                    open[i] = false
                    shutdown(to, Int32(SHUT_WR))
                } else if errno != EINTR {
                    return
                }
            }
        }
    }

    enum Connected { case success(Int32), failure(String) }

    /// Resolves `host` now (every connection afresh) and connects to its first address that answers.
    static func connect(host: String, port: Int, timeout: TimeInterval) -> Connected {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let name = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let rc = getaddrinfo(name, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            return .failure("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var why = "no address"
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            cursor = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                            ai.pointee.ai_protocol)
            if fd < 0 { continue }
            var r = Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen)
            if r != 0 && errno == EINPROGRESS {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, Int32(timeout * 1000)) == 1 {
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                    r = err == 0 ? 0 : -1
                    errno = err
                } else {
                    errno = ETIMEDOUT
                }
            }
            if r == 0 {
                let flags = fcntl(fd, F_GETFL)
                _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
                // Each write passed on as it comes: with Nagle, a request's body sent after its
                // head waits for the upstream's delayed ACK (40 ms) on a kept connection.
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return .success(fd)
            }
            why = String(cString: strerror(errno))
            close(fd)
        }
        return .failure("cannot connect to \(host):\(port): \(why)")
    }
}

public struct EgressProxyError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// A proxy request's head: `CONNECT host:port` or `METHOD http://host[:port]/path`.
struct ProxyRequest {
    var method: String
    var host: String
    var port: Int
    /// For plain http: the head to send upstream (origin-form target, no proxy headers).
    var forwardedHead: [UInt8] = []
    /// For plain http: where its body ends; nil when its head leaves that ambiguous.
    var body: BodyFraming?

    init?(head: [UInt8]) {
        guard String(validating: head, as: UTF8.self) != nil else { return nil }
        let parsed = HTTPHead(head[...])
        let parts = parsed.startLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."),
              parts[0].allSatisfy({ $0.isASCII && ($0.isUppercase || $0 == "-") }), !parts[0].isEmpty else { return nil }
        method = String(parts[0])
        let target = String(parts[1])
        if method == "CONNECT" {
            guard let (h, p) = Self.authority(target, defaultPort: nil) else { return nil }
            (host, port) = (h, p)
            return
        }
        // Only absolute http URLs: an origin-form request names no host the proxy could check.
        guard target.lowercased().hasPrefix("http://") else { return nil }
        let afterScheme = target.dropFirst(7)
        let slash = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let authority = String(afterScheme[..<slash])
        guard !authority.contains("@"), let (h, p) = Self.authority(authority, defaultPort: 80) else { return nil }
        (host, port) = (h, p)
        var path = String(afterScheme[slash...])
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        var out = "\(method) \(path) \(parts[2])\r\n"
        var sawHost = false
        for field in parsed.fields {
            // Hop-by-hop fields are the proxy's own, not passed on; only a client's `close` is (below).
            if ["connection", "proxy-connection", "proxy-authorization", "keep-alive"].contains(field.name) { continue }
            if field.name == "host" { sawHost = true; out += "Host: \(authority)\r\n"; continue }
            out += field.line + "\r\n"
        }
        if !sawHost { out += "Host: \(authority)\r\n" }
        if (parsed.list("connection") + parsed.list("proxy-connection")).contains(where: { $0.lowercased() == "close" }) {
            out += "Connection: close\r\n"
        }
        forwardedHead = Array((out + "\r\n").utf8)
        // A line the head cannot be read by leaves the body's length unknown too: refused (400).
        body = BodyFraming.request(parsed)
    }

    /// `host:port`, `[v6]:port`; the host checked as a host.
    static func authority(_ s: String, defaultPort: Int?) -> (String, Int)? {
        var host: Substring
        var portText: Substring?
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            host = s[s.index(after: s.startIndex)..<close]
            let after = s[s.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { return nil }
        } else if let colon = s.lastIndex(of: ":") {
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
        } else {
            host = Substring(s)
        }
        guard let name = EgressPolicy.requestHost(String(host)), !name.contains(":") || EgressPolicy.isIPLiteral(name) else { return nil }
        let port: Int
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            guard let d = defaultPort else { return nil }
            port = d
        }
        return (name, port)
    }
}
