package import NIOCore

/// HTTP version of a parsed message. Only 1.0 and 1.1 are accepted on the wire.
package enum HTTP1Version: Hashable, Sendable {
  case http10
  case http11

  package var text: StaticString {
    switch self {
    case .http10: "HTTP/1.0"
    case .http11: "HTTP/1.1"
    }
  }
}

/// A request method: the common ones as cases, any other token kept as its string.
package enum HTTP1Method: Hashable, Sendable {
  case get, head, post, put, delete, connect, options, trace, patch
  case other(String)

  init(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) {
    // Methods are case-sensitive (RFC 9110 §9.1): compare exactly.
    func eq(_ s: StaticString) -> Bool {
      guard s.utf8CodeUnitCount == end - start else { return false }
      for i in 0..<(end - start) where bytes[start + i] != s.utf8Start[i] { return false }
      return true
    }
    switch end - start {
    case 3 where eq("GET"): self = .get
    case 3 where eq("PUT"): self = .put
    case 4 where eq("HEAD"): self = .head
    case 4 where eq("POST"): self = .post
    case 5 where eq("PATCH"): self = .patch
    case 5 where eq("TRACE"): self = .trace
    case 6 where eq("DELETE"): self = .delete
    case 7 where eq("CONNECT"): self = .connect
    case 7 where eq("OPTIONS"): self = .options
    default: self = .other(HTTP1Bytes.string(bytes, start..<end))
    }
  }

  package var name: String {
    switch self {
    case .get: "GET"
    case .head: "HEAD"
    case .post: "POST"
    case .put: "PUT"
    case .delete: "DELETE"
    case .connect: "CONNECT"
    case .options: "OPTIONS"
    case .trace: "TRACE"
    case .patch: "PATCH"
    case .other(let s): s
    }
  }
}

/// How the body that follows a head is delimited (RFC 9112 §6.3).
package enum HTTP1Framing: Hashable, Sendable {
  /// No body: the next message starts right after the head.
  case none
  /// Exactly this many body bytes follow.
  case contentLength(Int)
  /// A chunked body follows; scan it with `ChunkedBodyScanner`.
  case chunked
  /// The body runs until the connection closes (responses only).
  case untilClose
  /// After this head the connection carries opaque bytes: `101 Switching Protocols`, a 2xx to
  /// CONNECT, or a CONNECT request (whose bytes become the tunnel once upstream answers 2xx).
  case upgrade
}

/// Limits that turn into 431 when exceeded. Defaults are Envoy's (max_request_headers_kb = 60,
/// max_headers_count = 100).
package struct HTTP1Limits: Hashable, Sendable {
  /// Largest head (start line, fields and the empty line), and the largest trailer section.
  package var maxHeadBytes: Int = 60 * 1024
  /// Most header fields in a head, and most trailer fields.
  package var maxHeaderCount: Int = 100
  /// Longest chunk-size line (size plus extensions), CRLF excluded.
  package var maxChunkLineBytes: Int = 4096

  package init(maxHeadBytes: Int = 60 * 1024, maxHeaderCount: Int = 100, maxChunkLineBytes: Int = 4096) {
    self.maxHeadBytes = maxHeadBytes
    self.maxHeaderCount = maxHeaderCount
    self.maxChunkLineBytes = maxChunkLineBytes
  }
}

/// A field name the codec recognises while parsing.
package enum HTTP1KnownHeader: UInt8, Hashable, Sendable {
  case other, host, contentLength, transferEncoding, connection, keepAlive, proxyConnection
  case te, upgrade, expect
}

/// One header line as offsets into the bytes its head was parsed from.
package struct HTTP1HeaderField: Hashable, Sendable {
  var nameStart: UInt32
  var nameEnd: UInt32
  var valueStart: UInt32
  var valueEnd: UInt32
  /// One past the line's LF.
  var lineEnd: UInt32
  package var known: HTTP1KnownHeader
  /// True when the proxy must not forward this line (hop-by-hop, see `HTTP1Head`).
  package var isHopByHop: Bool

  package var name: Range<Int> { Int(nameStart)..<Int(nameEnd) }
  /// The value with leading and trailing OWS removed.
  package var value: Range<Int> { Int(valueStart)..<Int(valueEnd) }
  /// The whole line including its CRLF, as it should be copied when forwarded verbatim.
  package var line: Range<Int> { Int(nameStart)..<Int(lineEnd) }
}

