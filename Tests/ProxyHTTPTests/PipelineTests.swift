import Testing

@testable import ProxyHTTP

@Suite struct PipelineTests {
  static let pipelined =
    "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
    + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    + "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
    + "\r\nGET /d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"

  func check(_ outcome: DriveOutcome) {
    guard case .messages(let messages, let leftover) = outcome else {
      Issue.record("failed: \(outcome)")
      return
    }
    #expect(leftover.isEmpty)
    #expect(messages.count == 4)
    guard messages.count == 4 else { return }
    let targets = messages.map { m in m.headBytes.withUnsafeBytes { m.head.target(in: $0) } }
    #expect(targets == ["/a", "/b", "/c", "/d"])
    #expect(messages.map(\.framing) == [.none, .contentLength(5), .chunked, .none])
    #expect(messages[1].body == bytes("hello"))
    #expect(messages[2].body == bytes("3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"))
    #expect(messages[3].head.keepAlive)
    // Everything forwarded, byte for byte.
    #expect(messages.flatMap { $0.headBytes + $0.body } == bytes(Self.pipelined))
  }

  @Test func inOneBuffer() {
    check(drive(bytes(Self.pipelined), pieces: []))
  }

  @Test func byteByByte() {
    check(drive(bytes(Self.pipelined), pieces: [1]))
  }

  @Test(arguments: [1, 2, 3, 42, 99])
  func randomPieces(seed: UInt64) {
    check(
      drive(bytes(Self.pipelined), pieces: ProxyHTTPTests.randomPieces(count: 64, maxPiece: 17, seed: seed)))
  }

  @Test func everyTwoWaySplit() {
    let raw = bytes(Self.pipelined)
    for k in 1..<raw.count {
      check(drive(raw, pieces: [k, raw.count]))
    }
  }

  @Test func responsesAcrossSplits() {
    let raw = bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;e\r\npedia\r\n0\r\n\r\n")
    for pieces in [[], [1], [3, 7], ProxyHTTPTests.randomPieces(count: 20, maxPiece: 8, seed: 5)] {
      guard case .messages(let ms, let left) = drive(raw, pieces: pieces, responseTo: .get) else {
        Issue.record("failed")
        continue
      }
      #expect(left.isEmpty)
      #expect(ms.count == 1)
      #expect(ms.first?.body == bytes("4\r\nwiki\r\n5;e\r\npedia\r\n0\r\n\r\n"))
    }
    // Until-close body ends at end of input.
    let close = bytes("HTTP/1.0 200 OK\r\n\r\nsome body")
    guard case .messages(let ms, _) = drive(close, pieces: [4], responseTo: .get) else {
      Issue.record("failed")
      return
    }
    #expect(ms.first?.body == bytes("some body"))
    // A truncated length-delimited body is an error at end of input.
    #expect(
      drive(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"), pieces: [3], responseTo: .get)
        == .failed(.truncatedBody, after: []))
  }

  @Test func smuggledSecondRequestIsNotHidden() {
    // A front end honouring CL would see one request; one honouring TE would see two. We reject.
    let raw = bytes(
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED"
    )
    #expect(drive(raw, pieces: []) == .failed(.contentLengthWithTransferEncoding, after: []))
    // A bad chunk in a later pipelined message fails after the earlier ones were delivered.
    let second = bytes(
      "GET /ok HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX"
    )
    guard case .failed(let code, let before) = drive(second, pieces: [5]) else {
      Issue.record("accepted")
      return
    }
    #expect(code == .missingChunkDataTerminator)
    #expect(before.count == 1)
  }
}
