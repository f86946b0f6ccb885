/// Counts down a Content-Length body.
package struct ContentLengthBody: Hashable, Sendable {
  package private(set) var remaining: Int

  package init(length: Int) {
    self.remaining = length
  }

  /// Takes up to `remaining` of `available` bytes; returns how many belong to the body.
  package mutating func consume(_ available: Int) -> Int {
    let take = min(available, remaining)
    remaining -= take
    return take
  }
}

/// Tracks where the body after a head ends, whatever its framing, with one API.
///
/// Feed it the bytes after the head as they arrive; every byte it reports as part of the body
/// can be forwarded verbatim (chunked included: both sides speak HTTP/1.1 chunked).
package enum BodyFramer: Hashable, Sendable {
  case none
  case contentLength(ContentLengthBody)
  case chunked(ChunkedBodyScanner)
  /// Until the connection closes: response bodies without length, and upgraded/tunnelled bytes.
  case untilClose

  package enum Progress: Hashable, Sendable {
    /// All the bytes given belong to the body; it goes on.
    case needMore
    /// The body ended after this many of the bytes given (0 for a body that was already over).
    case complete(Int)
    case invalid(HTTP1CodecError)
  }

  package init(_ framing: HTTP1Framing, limits: HTTP1Limits = HTTP1Limits()) {
    switch framing {
    case .none: self = .none
    case .contentLength(let n): self = n > 0 ? .contentLength(ContentLengthBody(length: n)) : .none
    case .chunked: self = .chunked(ChunkedBodyScanner(limits: limits))
    case .untilClose, .upgrade: self = .untilClose
    }
  }

  /// Takes the next bytes that arrived after the head (or after earlier body bytes).
  package mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Progress {
    switch self {
    case .none:
      return .complete(0)
    case .untilClose:
      return .needMore
    case .contentLength(var body):
      let taken = body.consume(bytes.count)
      self = .contentLength(body)
      return body.remaining == 0 ? .complete(taken) : .needMore
    case .chunked(var scanner):
      let result = scanner.scan(bytes)
      self = .chunked(scanner)
      switch result {
      case .needMore: return .needMore
      case .complete(let n): return .complete(n)
      case .invalid(let error): return .invalid(error)
      }
    }
  }

  /// The peer closed its side: an `untilClose` body ends there, a length-delimited one is truncated.
  package func finishAtEndOfInput() -> HTTP1CodecError? {
    switch self {
    case .none, .untilClose: return nil
    case .contentLength(let body):
      return body.remaining == 0 ? nil : HTTP1CodecError(.truncatedBody, "connection closed inside the body")
    case .chunked(let scanner):
      return scanner.isComplete ? nil : HTTP1CodecError(.truncatedBody, "connection closed inside the body")
    }
  }
}
