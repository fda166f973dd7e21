@testable import CCDeckBackends
import Testing

/// Where a message's body ends, as the egress proxy counts it on a kept connection.
@Suite struct HTTPFramingTests {
    func head(_ text: String) -> HTTPHead { HTTPHead(Array(text.utf8)[...]) }

    /// Feeds `bytes` in pieces of `piece` bytes; returns how many belonged to the body.
    func consumed(_ framing: BodyFraming, _ bytes: String, piece: Int) -> (Int?, BodyFraming) {
        var f = framing
        let all = Array(bytes.utf8)
        var total = 0
        var at = 0
        while at < all.count {
            let end = min(at + piece, all.count)
            guard let n = f.consume(all[at..<end]) else { return (nil, f) }
            total += n
            if n < end - at { break }
            at = end
        }
        return (total, f)
    }

    @Test func chunkedBodiesEndAfterTheirTrailersHoweverTheyArrive() {
        let body = "5;name=v\r\nhello\r\n1A\r\n" + String(repeating: "x", count: 26) + "\r\n0\r\nTrailer: 1\r\n\r\n"
        for piece in [1, 2, 3, 7, 1000] {
            let (n, f) = consumed(BodyFraming(.chunkSize), body + "GET /next", piece: piece)
            #expect(n == body.utf8.count && f.isDone, "piece \(piece)")
        }
    }

    @Test func malformedChunksAreRefused() {
        for bad in ["zz\r\n", "+5\r\nhello\r\n", "5\r\nhelloXX0\r\n\r\n", "\r\n", String(repeating: "1", count: 16) + "\r\n"] {
            #expect(consumed(BodyFraming(.chunkSize), bad, piece: 100).0 == nil, "\(bad.debugDescription)")
        }
    }

    @Test func lengthsAndTheirAbsence() {
        #expect(BodyFraming.request(head("POST / HTTP/1.1\r\nContent-Length: 4")) == BodyFraming(.length(4)))
        #expect(BodyFraming.request(head("GET / HTTP/1.1\r\nHost: x")) == BodyFraming(.done))
        #expect(BodyFraming.request(head("POST / HTTP/1.1\r\nContent-Length: 4, 4")) == BodyFraming(.length(4)))
        #expect(BodyFraming.request(head("POST / HTTP/1.1\r\ntransfer-encoding: Chunked")) == BodyFraming(.chunkSize))
        for ambiguous in ["Content-Length: 4\r\nTransfer-Encoding: chunked", "Content-Length: 4\r\nContent-Length: 5",
                          "Transfer-Encoding: chunked, gzip", "Content-Length: ", "Content-Length: 99999999999999999999"] {
            #expect(BodyFraming.request(head("POST / HTTP/1.1\r\n" + ambiguous)) == nil, "\(ambiguous)")
        }
        let (n, f) = consumed(BodyFraming(.length(4)), "bodyGET", piece: 2)
        #expect(n == 4 && f.isDone)
    }

    @Test func answersWithoutABody() {
        let sized = head("HTTP/1.1 200 OK\r\nContent-Length: 10")
        #expect(BodyFraming.response(sized, status: 200, method: "HEAD").isDone)
        #expect(BodyFraming.response(sized, status: 304, method: "GET").isDone)
        #expect(BodyFraming.response(head("HTTP/1.1 204 No Content"), status: 204, method: "GET").isDone)
        #expect(BodyFraming.response(sized, status: 200, method: "GET") == BodyFraming(.length(10)))
        #expect(BodyFraming.response(head("HTTP/1.1 200 OK"), status: 200, method: "GET") == BodyFraming(.untilClose))
        #expect(BodyFraming.response(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip"), status: 200, method: "GET")
                == BodyFraming(.untilClose))
    }

    @Test func answersEndWhereTheirFramingSays() {
        var reader = AnswerReader()
        let continued = "HTTP/1.1 100 Continue\r\n\r\n"
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        let headOnly = "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
        let sized = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"
        let bytes = Array((continued + chunked + headOnly + sized).utf8)
        var ended = 0
        for b in bytes { ended += reader.read([b][...], methods: Array(["POST", "HEAD", "GET"].dropFirst(ended))) }
        #expect(ended == 3 && !reader.untilClose)
        var upgraded = AnswerReader()
        #expect(upgraded.read(Array("HTTP/1.1 101 Switching Protocols\r\n\r\nraw".utf8)[...], methods: ["GET"]) == 0)
        #expect(upgraded.untilClose)
    }
}
