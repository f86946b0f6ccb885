import NIOCore
import Testing

@testable import ProxyHTTP

/// Deterministic PRNG so randomized tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func parseRequest(_ raw: [UInt8], limits: HTTP1Limits = HTTP1Limits()) -> HTTP1HeadParser.ParseResult {
  raw.withUnsafeBytes { HTTP1HeadParser.parseRequest($0, limits: limits) }
}

func parseRequest(_ raw: String, limits: HTTP1Limits = HTTP1Limits()) -> HTTP1HeadParser.ParseResult {
  parseRequest(bytes(raw), limits: limits)
}

func parseResponse(
  _ raw: String, method: HTTP1Method = .get, limits: HTTP1Limits = HTTP1Limits()
) -> HTTP1HeadParser.ParseResult {
  bytes(raw).withUnsafeBytes { HTTP1HeadParser.parseResponse($0, requestMethod: method, limits: limits) }
}

extension HTTP1HeadParser.ParseResult {
  var head: HTTP1Head? {
    if case .complete(let head, _) = self { return head }
    return nil
  }
  var framing: HTTP1Framing? {
    if case .complete(_, let framing) = self { return framing }
    return nil
  }
  var errorCode: HTTP1CodecError.Code? {
    if case .invalid(let error) = self { return error.code }
    return nil
  }
}

extension ChunkedBodyScanner.ScanResult {
  var errorCode: HTTP1CodecError.Code? {
    if case .invalid(let error) = self { return error.code }
    return nil
  }
}

func scanChunked(_ raw: [UInt8], limits: HTTP1Limits = HTTP1Limits()) -> ChunkedBodyScanner.ScanResult {
  var scanner = ChunkedBodyScanner(limits: limits)
  return raw.withUnsafeBytes { scanner.scan($0) }
}

/// One message as a connection handler would see it: the head and the body bytes it forwards.
struct DrivenMessage: Equatable {
  var head: HTTP1Head
  var framing: HTTP1Framing
  var headBytes: [UInt8]
  var body: [UInt8]
}

enum DriveOutcome: Equatable {
  case messages([DrivenMessage], leftover: [UInt8])
  case failed(HTTP1CodecError.Code, after: [DrivenMessage])
}

/// Feeds `input` in pieces of the given sizes through parser and body framer, the way a handler
/// would over its receive buffer, collecting every message (pipelining included).
func drive(
  _ input: [UInt8], pieces: [Int], responseTo method: HTTP1Method? = nil, limits: HTTP1Limits = HTTP1Limits()
) -> DriveOutcome {
  var pending: [UInt8] = []
  var done: [DrivenMessage] = []
  var current: DrivenMessage?
  var framer = BodyFramer.none
  var offset = 0
  var pieceIndex = 0
  while offset < input.count {
    let size = max(1, pieces.isEmpty ? input.count : pieces[pieceIndex % pieces.count])
    pieceIndex += 1
    let end = min(input.count, offset + size)
    pending += input[offset..<end]
    offset = end
    progress: while true {
      if var message = current {
        let progress = pending.withUnsafeBytes { framer.consume($0) }
        switch progress {
        case .needMore:
          message.body += pending
          pending = []
          current = message
          break progress
        case .complete(let n):
          message.body += pending[0..<n]
          pending.removeFirst(n)
          done.append(message)
          current = nil
        case .invalid(let error):
          return .failed(error.code, after: done)
        }
      } else {
        if pending.isEmpty { break progress }
        let result = pending.withUnsafeBytes { raw in
          if let method {
            HTTP1HeadParser.parseResponse(raw, requestMethod: method, limits: limits)
          } else {
            HTTP1HeadParser.parseRequest(raw, limits: limits)
          }
        }
        switch result {
        case .incomplete:
          break progress
        case .invalid(let error):
          return .failed(error.code, after: done)
        case .complete(let head, let framing):
          current = DrivenMessage(
            head: head, framing: framing, headBytes: Array(pending[0..<head.length]), body: [])
          pending.removeFirst(head.length)
          framer = BodyFramer(framing, limits: limits)
        }
      }
    }
  }
  if let message = current {
    if framer.finishAtEndOfInput() == nil, case .untilClose = framer {
      done.append(message)
    } else if let error = framer.finishAtEndOfInput() {
      return .failed(error.code, after: done)
    } else {
      done.append(message)
    }
  }
  return .messages(done, leftover: pending)
}

/// Random piece sizes (1...maxPiece) from a fixed seed.
func randomPieces(count: Int, maxPiece: Int, seed: UInt64) -> [Int] {
  var rng = SplitMix64(seed: seed)
  return (0..<count).map { _ in Int.random(in: 1...maxPiece, using: &rng) }
}

func string(_ buffer: ByteBuffer) -> String {
  String(buffer: buffer)
}
