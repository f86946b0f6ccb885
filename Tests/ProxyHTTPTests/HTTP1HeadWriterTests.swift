import NIOCore
import Testing

@testable import ProxyHTTP

@Suite struct HTTP1HeadWriterTests {
  func rewrite(_ raw: String, _ rewrite: HTTP1HeadRewrite, body: String? = nil, response: Bool = false) throws
    -> String
  {
    let source = bytes(raw)
    let result =
      response
      ? source.withUnsafeBytes { HTTP1HeadParser.parseResponse($0, requestMethod: .get) }
      : parseRequest(source)
    let head = try #require(result.head)
    var out = ByteBuffer()
    source.withUnsafeBytes { src in
      if let body {
        bytes(body).withUnsafeBytes {
          HTTP1HeadWriter.write(head, from: src, rewrite: rewrite, body: $0, into: &out)
        }
      } else {
        HTTP1HeadWriter.write(head, from: src, rewrite: rewrite, into: &out)
      }
    }
    return string(out)
  }

  @Test(arguments: [
    "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "POST /a?b=c HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: h\r\nconnection: Upgrade, foo\r\nfoo: 1\r\nUpgrade: websocket\r\nTE: gzip\r\nX-Empty:\r\nX-Sp:   v  \r\n\r\n",
  ])
  func roundTripsRequestsVerbatim(raw: String) throws {
    #expect(try rewrite(raw, .verbatim) == raw)
  }

  @Test(arguments: [
    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.0 404 Not Found\r\nConnection: close\r\nProxy-Connection: x\r\n\r\n",
    "HTTP/1.1 204\r\nX: y\r\n\r\n",
  ])
  func roundTripsResponsesVerbatim(raw: String) throws {
    #expect(try rewrite(raw, .verbatim, response: true) == raw)
  }

  @Test func roundTripOverByteBuffer() throws {
    let raw = "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n"
    var buffer = ByteBuffer(string: "JUNK" + raw + "hi")
    buffer.moveReaderIndex(forwardBy: 4)
    let head = try #require(buffer.withUnsafeReadableBytes { HTTP1HeadParser.parseRequest($0) }.head)
    #expect(head.header(named: "content-length", in: buffer) == "2")
    #expect(head.target(in: buffer) == "/x")
    #expect(head.headerSlice(named: "host", in: buffer).map(string) == "h")
    let headBytes = buffer.readSlice(length: head.length)!
    let body = buffer.readSlice(length: 2)!
    var out = ByteBuffer()
    HTTP1HeadWriter.write(head, from: headBytes, rewrite: .verbatim, body: body, into: &out)
    #expect(string(out) == raw + "hi")
  }

