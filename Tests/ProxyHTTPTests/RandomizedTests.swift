import NIOCore
import Testing

@testable import ProxyHTTP

/// A libFuzzer-free mutation test with a fixed seed: the parser and scanner must never crash, every
/// accepted head must be self-consistent, and writing it back must parse to the same head.
@Suite struct RandomizedTests {
  static let seeds: [String] = [
    "GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: keep-alive, x-a\r\nX-A: 1\r\n\r\n",
    "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
    "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n5;a=\"b\"\r\nhello\r\n0\r\nX: y\r\n\r\n",
    "GET / HTTP/1.0\r\nUser-Agent: u\r\n\r\n",
  ]
  static let interesting: [UInt8] = [
    0x00, 0x09, 0x0A, 0x0D, 0x20, 0x22, 0x2C, 0x3A, 0x3B, 0x7F, 0x80, 0xFF, 0x30, 0x66,
  ]

  func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
    var out = input
    for _ in 0..<Int.random(in: 1...4, using: &rng) where !out.isEmpty {
      let at = Int.random(in: 0..<out.count, using: &rng)
      switch Int.random(in: 0..<6, using: &rng) {
      case 0: out[at] = Self.interesting.randomElement(using: &rng)!
      case 1: out.insert(Self.interesting.randomElement(using: &rng)!, at: at)
      case 2: out.remove(at: at)
      case 3: out[at] = UInt8.random(in: 0...255, using: &rng)
      case 4: out.insert(contentsOf: out[at..<min(out.count, at + 12)], at: at)
      default: out = Array(out[0..<at])
      }
    }
    return out
  }

  @Test func mutatedRequestsNeverCrashAndStayConsistent() throws {
    var rng = SplitMix64(seed: 0xC0FFEE)
    var accepted = 0
    var rejected = 0
    for iteration in 0..<4000 {
      let seed = bytes(Self.seeds[iteration % Self.seeds.count])
      let input = mutate(seed, &rng)
      let result = parseRequest(input)
      switch result {
      case .incomplete:
        continue
      case .invalid:
        rejected += 1
        continue
      case .complete(let head, let framing):
        accepted += 1
        #expect(head.length <= input.count)
        for field in head.fields {
          #expect(field.line.upperBound <= head.length)
          #expect(field.name.upperBound <= field.value.lowerBound)
          #expect(field.value.upperBound <= field.line.upperBound)
        }
        // Written back verbatim, it parses to the same head and framing.
        var out = ByteBuffer()
        input.withUnsafeBytes { HTTP1HeadWriter.write(head, from: $0, rewrite: .verbatim, into: &out) }
        let again = out.withUnsafeReadableBytes { HTTP1HeadParser.parseRequest($0) }
        #expect(again.framing == framing)
        #expect(again.head?.fields.count == head.fields.count)
        // The body scanner copes with whatever follows.
        var framer = BodyFramer(framing)
        _ = input[head.length...].withUnsafeBytes { framer.consume($0) }
      }
    }
    #expect(accepted > 100)
    #expect(rejected > 100)
  }

  @Test func mutatedChunkedBodiesNeverCrash() {
    var rng = SplitMix64(seed: 42)
    let body = bytes("5;a=\"b\\\"c\"\r\nhello\r\nA;x=y\r\n0123456789\r\n0\r\nX: y\r\nZ: 1\r\n\r\n")
    var outcomes = [0, 0, 0]
    for _ in 0..<4000 {
      let input = mutate(body, &rng)
      var whole = ChunkedBodyScanner()
      let one = input.withUnsafeBytes { whole.scan($0) }
      // Byte by byte gives the same verdict.
      var split = ChunkedBodyScanner()
      var consumed = 0
      var verdict = ChunkedBodyScanner.ScanResult.needMore
      for b in input {
        let r = [b].withUnsafeBytes { split.scan($0) }
        consumed += 1
        if r != .needMore {
          verdict = r
          break
        }
      }
      switch (one, verdict) {
      case (.needMore, .needMore): outcomes[0] += 1
      case (.complete(let n), .complete): #expect(n == consumed); outcomes[1] += 1
      case (.invalid(let a), .invalid(let b)): #expect(a.code == b.code); outcomes[2] += 1
      default: Issue.record("whole \(one) vs split \(verdict)")
      }
    }
    #expect(outcomes.allSatisfy { $0 > 50 })
  }
}
