import Testing

@testable import ProxyHTTP

@Suite struct HTTP1HeadParserTests {
  static let simpleGet =
    "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\t \r\nAccept:*/*\r\n\r\n"

  /// A connection hands each finished head's field array back for the next parse: the next head has only
  /// its own fields (none of the previous one's), and the array's storage is reused.
  @Test func aReusedFieldArrayHoldsOnlyTheNewHeadsFields() throws {
    var storage: [HTTP1HeaderField] = []
    let first = bytes(Self.simpleGet)
    guard
      case .complete(let head1, _) = first.withUnsafeBytes({
        HTTP1HeadParser.parseRequest($0, fieldStorage: &storage)
      })
    else {
      Issue.record("first head did not parse")
      return
    }
    #expect(head1.fields.count == 3)
    storage = head1.fields
    let capacity = storage.capacity
    let second = bytes("GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    guard
      case .complete(let head2, _) = second.withUnsafeBytes({
        HTTP1HeadParser.parseRequest($0, fieldStorage: &storage)
      })
    else {
      Issue.record("second head did not parse")
      return
    }
    #expect(head2.fields.count == 1)
    #expect(head2.fields.capacity == capacity)
    second.withUnsafeBytes { buf in
      #expect(head2.name(at: 0, in: buf) == "Host")
      #expect(head2.header(named: "user-agent", in: buf) == nil)
    }
    let response = bytes("HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n")
    storage = head2.fields
    guard
      case .complete(let head3, _) = response.withUnsafeBytes({
        HTTP1HeadParser.parseResponse($0, requestMethod: .get, fieldStorage: &storage)
      })
    else {
      Issue.record("response head did not parse")
      return
    }
    #expect(head3.fields.count == 1 && head3.status == 204)
  }

  @Test func parsesRequestIntoOffsets() throws {
    let raw = bytes(Self.simpleGet)
    let result = parseRequest(raw)
    let head = try #require(result.head)
    #expect(result.framing == HTTP1Framing.none)
    #expect(head.length == raw.count)
    #expect(head.method == .get)
    #expect(head.version == .http11)
    #expect(head.keepAlive)
    #expect(!head.isUpgrade && !head.expectsContinue)
    #expect(head.fields.count == 3)
    raw.withUnsafeBytes { buf in
      #expect(head.target(in: buf) == "/index.html?q=1")
      #expect(head.header(named: "HOST", in: buf) == "example.com")
      #expect(head.header(named: "user-agent", in: buf) == "t")  // trailing OWS trimmed
      #expect(head.header(named: "accept", in: buf) == "*/*")  // no OWS after colon
      #expect(head.header(named: "missing", in: buf) == nil)
      #expect(HTTP1Bytes.string(buf, head.startLine) == "GET /index.html?q=1 HTTP/1.1")
      #expect(head.name(at: 0, in: buf) == "Host")
    }
    #expect(head.hostIndex == 0)
  }

  @Test func headerValuesAndUnknownMethod() throws {
    let raw = bytes("PURGE /x HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2 \r\nX-B:\r\n\r\n")
    let head = try #require(parseRequest(raw).head)
    #expect(head.method == .other("PURGE"))
    raw.withUnsafeBytes { buf in
      #expect(head.headerValues(named: "X-a", in: buf) == ["1", "2"])
      #expect(head.header(named: "x-b", in: buf) == "")
    }
  }

  @Test(arguments: [
    ("GET", HTTP1Method.get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete),
    ("OPTIONS", .options), ("TRACE", .trace), ("PATCH", .patch), ("get", .other("get")),
  ])
  func knownMethods(name: String, method: HTTP1Method) throws {
    let head = try #require(parseRequest("\(name) / HTTP/1.1\r\nHost: h\r\n\r\n").head)
    #expect(head.method == method)
    #expect(method.name == name)
  }

  @Test func requestFraming() {
    #expect(
      parseRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n").framing == .contentLength(12))
    #expect(
      parseRequest("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").framing == HTTP1Framing.none)
    #expect(
      parseRequest("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n").framing == .chunked)
    #expect(parseRequest("CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n").framing == .upgrade)
    #expect(parseRequest("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").framing == HTTP1Framing.none)
    #expect(parseRequest("GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n").framing == HTTP1Framing.none)
    #expect(parseRequest("GET / HTTP/1.0\r\n\r\n").framing == HTTP1Framing.none)  // Host optional on 1.0
  }

  @Test func connectionSemantics() throws {
    let h11 = try #require(parseRequest("GET / HTTP/1.1\r\nHost: h\r\n\r\n").head)
    #expect(h11.keepAlive)
    let h11Close = try #require(
      parseRequest("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n").head)
    #expect(!h11Close.keepAlive)
    let h10 = try #require(parseRequest("GET / HTTP/1.0\r\n\r\n").head)
    #expect(!h10.keepAlive)
    let h10KA = try #require(parseRequest("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").head)
    #expect(h10KA.keepAlive)
    let upgrade = try #require(
      parseRequest("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").head)
    #expect(upgrade.isUpgrade)
    let notUpgrade = try #require(
      parseRequest("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n").head)
    #expect(!notUpgrade.isUpgrade)
    let expect = try #require(
      parseRequest("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n").head)
    #expect(expect.expectsContinue)
  }

  @Test func skipsEmptyLinesBeforeRequestLine() throws {
    let raw = bytes("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
    let head = try #require(parseRequest(raw).head)
    #expect(head.length == raw.count)
    #expect(head.startLine.lowerBound == 4)
  }

  @Test func incompleteAtEveryPrefix() throws {
    let raw = bytes("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-Long: a b c\r\n\r\n")
    let full = try #require(parseRequest(raw).head)
    for k in 0..<raw.count {
      #expect(parseRequest(Array(raw[0..<k])) == .incomplete, "prefix \(k)")
    }
    // Extra bytes after the head (the body, a pipelined request) do not change the head.
    #expect(parseRequest(raw + bytes("helloGET")).head == full)
  }

  @Test func responses() throws {
    let ok = parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    #expect(ok.framing == .contentLength(5))
    #expect(ok.head?.status == 200)
    #expect(ok.head?.keepAlive == true)
    let raw = bytes("HTTP/1.1 404 Not \u{e9}Found\r\n\r\n")
    let nf = try #require(raw.withUnsafeBytes { HTTP1HeadParser.parseResponse($0, requestMethod: .get) }.head)
    raw.withUnsafeBytes { #expect(nf.reason(in: $0) == "Not \u{e9}Found") }

    #expect(
      parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", method: .head).framing
        == HTTP1Framing.none)
    #expect(
      parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", method: .head).framing
        == HTTP1Framing.none)
    #expect(parseResponse("HTTP/1.1 204 No Content\r\n\r\n").framing == HTTP1Framing.none)
    #expect(
      parseResponse("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n").framing == HTTP1Framing.none)
    #expect(parseResponse("HTTP/1.1 100 Continue\r\n\r\n").framing == HTTP1Framing.none)
    #expect(parseResponse("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n").framing == HTTP1Framing.none)
    #expect(
      parseResponse("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
        .framing
        == .upgrade)
    #expect(
      parseResponse("HTTP/1.1 200 Connection established\r\n\r\n", method: .connect).framing == .upgrade)
    #expect(
      parseResponse("HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n", method: .connect).framing
        == HTTP1Framing.none)
    #expect(parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").framing == .chunked)
    // No reason phrase (and no SP after the code) is accepted.
    #expect(parseResponse("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n").framing == .contentLength(1))

    let close = parseResponse("HTTP/1.1 200 OK\r\n\r\n")
    #expect(close.framing == .untilClose)
    #expect(close.head?.keepAlive == false)
    #expect(parseResponse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").head?.keepAlive == false)
    #expect(
      parseResponse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n").head?.keepAlive
        == true)
  }

  @Test(arguments: [
    ("HTTP/1.1 20 OK\r\n\r\n", HTTP1CodecError.Code.invalidStartLine),
    ("HTTP/1.1 2000 OK\r\n\r\n", .invalidStartLine),
    ("HTTP/1.1 099 X\r\n\r\n", .invalidStartLine),
    ("HTTP/2 200 OK\r\n\r\n", .invalidVersion),
    ("HTTP/1.1  200 OK\r\n\r\n", .invalidStartLine),
    ("HTTP/1.1 200 O\u{1}K\r\n\r\n", .invalidStartLine),
    ("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingNotAllowed),
    ("HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n", .contentLengthNotAllowed),
    ("HTTP/1.1 100 Continue\r\nContent-Length: 3\r\n\r\n", .contentLengthNotAllowed),
    (
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      .contentLengthWithTransferEncoding
    ),
    ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", .unsupportedTransferEncoding),
    ("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingOnHTTP10),
    ("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", .bareLineFeed),
  ])
  func invalidResponses(raw: String, code: HTTP1CodecError.Code) {
    #expect(parseResponse(raw).errorCode == code)
  }

  @Test func connectResponseWithChunkedIsRejected() {
    let r = parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", method: .connect)
    #expect(r.errorCode == .transferEncodingNotAllowed)
  }

  @Test func errorsMapToEnvoyStatusAndDetails() {
    #expect(HTTP1CodecError(.headersTooLarge, "").httpStatus == 431)
    #expect(HTTP1CodecError(.headersTooLarge, "").responseCodeDetails == "http1.headers_too_large")
    #expect(HTTP1CodecError(.tooManyHeaders, "").httpStatus == 431)
    #expect(HTTP1CodecError(.tooManyHeaders, "").responseCodeDetails == "http1.too_many_headers")
    #expect(HTTP1CodecError(.unsupportedTransferEncoding, "").httpStatus == 501)
    #expect(
      HTTP1CodecError(.unsupportedTransferEncoding, "").responseCodeDetails
        == "http1.invalid_transfer_encoding")
    #expect(HTTP1CodecError(.bareLineFeed, "").httpStatus == 400)
    #expect(HTTP1CodecError(.bareLineFeed, "").responseCodeDetails == "http1.codec_error")
    #expect(HTTP1CodecError(.invalidHeaderValue, "").responseCodeDetails == "http1.invalid_characters")
    #expect(HTTP1CodecError(.missingHost, "").responseCodeDetails == "missing_host_header")
    #expect(HTTP1CodecError(.bareLineFeed, "a") == HTTP1CodecError(.bareLineFeed, "a"))
    #expect(HTTP1CodecError(.bareLineFeed, "a") != HTTP1CodecError(.bareLineFeed, "b"))
  }
}