/// A parsed request or response head: offsets into the bytes it was parsed from.
///
/// Offsets count from the first byte handed to `HTTP1HeadParser`. Accessors that produce strings
/// take those bytes again (`UnsafeRawBufferPointer`, or a `ByteBuffer` whose readable bytes start
/// where the head started), so nothing is copied unless asked for.
///
/// Hop-by-hop fields (`isHopByHop`, `hopByHopIndices`): Connection, Keep-Alive, Proxy-Connection,
/// Upgrade, TE, and every field named by a Connection token. Exceptions: Connection and Upgrade are
/// kept on an upgrade (`isUpgrade`); `TE: trailers` is kept (as Envoy does; a TE that lists
/// `trailers` among others is dropped and `wantsTETrailers` tells the writer to add `te: trailers`);
/// Transfer-Encoding is kept because it is only ever `chunked` and the proxy forwards chunked bytes
/// verbatim; Trailer is end-to-end (RFC 9110 §6.6.2) and kept with the trailers it announces.
package struct HTTP1Head: Hashable, Sendable {
  package enum Kind: Hashable, Sendable {
    case request(method: HTTP1Method, target: Range<Int>)
    case response(status: Int, reason: Range<Int>)
  }

  package var kind: Kind
  package var version: HTTP1Version
  package var fields: [HTTP1HeaderField]
  /// Bytes from the first byte given to the parser through the empty line's LF.
  package var length: Int
  /// The start line without its CRLF (after any empty lines skipped before a request line).
  package var startLine: Range<Int>
  /// The method token's range (requests only; empty for responses).
  package var methodRange: Range<Int>
  /// Whether the connection may carry another message after this one (RFC 9112 §9.3).
  package var keepAlive: Bool
  /// An Upgrade field is present and Connection lists `upgrade`.
  package var isUpgrade: Bool
  /// `Expect: 100-continue` is present.
  package var expectsContinue: Bool
  /// A TE field listed `trailers` but was dropped because it listed other codings too.
  package var wantsTETrailers: Bool
  /// Index of the Host field, if any.
  package var hostIndex: Int?

  package var isRequest: Bool {
    if case .request = kind { return true }
    return false
  }

  package var method: HTTP1Method? {
    if case .request(let method, _) = kind { return method }
    return nil
  }

  package var targetRange: Range<Int>? {
    if case .request(_, let target) = kind { return target }
    return nil
  }

  package var status: Int? {
    if case .response(let status, _) = kind { return status }
    return nil
  }

  /// Indices into `fields` of the lines the proxy must not forward.
  package var hopByHopIndices: [Int] {
    fields.indices.filter { fields[$0].isHopByHop }
  }

  // MARK: Accessors over the source bytes

  package func target(in bytes: UnsafeRawBufferPointer) -> String? {
    targetRange.map { HTTP1Bytes.string(bytes, $0) }
  }

  package func reason(in bytes: UnsafeRawBufferPointer) -> String? {
    if case .response(_, let reason) = kind { return HTTP1Bytes.string(bytes, reason) }
    return nil
  }

  /// Index of the first field named `name` (ASCII case-insensitive).
  package func headerIndex(named name: String, in bytes: UnsafeRawBufferPointer) -> Int? {
    fields.firstIndex { HTTP1Bytes.equalsIgnoringASCIICase(bytes, Int($0.nameStart), Int($0.nameEnd), name) }
  }

  /// Value range of the first field named `name`, for zero-copy use.
  package func headerValueRange(named name: String, in bytes: UnsafeRawBufferPointer) -> Range<Int>? {
    headerIndex(named: name, in: bytes).map { fields[$0].value }
  }

  /// First value of the field named `name`, OWS-trimmed.
  package func header(named name: String, in bytes: UnsafeRawBufferPointer) -> String? {
    headerValueRange(named: name, in: bytes).map { HTTP1Bytes.string(bytes, $0) }
  }

  /// Every value of fields named `name`, in order (lines are not split on commas).
  package func headerValues(named name: String, in bytes: UnsafeRawBufferPointer) -> [String] {
    fields.compactMap { field in
      HTTP1Bytes.equalsIgnoringASCIICase(bytes, Int(field.nameStart), Int(field.nameEnd), name)
        ? HTTP1Bytes.string(bytes, field.value) : nil
    }
  }

  package func name(at index: Int, in bytes: UnsafeRawBufferPointer) -> String {
    HTTP1Bytes.string(bytes, fields[index].name)
  }

  package func value(at index: Int, in bytes: UnsafeRawBufferPointer) -> String {
    HTTP1Bytes.string(bytes, fields[index].value)
  }

  // `ByteBuffer` forms: the buffer's readable bytes must start where the head started.

  package func target(in buffer: ByteBuffer) -> String? {
    buffer.withUnsafeReadableBytes { target(in: $0) }
  }

  package func header(named name: String, in buffer: ByteBuffer) -> String? {
    buffer.withUnsafeReadableBytes { header(named: name, in: $0) }
  }

  package func headerValues(named name: String, in buffer: ByteBuffer) -> [String] {
    buffer.withUnsafeReadableBytes { headerValues(named: name, in: $0) }
  }

  /// The first value of `name` as a slice of `buffer` sharing its storage (no copy).
  package func headerSlice(named name: String, in buffer: ByteBuffer) -> ByteBuffer? {
    guard let range = buffer.withUnsafeReadableBytes({ headerValueRange(named: name, in: $0) }) else {
      return nil
    }
    return buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count)
  }
}
