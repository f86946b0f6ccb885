import Testing

@testable import ProxyHTTP

struct Vector: Sendable, CustomTestStringConvertible {
  var name: String
  var raw: String
  var code: HTTP1CodecError.Code
  var testDescription: String { name }
}

private let host = "Host: h\r\n"

/// Request-smuggling and llhttp-strictness vectors: each must be rejected with the given code.
let requestVectors: [Vector] = [
  Vector(
    name: "CL+TE", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    code: .contentLengthWithTransferEncoding),
  Vector(
    name: "TE+CL", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
    code: .contentLengthWithTransferEncoding),
  Vector(
    name: "TE chunked, chunked", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked, chunked\r\n\r\n",
    code: .unsupportedTransferEncoding),
  Vector(
    name: "TE twice",
    raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    code: .unsupportedTransferEncoding),
  Vector(
    name: "TE xchunked", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: xchunked\r\n\r\n",
    code: .unsupportedTransferEncoding),
  Vector(
    name: "TE chunked-x", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunkedx\r\n\r\n",
    code: .unsupportedTransferEncoding),
  Vector(
    name: "TE gzip, chunked", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: gzip, chunked\r\n\r\n",
    code: .unsupportedTransferEncoding),
  Vector(
    name: "TE chunked, gzip", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: chunked, gzip\r\n\r\n",
    code: .unsupportedTransferEncoding),
  Vector(
    name: "TE with vertical tab", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding: \u{0B}chunked\r\n\r\n",
    code: .invalidHeaderValue),
  Vector(
    name: "TE space before colon", raw: "POST / HTTP/1.1\r\n\(host)Transfer-Encoding : chunked\r\n\r\n",
    code: .whitespaceBeforeColon),
  Vector(
    name: "TE on HTTP/1.0", raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    code: .transferEncodingOnHTTP10),
  Vector(
    name: "double CL same", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
    code: .invalidContentLength),
  Vector(
    name: "double CL differing",
    raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
    code: .invalidContentLength),
  Vector(
    name: "CL list", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 5, 5\r\n\r\n",
    code: .invalidContentLength),
  Vector(
    name: "CL plus sign", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: +5\r\n\r\n",
    code: .invalidContentLength),
  Vector(
    name: "CL minus", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: -1\r\n\r\n", code: .invalidContentLength
  ),
  Vector(
    name: "CL inner space", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 1 2\r\n\r\n",
    code: .invalidContentLength),
  Vector(
    name: "CL hex", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 0x5\r\n\r\n", code: .invalidContentLength),
  Vector(
    name: "CL empty", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: \r\n\r\n", code: .invalidContentLength),
  Vector(
    name: "CL overflow", raw: "POST / HTTP/1.1\r\n\(host)Content-Length: 99999999999999999999\r\n\r\n",
    code: .invalidContentLength),
  Vector(
    name: "CL space before colon", raw: "POST / HTTP/1.1\r\n\(host)Content-Length : 5\r\n\r\n",
    code: .whitespaceBeforeColon),
  Vector(name: "tab before colon", raw: "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", code: .whitespaceBeforeColon),
  Vector(name: "bare LF request line", raw: "GET / HTTP/1.1\n\(host)\r\n", code: .bareLineFeed),
  Vector(name: "bare LF header", raw: "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", code: .bareLineFeed),
  Vector(name: "bare LF end", raw: "GET / HTTP/1.1\r\n\(host)\n", code: .bareLineFeed),
  Vector(name: "bare CR in value", raw: "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", code: .bareLineFeed),
  Vector(name: "obs-fold", raw: "GET / HTTP/1.1\r\n\(host)X-A: 1\r\n 2\r\n\r\n", code: .obsoleteLineFolding),
  Vector(
    name: "obs-fold tab", raw: "GET / HTTP/1.1\r\n\(host)X-A: 1\r\n\t2\r\n\r\n", code: .obsoleteLineFolding),
  Vector(name: "leading whitespace", raw: "GET / HTTP/1.1\r\n \(host)\r\n", code: .leadingWhitespace),
  Vector(name: "NUL in value", raw: "GET / HTTP/1.1\r\n\(host)X: a\u{0}b\r\n\r\n", code: .invalidHeaderValue),
  Vector(name: "CTL in value", raw: "GET / HTTP/1.1\r\n\(host)X: a\u{1}b\r\n\r\n", code: .invalidHeaderValue),
  Vector(name: "DEL in value", raw: "GET / HTTP/1.1\r\n\(host)X: a\u{7F}\r\n\r\n", code: .invalidHeaderValue),
  Vector(name: "bad name char", raw: "GET / HTTP/1.1\r\n\(host)X(y): 1\r\n\r\n", code: .invalidHeaderName),
  Vector(name: "empty name", raw: "GET / HTTP/1.1\r\n\(host): 1\r\n\r\n", code: .invalidHeaderName),
  Vector(name: "no colon", raw: "GET / HTTP/1.1\r\n\(host)Broken\r\n\r\n", code: .invalidHeaderName),
  Vector(
    name: "non-ASCII name", raw: "GET / HTTP/1.1\r\n\(host)X\u{e9}: 1\r\n\r\n", code: .invalidHeaderName),
  Vector(name: "bad method char", raw: "G(T / HTTP/1.1\r\n\(host)\r\n", code: .invalidStartLine),
  Vector(name: "empty method", raw: " / HTTP/1.1\r\n\(host)\r\n", code: .invalidStartLine),
  Vector(name: "double space", raw: "GET  / HTTP/1.1\r\n\(host)\r\n", code: .invalidTarget),
  Vector(name: "target CTL", raw: "GET /a\u{1}b HTTP/1.1\r\n\(host)\r\n", code: .invalidTarget),
  Vector(name: "target tab", raw: "GET /a\tb HTTP/1.1\r\n\(host)\r\n", code: .invalidTarget),
  Vector(name: "target non-ASCII", raw: "GET /\u{e9} HTTP/1.1\r\n\(host)\r\n", code: .invalidTarget),
  Vector(name: "target space", raw: "GET /a b HTTP/1.1\r\n\(host)\r\n", code: .invalidVersion),
  Vector(name: "HTTP/0.9", raw: "GET /\r\n\r\n", code: .invalidTarget),
  Vector(name: "asterisk not OPTIONS", raw: "GET * HTTP/1.1\r\n\(host)\r\n", code: .invalidTarget),
  Vector(name: "odd target form", raw: "GET %2F HTTP/1.1\r\n\(host)\r\n", code: .invalidTarget),
  Vector(name: "CONNECT origin-form", raw: "CONNECT /x HTTP/1.1\r\n\(host)\r\n", code: .invalidTarget),
  Vector(name: "version 1.2", raw: "GET / HTTP/1.2\r\n\(host)\r\n", code: .invalidVersion),
  Vector(name: "version 2.0", raw: "GET / HTTP/2.0\r\n\(host)\r\n", code: .invalidVersion),
  Vector(name: "version lowercase", raw: "GET / http/1.1\r\n\(host)\r\n", code: .invalidVersion),
  Vector(name: "version trailing space", raw: "GET / HTTP/1.1 \r\n\(host)\r\n", code: .invalidVersion),
  Vector(name: "missing Host", raw: "GET / HTTP/1.1\r\n\r\n", code: .missingHost),
  Vector(name: "duplicate Host", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", code: .duplicateHost),
  Vector(
    name: "duplicate Host 1.0", raw: "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", code: .duplicateHost),
  Vector(
    name: "Connection nominates CL",
    raw: "POST / HTTP/1.1\r\n\(host)Connection: content-length\r\nContent-Length: 1\r\n\r\n",
    code: .invalidConnectionHeader),
  Vector(
    name: "Connection nominates Host", raw: "GET / HTTP/1.1\r\n\(host)Connection: host\r\n\r\n",
    code: .invalidConnectionHeader),
  Vector(
    name: "Connection nominates 11",
    raw: "GET / HTTP/1.1\r\n\(host)Connection: a,b,c,d,e,f,g,h,i,j,k\r\n\r\n",
    code: .invalidConnectionHeader),
  Vector(
    name: "CONNECT with body", raw: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 3\r\n\r\n",
    code: .bodyNotAllowed),
  Vector(
    name: "CONNECT with TE",
    raw: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nTransfer-Encoding: chunked\r\n\r\n",
    code: .unsupportedTransferEncoding),
]

@Suite struct SmugglingVectorTests {
  @Test(arguments: requestVectors)
  func rejected(vector: Vector) {
    #expect(parseRequest(vector.raw).errorCode == vector.code)
  }

  /// The same vectors fed in pieces: never accepted, and rejected with the same code once complete.
  @Test(arguments: requestVectors)
  func rejectedAcrossSplits(vector: Vector) {
    let raw = bytes(vector.raw)
    for k in 1..<raw.count {
      let r = parseRequest(Array(raw[0..<k]))
      #expect(r.head == nil, "prefix \(k) accepted")
    }
    #expect(drive(raw, pieces: [1]) == .failed(vector.code, after: []))
    #expect(
      drive(raw, pieces: randomPieces(count: 16, maxPiece: 9, seed: 7)) == .failed(vector.code, after: []))
  }

  @Test func oversizedHeadIsRejectedBeforeItCompletes() {
    let limits = HTTP1Limits(maxHeadBytes: 64)
    let long = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 100)
    #expect(parseRequest(long, limits: limits).errorCode == .headersTooLarge)
    #expect(parseRequest(long + "\r\n\r\n", limits: limits).errorCode == .headersTooLarge)
    // Exactly at the limit is fine.
    let exact = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 64 - 32) + "\r\n\r\n"
    #expect(exact.utf8.count == 64)
    #expect(parseRequest(exact, limits: limits).head != nil)
    // The default limit (60 KiB) with a single huge header.
    let big = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 61 * 1024) + "\r\n\r\n"
    #expect(parseRequest(big).errorCode == .headersTooLarge)
  }

  @Test func tooManyHeaders() {
    let fields = (0..<101).map { "X-\($0): v\r\n" }.joined()
    #expect(parseRequest("GET / HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n").errorCode == .tooManyHeaders)
    let ok = (0..<99).map { "X-\($0): v\r\n" }.joined()
    #expect(parseRequest("GET / HTTP/1.1\r\nHost: h\r\n" + ok + "\r\n").head?.fields.count == 100)
    // Detected while the head is still incomplete.
    #expect(parseRequest("GET / HTTP/1.1\r\nHost: h\r\n" + fields).errorCode == .tooManyHeaders)
  }
}
