package import NIOCore

/// What to change when a parsed head is written out again.
package struct HTTP1HeadRewrite: Sendable {
  /// A new request-target (path and query) for the request line; nil keeps the original bytes.
  package var target: String?
  /// Replaces every Host line by `host: <host>` at the first one's position (or first).
  package var host: String?
  /// A new version for the start line (Envoy speaks HTTP/1.1 upstream); nil keeps the original.
  package var version: HTTP1Version?
  /// Leave out the lines the parser marked hop-by-hop (`HTTP1HeaderField.isHopByHop`).
  package var dropHopByHop: Bool
  /// Further field indices to leave out (e.g. headers a route removes).
  package var dropIndices: [Int]
  /// Lines appended after the kept ones, in order. Pairs that are not a token name and a valid
  /// field value (no CR, LF, NUL or other CTL) are skipped, so config can never split a head.
  package var addedHeaders: [(name: String, value: String)]

  package init(
    target: String? = nil, host: String? = nil, version: HTTP1Version? = nil, dropHopByHop: Bool = true,
    dropIndices: [Int] = [], addedHeaders: [(name: String, value: String)] = []
  ) {
    self.target = target
    self.host = host
    self.version = version
    self.dropHopByHop = dropHopByHop
    self.dropIndices = dropIndices
    self.addedHeaders = addedHeaders
  }

  /// Writes the head exactly as parsed (minus leading empty lines before a request line).
  package static let verbatim = HTTP1HeadRewrite(dropHopByHop: false)
}

/// Texts of Envoy's local replies, so clients and tests see the same bodies.
package enum HTTP1LocalReplyText {
  /// 503 when the cluster has no healthy endpoint (details `no_healthy_upstream`).
  package static let noHealthyUpstream = "no healthy upstream"
  /// 503 when connecting upstream failed (details
  /// `upstream_reset_before_response_started{connection_failure}`).
  package static let upstreamConnectionFailure =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
  /// 503 when the upstream reset or closed before sending headers (`...{connection_termination}`).
  package static let upstreamConnectionTermination =
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
  /// 504 when the route timeout fires (details `upstream_response_timeout`).
  package static let upstreamRequestTimeout = "upstream request timeout"
  // 404 for no route (details `route_not_found`) has an empty body.
}