  @Test func stripsHopByHopHeaders() throws {
    let raw =
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Foo, bar\r\nfoo: 1\r\nX-Keep: 2\r\nKeep-Alive: timeout=5\r\n"
      + "Proxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: h2c\r\nBar: 3\r\nFOO: 4\r\nTrailer: X-Sum\r\n\r\n"
    let head = try #require(parseRequest(raw).head)
    #expect(head.hopByHopIndices == [1, 2, 4, 5, 7, 8, 9])
    #expect(!head.isUpgrade)
    #expect(
      try rewrite(raw, HTTP1HeadRewrite())
        == "GET / HTTP/1.1\r\nHost: h\r\nX-Keep: 2\r\nTE: trailers\r\nTrailer: X-Sum\r\n\r\n")
  }

  @Test func teOtherThanTrailersIsReplaced() throws {
    let raw = "GET / HTTP/1.1\r\nHost: h\r\nTE: deflate, trailers\r\n\r\n"
    #expect(try rewrite(raw, HTTP1HeadRewrite()) == "GET / HTTP/1.1\r\nHost: h\r\nte: trailers\r\n\r\n")
    let gzip = "GET / HTTP/1.1\r\nHost: h\r\nTE: gzip\r\n\r\n"
    #expect(try rewrite(gzip, HTTP1HeadRewrite()) == "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
  }

  @Test func upgradeKeepsConnectionAndUpgrade() throws {
    let raw =
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, x-a\r\nUpgrade: websocket\r\nX-A: 1\r\nKeep-Alive: 1\r\n\r\n"
    #expect(
      try rewrite(raw, HTTP1HeadRewrite())
        == "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, x-a\r\nUpgrade: websocket\r\n\r\n")
  }

  @Test func h2cUpgradeIsNotHonoured() throws {
    let raw =
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n\r\n"
    #expect(parseRequest(raw).head?.isUpgrade == false)
    #expect(try rewrite(raw, HTTP1HeadRewrite()) == "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
  }

  @Test func chunkedTransferEncodingIsKeptForVerbatimForwarding() throws {
    let raw = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    #expect(
      try rewrite(raw, HTTP1HeadRewrite())
        == "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
  }

  @Test func rewritesStartLineHostAndAddsHeaders() throws {
    let raw = "GET /old?x=1 HTTP/1.0\r\nX-A: a\r\nHost: old\r\nhost: dup-ignored-on-1.0?\r\n\r\n"
    // Duplicate Host is invalid even on 1.0, so use a single one.
    let single = "GET /old?x=1 HTTP/1.0\r\nX-A: a\r\nHost: old\r\nX-B: b\r\n\r\n"
    #expect(parseRequest(raw).errorCode == .duplicateHost)
    let out = try rewrite(
      single,
      HTTP1HeadRewrite(
        target: "/new", host: "backend:8080", version: .http11, dropIndices: [2],
        addedHeaders: [
          ("x-forwarded-proto", "http"), ("x-request-id", "abc"), ("bad header", "x"),
          ("x-inject", "a\r\nb: c"),
          ("connection", "close"),
        ]),
      body: "hello")
    #expect(
      out
        == "GET /new HTTP/1.1\r\nX-A: a\r\nhost: backend:8080\r\nx-forwarded-proto: http\r\nx-request-id: abc\r\n"
        + "connection: close\r\n\r\nhello")
    let noHost = try rewrite("GET / HTTP/1.0\r\n\r\n", HTTP1HeadRewrite(host: "h"))
    #expect(noHost == "GET / HTTP/1.0\r\nhost: h\r\n\r\n")
  }

  @Test func rewritesResponseVersion() throws {
    let out = try rewrite(
      "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
      HTTP1HeadRewrite(version: .http11, addedHeaders: [("x-envoy-upstream-service-time", "3")]),
      response: true)
    #expect(out == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nx-envoy-upstream-service-time: 3\r\n\r\n")
    let noReason = try rewrite("HTTP/1.0 200\r\n\r\n", HTTP1HeadRewrite(version: .http11), response: true)
    #expect(noReason == "HTTP/1.1 200 \r\n\r\n")
  }

  @Test func localReplies() {
    var b = ByteBuffer()
    HTTP1HeadWriter.writeLocalReply(
      status: 503, body: HTTP1LocalReplyText.noHealthyUpstream, close: false, into: &b)
    #expect(
      string(b)
        == "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n\r\nno healthy upstream"
    )

    b.clear()
    HTTP1HeadWriter.writeLocalReply(status: 404, close: false, into: &b)
    #expect(string(b) == "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")

    b.clear()
    HTTP1HeadWriter.writeLocalReply(
      status: 503, body: HTTP1LocalReplyText.upstreamConnectionFailure,
      extraHeaders: [("server", "pilotfish")],
      close: true, isHeadRequest: true, into: &b)
    #expect(
      string(b)
        == "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 91\r\ncontent-type: text/plain\r\nserver: pilotfish\r\n"
        + "connection: close\r\n\r\n")

    b.clear()
    HTTP1HeadWriter.writeLocalReply(for: HTTP1CodecError(.headersTooLarge, "x"), into: &b)
    #expect(
      string(b)
        == "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 31\r\ncontent-type: text/plain\r\n"
        + "connection: close\r\n\r\nRequest Header Fields Too Large")

    b.clear()
    HTTP1HeadWriter.writeContinue(into: &b)
    #expect(string(b) == "HTTP/1.1 100 Continue\r\n\r\n")
  }
}
