import Testing

@testable import ProxyHTTP

/// Chunked bodies the scanner must reject, with the code (also run through independent parsers by
/// `IndependentParserTests`).
let chunkedBodyVectors: [(String, HTTP1CodecError.Code)] = [
  ("ffffffffffffffffff\r\n", HTTP1CodecError.Code.invalidChunkSize),
  ("8000000000000000\r\n", .invalidChunkSize),
  (" 5\r\nhello\r\n0\r\n\r\n", .invalidChunkSize),
  ("5 \r\nhello\r\n0\r\n\r\n", .invalidChunkSize),
  ("0x5\r\nhello\r\n0\r\n\r\n", .invalidChunkSize),
  ("-5\r\nhello\r\n", .invalidChunkSize),
  ("+5\r\nhello\r\n", .invalidChunkSize),
  ("\r\n", .invalidChunkSize),
  ("g\r\n", .invalidChunkSize),
  ("5\r\nhelloX\r\n0\r\n\r\n", .missingChunkDataTerminator),
  ("5\r\nhello\n0\r\n\r\n", .missingChunkDataTerminator),
  ("5\r\nhello\rX", .missingChunkDataTerminator),
  ("5\nhello\r\n", .bareLineFeed),
  ("5\rhello\r\n", .bareLineFeed),
  ("5;\r\nhello\r\n", .invalidChunkExtension),
  ("5;=v\r\nhello\r\n", .invalidChunkExtension),
  ("5;a b\r\nhello\r\n", .invalidChunkExtension),
  ("5;a=\r\nhello\r\n", .invalidChunkExtension),
  ("5;a=\"open\r\nhello\r\n", .invalidChunkExtension),
  ("5;a=\u{1}\r\nhello\r\n", .invalidChunkExtension),
  ("5;a=\"x\u{0}\"\r\nhello\r\n", .invalidChunkExtension),
  ("5;a\nhello\r\n", .bareLineFeed),
  // Whitespace in the chunk-size line (RFC 9112's BWS), refused as llhttp and h11 refuse it.
  ("5 ;a=b\r\nhello\r\n", .invalidChunkSize),
  ("5\t;a\r\nhello\r\n", .invalidChunkSize),
  ("5; a=b\r\nhello\r\n", .invalidChunkExtension),
  ("5;a =b\r\nhello\r\n", .invalidChunkExtension),
  ("5;a= b\r\nhello\r\n", .invalidChunkExtension),
  ("5;a=b ;c\r\nhello\r\n", .invalidChunkExtension),
  ("5;a=\"b\" \r\nhello\r\n", .invalidChunkExtension),
  ("5;a=b\"c\"\r\nhello\r\n", .invalidChunkExtension),
  ("0\r\nX: 1\r\n folded\r\n\r\n", .obsoleteLineFolding),
  ("0\r\n X: 1\r\n\r\n", .leadingWhitespace),
  ("0\r\nX : 1\r\n\r\n", .whitespaceBeforeColon),
  ("0\r\nX: 1\n\r\n", .bareLineFeed),
  ("0\r\nX: a\u{0}\r\n\r\n", .invalidHeaderValue),
  ("0\r\nX(: 1\r\n\r\n", .invalidHeaderName),
  ("0\r\n\n", .bareLineFeed),
  ("0\r\n\rX", .bareLineFeed),
]

@Suite struct ChunkedBodyScannerTests {
  static let body =
    "5;name=value;q=\"quoted \\\" str\"\r\nhello\r\n"
    + "A;ext;k=v\r\n0123456789\r\n"
    + "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"
    + "000\r\nExpires: never\r\nX-Checksum:  abc \r\n\r\n"

  @Test func validBodyWithExtensionsAndTrailers() {
    let raw = bytes(Self.body)
    #expect(scanChunked(raw) == .complete(raw.count))
    #expect(scanChunked(raw + bytes("GET / HTTP/1.1")) == .complete(raw.count))
    #expect(scanChunked(bytes("0\r\n\r\n")) == .complete(5))
  }

  @Test func everySplitPoint() {
    let raw = bytes(Self.body)
    for k in 0...raw.count {
      var scanner = ChunkedBodyScanner()
      let first = raw[0..<k].withUnsafeBytes { scanner.scan($0) }
      if k < raw.count {
        #expect(first == .needMore, "split \(k)")
        let second = raw[k...].withUnsafeBytes { scanner.scan($0) }
        #expect(second == .complete(raw.count - k), "split \(k)")
      } else {
        #expect(first == .complete(raw.count))
      }
    }
  }