/// Serialises heads into a `ByteBuffer`: rewritten forwards and local replies.
///
/// Forwarded lines are copied byte for byte from the receive buffer; only the start line, Host and
/// added lines are generated. Lines are written `name: value\r\n` with names as given.
package enum HTTP1HeadWriter {
  /// Writes `head` (parsed from `source`) with `rewrite` applied, then `body` if given, so a head
  /// and a small body leave in one write.
  package static func write(
    _ head: HTTP1Head, from source: UnsafeRawBufferPointer, rewrite: HTTP1HeadRewrite = HTTP1HeadRewrite(),
    body: UnsafeRawBufferPointer? = nil, into buffer: inout ByteBuffer
  ) {
    buffer.reserveCapacity(
      minimumWritableBytes: capacity(for: head, rewrite: rewrite, bodyBytes: body?.count ?? 0))

    // Kept lines are contiguous in the source more often than not: copy them in runs.
    var runStart = 0
    var runEnd = 0
    if writeStartLine(head, from: source, rewrite: rewrite, into: &buffer) {
      runStart = head.startLine.lowerBound
      runEnd = head.startLine.upperBound + 2
    }
    func flush(_ buffer: inout ByteBuffer) {
      if runEnd > runStart { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: source[runStart..<runEnd])) }
      runStart = 0
      runEnd = 0
    }
    var hostWritten = false
    if let host = rewrite.host, head.hostIndex == nil {
      flush(&buffer)
      writeField("host", host, into: &buffer)
      hostWritten = true
    }
    for index in head.fields.indices {
      let field = head.fields[index]
      if let host = rewrite.host, field.known == .host {
        if !hostWritten {
          flush(&buffer)
          writeField("host", host, into: &buffer)
          hostWritten = true
        }
        continue
      }
      if rewrite.dropHopByHop && field.isHopByHop { continue }
      if !rewrite.dropIndices.isEmpty && rewrite.dropIndices.contains(index) { continue }
      let line = field.line
      if runEnd != line.lowerBound {
        flush(&buffer)
        runStart = line.lowerBound
      }
      runEnd = line.upperBound
    }
    flush(&buffer)
    if rewrite.dropHopByHop && head.wantsTETrailers {
      buffer.writeStaticString("te: trailers\r\n")
    }
    for (name, value) in rewrite.addedHeaders {
      writeFieldIfValid(name, value, into: &buffer)
    }
    buffer.writeStaticString("\r\n")
    if let body { buffer.writeBytes(body) }
  }

  /// The bytes `write` may need (an upper bound): allocate the output buffer with it, so writing never
  /// grows it.
  package static func capacity(for head: HTTP1Head, rewrite: HTTP1HeadRewrite, bodyBytes: Int) -> Int {
    var extra = 64 + bodyBytes + (rewrite.target?.utf8.count ?? 0) + (rewrite.host?.utf8.count ?? 0)
    for (name, value) in rewrite.addedHeaders { extra += name.utf8.count + value.utf8.count + 4 }
    return head.length + extra
  }

  /// `write` over a `ByteBuffer` whose readable bytes start where the head started.
  package static func write(
    _ head: HTTP1Head, from source: ByteBuffer, rewrite: HTTP1HeadRewrite = HTTP1HeadRewrite(),
    body: ByteBuffer? = nil, into buffer: inout ByteBuffer
  ) {
    source.withUnsafeReadableBytes { src in
      if let body {
        body.withUnsafeReadableBytes { write(head, from: src, rewrite: rewrite, body: $0, into: &buffer) }
      } else {
        write(head, from: src, rewrite: rewrite, body: nil, into: &buffer)
      }
    }
  }

  /// Writes a generated start line and CRLF, or returns true when the original one is kept.
  private static func writeStartLine(
    _ head: HTTP1Head, from source: UnsafeRawBufferPointer, rewrite: HTTP1HeadRewrite,
    into buffer: inout ByteBuffer
  ) -> Bool {
    switch head.kind {
    case .request(_, let target):
      guard rewrite.target != nil || (rewrite.version != nil && rewrite.version != head.version) else {
        return true
      }
      buffer.writeBytes(UnsafeRawBufferPointer(rebasing: source[head.methodRange]))
      buffer.writeStaticString(" ")
      if let newTarget = rewrite.target {
        buffer.writeString(newTarget)
      } else {
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: source[target]))
      }
      buffer.writeStaticString(" ")
      buffer.writeStaticString((rewrite.version ?? head.version).text)
    case .response(let status, let reason):
      guard let version = rewrite.version, version != head.version else {
        return true
      }
      buffer.writeStaticString(version.text)
      buffer.writeStaticString(" ")
      buffer.writeString(String(status))
      buffer.writeStaticString(" ")
      buffer.writeBytes(UnsafeRawBufferPointer(rebasing: source[reason]))
    }
    buffer.writeStaticString("\r\n")
    return false
  }

  private static func writeField(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
    buffer.writeString(name)
    buffer.writeStaticString(": ")
    buffer.writeString(value)
    buffer.writeStaticString("\r\n")
  }

  /// Writes `name: value` when `isValidField` holds; otherwise writes nothing. One pass over the
  /// contiguous UTF-8 of each string.
  private static func writeFieldIfValid(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
    func write(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
      guard isValidField(name: name, value: value) else { return }
      buffer.writeBytes(UnsafeRawBufferPointer(name))
      buffer.writeStaticString(": ")
      buffer.writeBytes(UnsafeRawBufferPointer(value))
      buffer.writeStaticString("\r\n")
    }
    // Native strings lend their UTF-8 in place (no copy of either string on the request path).
    let done = name.utf8.withContiguousStorageIfAvailable { name in
      value.utf8.withContiguousStorageIfAvailable { value in write(name, value) } != nil
    }
    guard done != true else { return }
    var name = name
    var value = value
    name.withUTF8 { name in value.withUTF8 { value in write(name, value) } }
  }

  /// A token name and a value of field characters without leading/trailing whitespace.
  package static func isValidField(name: String, value: String) -> Bool {
    var name = name
    var value = value
    return name.withUTF8 { name in value.withUTF8 { value in isValidField(name: name, value: value) } }
  }

  private static func isValidField(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>)
    -> Bool
  {
    guard !name.isEmpty else { return false }
    for byte in name where !HTTP1Bytes.isTokenChar(byte) { return false }
    for byte in value where !HTTP1Bytes.isFieldValueChar(byte) { return false }
    if let first = value.first, HTTP1Bytes.isOWS(first) { return false }
    if let last = value.last, HTTP1Bytes.isOWS(last) { return false }
    return true
  }

  // MARK: Local replies

  /// A complete local reply: status line, `content-length`, `content-type: text/plain` when there is
  /// a body, `extraHeaders`, `connection: close` when `close`, then the body (left out for a HEAD
  /// request, with content-length still announcing it). No `server` or `date` line is generated:
  /// pass them in `extraHeaders` if wanted.
  package static func writeLocalReply(
    status: Int, reason: String? = nil, body: String = "",
    extraHeaders: [(name: String, value: String)] = [], close: Bool, version: HTTP1Version = .http11,
    isHeadRequest: Bool = false, into buffer: inout ByteBuffer
  ) {
    buffer.reserveCapacity(minimumWritableBytes: 128 + body.utf8.count)
    buffer.writeStaticString(version.text)
    buffer.writeStaticString(" ")
    buffer.writeString(String(status))
    buffer.writeStaticString(" ")
    buffer.writeString(reason ?? reasonPhrase(status))
    buffer.writeStaticString("\r\n")
    let noBody = status < 200 || status == 204 || status == 304
    if !noBody {
      buffer.writeStaticString("content-length: ")
      buffer.writeString(String(body.utf8.count))
      buffer.writeStaticString("\r\n")
      if !body.isEmpty { buffer.writeStaticString("content-type: text/plain\r\n") }
    }
    for (name, value) in extraHeaders {
      writeFieldIfValid(name, value, into: &buffer)
    }
    if close { buffer.writeStaticString("connection: close\r\n") }
    buffer.writeStaticString("\r\n")
    if !noBody && !isHeadRequest { buffer.writeString(body) }
  }

  /// Envoy's answer to a request the codec rejected: the error's status, its reason phrase as a
  /// text/plain body, and `connection: close` (the connection cannot be trusted after a framing
  /// error).
  package static func writeLocalReply(
    for error: HTTP1CodecError, version: HTTP1Version = .http11, isHeadRequest: Bool = false,
    into buffer: inout ByteBuffer
  ) {
    let status = error.httpStatus
    writeLocalReply(
      status: status, body: reasonPhrase(status), close: true, version: version, isHeadRequest: isHeadRequest,
      into: &buffer)
  }

  /// `HTTP/1.1 100 Continue`, for answering `Expect: 100-continue` locally.
  package static func writeContinue(into buffer: inout ByteBuffer) {
    buffer.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
  }

  /// The reason phrases Envoy uses (RFC 9110 §15).
  package static func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 100: "Continue"
    case 101: "Switching Protocols"
    case 200: "OK"
    case 204: "No Content"
    case 301: "Moved Permanently"
    case 302: "Found"
    case 304: "Not Modified"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 408: "Request Timeout"
    case 413: "Payload Too Large"
    case 426: "Upgrade Required"
    case 429: "Too Many Requests"
    case 431: "Request Header Fields Too Large"
    case 500: "Internal Server Error"
    case 501: "Not Implemented"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    case 505: "HTTP Version Not Supported"
    default: "Unknown"
    }
  }
}