  @Test func byteByByteAndRandomPieces() {
    let raw = bytes(Self.body)
    var scanner = ChunkedBodyScanner()
    for (i, b) in raw.enumerated() {
      let r = [b].withUnsafeBytes { scanner.scan($0) }
      #expect(r == (i == raw.count - 1 ? .complete(1) : .needMore), "byte \(i)")
    }
    #expect(scanner.isComplete)
    for seed in 0..<20 {
      var scanner = ChunkedBodyScanner()
      var offset = 0
      var rng = SplitMix64(seed: UInt64(seed))
      var result = ChunkedBodyScanner.ScanResult.needMore
      while offset < raw.count {
        let n = min(raw.count - offset, Int.random(in: 1...11, using: &rng))
        result = raw[offset..<(offset + n)].withUnsafeBytes { scanner.scan($0) }
        offset += n
        if case .complete = result { break }
        #expect(result == .needMore)
      }
      #expect(offset == raw.count)
      #expect(result != .needMore)
    }
  }

  @Test(arguments: chunkedBodyVectors)
  func rejected(raw: String, code: HTTP1CodecError.Code) {
    #expect(scanChunked(bytes(raw)).errorCode == code)
    // The same verdict byte by byte.
    var scanner = ChunkedBodyScanner()
    var last = ChunkedBodyScanner.ScanResult.needMore
    for b in bytes(raw) {
      last = [b].withUnsafeBytes { scanner.scan($0) }
      if last != .needMore { break }
    }
    #expect(last.errorCode == code)
  }

  @Test func trailerLimits() {
    let limits = HTTP1Limits(maxHeadBytes: 32, maxHeaderCount: 2)
    #expect(scanChunked(bytes("0\r\nA: 1\r\nB: 2\r\n\r\n"), limits: limits) == .complete(17))
    #expect(
      scanChunked(bytes("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), limits: limits).errorCode == .tooManyHeaders)
    let big = "0\r\nA: " + String(repeating: "x", count: 40) + "\r\n\r\n"
    #expect(scanChunked(bytes(big), limits: limits).errorCode == .headersTooLarge)
  }

  @Test func chunkLineLimit() {
    let limits = HTTP1Limits(maxChunkLineBytes: 16)
    #expect(scanChunked(bytes("5;a=bcdefghijklm\r\nhello\r\n0\r\n\r\n"), limits: limits) == .complete(30))
    #expect(scanChunked(bytes("5;a=bcdefghijklmn\r\n"), limits: limits).errorCode == .invalidChunkExtension)
    // Leading zeros are fine as long as the line is within the limit.
    #expect(scanChunked(bytes("0000000005\r\nhello\r\n0\r\n\r\n")) == .complete(24))
  }

  @Test func stopsAfterTheEnd() {
    var scanner = ChunkedBodyScanner()
    #expect(bytes("0\r\n\r\n").withUnsafeBytes { scanner.scan($0) } == .complete(5))
    #expect(bytes("junk").withUnsafeBytes { scanner.scan($0) } == .complete(0))
  }

  @Test func bodyFramerKinds() {
    var cl = BodyFramer(.contentLength(5))
    #expect(bytes("he").withUnsafeBytes { cl.consume($0) } == .needMore)
    #expect(cl.finishAtEndOfInput()?.code == .truncatedBody)
    #expect(bytes("lloGET").withUnsafeBytes { cl.consume($0) } == .complete(3))
    #expect(cl.finishAtEndOfInput() == nil)

    var none = BodyFramer(.none)
    #expect(bytes("GET").withUnsafeBytes { none.consume($0) } == .complete(0))
    #expect(BodyFramer(.contentLength(0)) == .none)

    var close = BodyFramer(.untilClose)
    #expect(bytes("anything").withUnsafeBytes { close.consume($0) } == .needMore)
    #expect(close.finishAtEndOfInput() == nil)
    #expect(BodyFramer(.upgrade) == .untilClose)

    var chunked = BodyFramer(.chunked)
    #expect(bytes("3\r\nabc\r\n").withUnsafeBytes { chunked.consume($0) } == .needMore)
    #expect(chunked.finishAtEndOfInput()?.code == .truncatedBody)
    #expect(bytes("0\r\n\r\nX").withUnsafeBytes { chunked.consume($0) } == .complete(5))
  }
}
