/// Parses one HTTP/1.x request or response head into offsets and decides its body framing.
///
/// Pure functions over the receive buffer's readable bytes: no allocation but the field array
/// (and a `String` for an unusual method). Call again with more bytes after `.incomplete`.
/// Strictness is at least llhttp's: CRLF only, no obs-fold, token-only names and methods, no
/// whitespace before a colon or the first field, no CTL in values, no SP/CTL/non-ASCII in the
/// target, only HTTP/1.0 and HTTP/1.1, ambiguous framing rejected (RFC 9112 §6.3).
package enum HTTP1HeadParser {
  package enum ParseResult: Hashable, Sendable {
    /// The head is not complete yet (and within limits): read more.
    case incomplete
    /// A complete head and the framing of the body that follows it at `head.length`.
    case complete(HTTP1Head, HTTP1Framing)
    case invalid(HTTP1CodecError)
  }

  /// Parses a request head at the start of `bytes`.
  package static func parseRequest(
    _ bytes: UnsafeRawBufferPointer, limits: HTTP1Limits = HTTP1Limits()
  ) -> ParseResult {
    var storage: [HTTP1HeaderField] = []
    return parseRequest(bytes, limits: limits, fieldStorage: &storage)
  }

  /// As `parseRequest(_:limits:)`, with the field array taken from `fieldStorage` (emptied, its capacity
  /// kept): a connection that hands back a finished head's `fields` parses the next head without
  /// allocating.
  package static func parseRequest(
    _ bytes: UnsafeRawBufferPointer, limits: HTTP1Limits = HTTP1Limits(),
    fieldStorage: inout [HTTP1HeaderField]
  ) -> ParseResult {
    var p = Parser(bytes: bytes, limits: limits)
    swap(&p.storage, &fieldStorage)
    do throws(HTTP1ParseStop) {
      return try p.parseRequest()
    } catch {
      switch error {
      case .incomplete: return .incomplete
      case .invalid(let error): return .invalid(error)
      }
    }
  }

  /// Parses a response head at the start of `bytes`; `requestMethod` is the method of the request
  /// it answers (HEAD and CONNECT change the framing).
  package static func parseResponse(
    _ bytes: UnsafeRawBufferPointer, requestMethod: HTTP1Method, limits: HTTP1Limits = HTTP1Limits()
  ) -> ParseResult {
    var storage: [HTTP1HeaderField] = []
    return parseResponse(bytes, requestMethod: requestMethod, limits: limits, fieldStorage: &storage)
  }

  /// As `parseResponse(_:requestMethod:limits:)`, reusing `fieldStorage` as `parseRequest` does.
  package static func parseResponse(
    _ bytes: UnsafeRawBufferPointer, requestMethod: HTTP1Method, limits: HTTP1Limits = HTTP1Limits(),
    fieldStorage: inout [HTTP1HeaderField]
  ) -> ParseResult {
    var p = Parser(bytes: bytes, limits: limits)
    swap(&p.storage, &fieldStorage)
    do throws(HTTP1ParseStop) {
      return try p.parseResponse(requestMethod: requestMethod)
    } catch {
      switch error {
      case .incomplete: return .incomplete
      case .invalid(let error): return .invalid(error)
      }
    }
  }
}

enum HTTP1ParseStop: Error {
  case incomplete
  case invalid(HTTP1CodecError)
}

private typealias B = HTTP1Bytes

private struct Parser {
  let bytes: UnsafeRawBufferPointer
  let limits: HTTP1Limits
  /// Bytes we may look at: the head may not be longer than `limits.maxHeadBytes`.
  let end: Int
  var i = 0
  /// The array the head's fields go into (a caller's, emptied; see `fieldStorage`).
  var storage: [HTTP1HeaderField] = []

  init(bytes: UnsafeRawBufferPointer, limits: HTTP1Limits) {
    self.bytes = bytes
    self.limits = limits
    self.end = min(bytes.count, limits.maxHeadBytes)
  }

  /// Thrown when `i` reached `end`: more bytes may finish the head, unless the limit is reached.
  var outOfBytes: HTTP1ParseStop {
    bytes.count > limits.maxHeadBytes
      ? .invalid(HTTP1CodecError(.headersTooLarge, "head exceeds \(limits.maxHeadBytes) bytes"))
      : .incomplete
  }

  @inline(__always)
  func byte(_ at: Int) throws(HTTP1ParseStop) -> UInt8 {
    guard at < end else { throw outOfBytes }
    return bytes[at]
  }

  static func fail(_ code: HTTP1CodecError.Code, _ message: String) -> HTTP1ParseStop {
    .invalid(HTTP1CodecError(code, message))
  }

  /// Expects CRLF at `i` and steps over it.
  mutating func crlf(_ what: HTTP1CodecError.Code, _ context: String) throws(HTTP1ParseStop) {
    let c = try byte(i)
    guard c == B.cr else {
      throw c == B.lf
        ? Self.fail(.bareLineFeed, "bare LF after \(context)")
        : Self.fail(what, "unexpected byte after \(context)")
    }
    guard try byte(i + 1) == B.lf else {
      throw Self.fail(.bareLineFeed, "CR not followed by LF after \(context)")
    }
    i += 2
  }

  /// Reads `HTTP/1.0` or `HTTP/1.1` at `i`.
  mutating func version() throws(HTTP1ParseStop) -> HTTP1Version {
    let prefix: StaticString = "HTTP/1."
    for k in 0..<7 where try byte(i + k) != prefix.utf8Start[k] {
      throw Self.fail(.invalidVersion, "expected HTTP/1.0 or HTTP/1.1")
    }
    let minor = try byte(i + 7)
    i += 8
    switch minor {
    case 0x30: return .http10
    case 0x31: return .http11
    default: throw Self.fail(.invalidVersion, "expected HTTP/1.0 or HTTP/1.1")
    }
  }

  // MARK: Start lines

  mutating func parseRequest() throws(HTTP1ParseStop) -> HTTP1HeadParser.ParseResult {
    // RFC 9112 §2.2: ignore empty lines (CRLF) received before the request line.
    while try byte(i) == B.cr {
      guard try byte(i + 1) == B.lf else { throw Self.fail(.bareLineFeed, "CR not followed by LF") }
      i += 2
    }
    let lineStart = i
    while B.isTokenChar(try byte(i)) { i += 1 }
    let methodEnd = i
    guard methodEnd > lineStart else {
      throw Self.fail(try byte(i) == B.lf ? .bareLineFeed : .invalidStartLine, "invalid method")
    }
    guard try byte(i) == B.sp else { throw Self.fail(.invalidStartLine, "invalid character in method") }
    i += 1
    let targetStart = i
    while B.isTargetChar(try byte(i)) { i += 1 }
    let targetEnd = i
    guard targetEnd > targetStart else { throw Self.fail(.invalidTarget, "empty request-target") }
    guard try byte(i) == B.sp else {
      throw Self.fail(.invalidTarget, "invalid character in request-target")
    }
    i += 1
    let version = try version()
    let lineEnd = i
    try crlf(.invalidVersion, "request line")

    let method = HTTP1Method(bytes, lineStart, methodEnd)
    var head = HTTP1Head(
      kind: .request(method: method, target: targetStart..<targetEnd), version: version, fields: [],
      length: 0, startLine: lineStart..<lineEnd, methodRange: lineStart..<methodEnd, keepAlive: false,
      isUpgrade: false, expectsContinue: false, wantsTETrailers: false, hostIndex: nil)
    try fields(into: &head)
    let facts = try analyze(&head, isRequest: true)
    let framing = try requestFraming(&head, method: method, facts: facts, target: targetStart..<targetEnd)
    return .complete(head, framing)
  }

  mutating func parseResponse(requestMethod: HTTP1Method) throws(HTTP1ParseStop)
    -> HTTP1HeadParser.ParseResult
  {
    let lineStart = i
    let version = try version()
    guard try byte(i) == B.sp else { throw Self.fail(.invalidVersion, "expected SP after version") }
    i += 1
    var status = 0
    for _ in 0..<3 {
      let d = try byte(i)
      guard d &- 0x30 < 10 else { throw Self.fail(.invalidStartLine, "status code is not 3 digits") }
      status = status * 10 + Int(d &- 0x30)
      i += 1
    }
    guard status >= 100 else { throw Self.fail(.invalidStartLine, "status code below 100") }
    var reasonStart = i
    if try byte(i) == B.sp {
      i += 1
      reasonStart = i
      while true {
        let c = try byte(i)
        if c == B.cr || c == B.lf { break }
        guard B.isFieldValueChar(c) else { throw Self.fail(.invalidStartLine, "invalid character in reason") }
        i += 1
      }
    }
    let lineEnd = i
    try crlf(.invalidStartLine, "status code")

    var head = HTTP1Head(
      kind: .response(status: status, reason: reasonStart..<lineEnd), version: version, fields: [],
      length: 0, startLine: lineStart..<lineEnd, methodRange: lineStart..<lineStart, keepAlive: false,
      isUpgrade: false, expectsContinue: false, wantsTETrailers: false, hostIndex: nil)
    try fields(into: &head)
    let facts = try analyze(&head, isRequest: false)
    let framing = try responseFraming(&head, status: status, requestMethod: requestMethod, facts: facts)
    return .complete(head, framing)
  }

  // MARK: Field lines

  mutating func fields(into head: inout HTTP1Head) throws(HTTP1ParseStop) {
    var fields: [HTTP1HeaderField] = []
    swap(&fields, &storage)
    fields.removeAll(keepingCapacity: true)
    if fields.capacity < 16 { fields.reserveCapacity(16) }
    while true {
      let first = try byte(i)
      if first == B.cr {
        guard try byte(i + 1) == B.lf else { throw Self.fail(.bareLineFeed, "CR not followed by LF") }
        i += 2
        break
      }
      if first == B.lf { throw Self.fail(.bareLineFeed, "bare LF") }
      if B.isOWS(first) {
        throw fields.isEmpty
          ? Self.fail(.leadingWhitespace, "whitespace before the first header line")
          : Self.fail(.obsoleteLineFolding, "obsolete line folding")
      }
      let nameStart = i
      // Tight local loops over the name and value: this is the parser's hot path.
      var j = i
      while j < end && B.isTokenChar(bytes[j]) { j += 1 }
      i = j
      let nameEnd = i
      let c = try byte(i)
      guard c == B.colon, nameEnd > nameStart else {
        if B.isOWS(c) && nameEnd > nameStart {
          throw Self.fail(.whitespaceBeforeColon, "whitespace between header name and colon")
        }
        throw Self.fail(c == B.lf ? .bareLineFeed : .invalidHeaderName, "invalid character in header name")
      }
      j += 1
      // Leading OWS, then the value up to CR; trailing OWS is trimmed by tracking `valueEnd`.
      while j < end && B.isOWS(bytes[j]) { j += 1 }
      let valueStart = j
      var valueEnd = j
      while j < end {
        let v = bytes[j]
        if v > B.sp && v != 0x7F {  // field-vchar or obs-text: the common case
          j += 1
          valueEnd = j
          continue
        }
        if v == B.cr { break }
        guard B.isOWS(v) else {
          i = j
          throw v == B.lf
            ? Self.fail(.bareLineFeed, "bare LF in header line")
            : Self.fail(.invalidHeaderValue, "invalid character in header value")
        }
        j += 1
      }
      i = j
      guard i < end else { throw outOfBytes }
      guard try byte(i + 1) == B.lf else { throw Self.fail(.bareLineFeed, "CR not followed by LF") }
      i += 2
      guard fields.count < limits.maxHeaderCount else {
        throw Self.fail(.tooManyHeaders, "more than \(limits.maxHeaderCount) headers")
      }
      fields.append(
        HTTP1HeaderField(
          nameStart: UInt32(nameStart), nameEnd: UInt32(nameEnd), valueStart: UInt32(valueStart),
          valueEnd: UInt32(valueEnd), lineEnd: UInt32(i), known: classify(nameStart, nameEnd),
          isHopByHop: false))
    }
    head.fields = fields
    head.length = i
  }

  func classify(_ s: Int, _ e: Int) -> HTTP1KnownHeader {
    switch e - s {
    case 2 where B.equalsLowercase(bytes, s, e, "te"): .te
    case 4 where B.equalsLowercase(bytes, s, e, "host"): .host
    case 6 where B.equalsLowercase(bytes, s, e, "expect"): .expect
    case 7 where B.equalsLowercase(bytes, s, e, "upgrade"): .upgrade
    case 10 where B.equalsLowercase(bytes, s, e, "connection"): .connection
    case 10 where B.equalsLowercase(bytes, s, e, "keep-alive"): .keepAlive
    case 14 where B.equalsLowercase(bytes, s, e, "content-length"): .contentLength
    case 16 where B.equalsLowercase(bytes, s, e, "proxy-connection"): .proxyConnection
    case 17 where B.equalsLowercase(bytes, s, e, "transfer-encoding"): .transferEncoding
    default: .other
    }
  }

  // MARK: Semantics

  struct Facts {
    var contentLength: Int?
    var hasTransferEncoding = false
  }

  /// Validates framing fields, computes connection semantics and marks hop-by-hop lines.
  func analyze(_ head: inout HTTP1Head, isRequest: Bool) throws(HTTP1ParseStop) -> Facts {
    var facts = Facts()
    var sawClose = false
    var sawKeepAlive = false
    var sawUpgradeToken = false
    var hasUpgradeField = false
    var nominated: [Range<Int>] = []
    for index in head.fields.indices {
      let field = head.fields[index]
      let vs = Int(field.valueStart)
      let ve = Int(field.valueEnd)
      switch field.known {
      case .other:
        continue
      case .host:
        if head.hostIndex != nil {
          if isRequest { throw Self.fail(.duplicateHost, "more than one Host header") }
        } else {
          head.hostIndex = index
        }
      case .contentLength:
        // Strict: exactly one field of 1*DIGIT. The list form `5, 5` that RFC 9110 §8.6 lets a
        // recipient accept is rejected, as llhttp does.
        guard facts.contentLength == nil else {
          throw Self.fail(.invalidContentLength, "more than one Content-Length")
        }
        guard ve > vs, ve - vs <= 18 else { throw Self.fail(.invalidContentLength, "invalid Content-Length") }
        var n = 0
        for k in vs..<ve {
          let d = bytes[k] &- 0x30
          guard d < 10 else { throw Self.fail(.invalidContentLength, "invalid Content-Length") }
          n = n * 10 + Int(d)
        }
        facts.contentLength = n
      case .transferEncoding:
        // Only a single `chunked` is understood (Envoy answers 501 to anything else). A second
        // Transfer-Encoding field would make it `chunked, chunked`: also rejected.
        guard !facts.hasTransferEncoding, B.equalsLowercase(bytes, vs, ve, "chunked") else {
          throw Self.fail(.unsupportedTransferEncoding, "unsupported Transfer-Encoding")
        }
        facts.hasTransferEncoding = true
      case .connection:
        head.fields[index].isHopByHop = true
        B.forEachListElement(bytes, vs, ve) { s, e in
          if B.equalsLowercase(bytes, s, e, "close") {
            sawClose = true
          } else if B.equalsLowercase(bytes, s, e, "keep-alive") {
            sawKeepAlive = true
          } else if B.equalsLowercase(bytes, s, e, "upgrade") {
            sawUpgradeToken = true
          } else {
            nominated.append(s..<e)
          }
        }
      case .keepAlive, .proxyConnection:
        head.fields[index].isHopByHop = true
      case .upgrade:
        // Like Envoy, an h2c upgrade is not honoured: its Upgrade/Connection/HTTP2-Settings go.
        hasUpgradeField = !(isRequest && B.equalsLowercase(bytes, vs, ve, "h2c"))
        head.fields[index].isHopByHop = true
      case .expect:
        if isRequest && head.version == .http11 && B.equalsLowercase(bytes, vs, ve, "100-continue") {
          head.expectsContinue = true
        }
      case .te:
        // Envoy forwards `te: trailers` and drops any other TE.
        if !B.equalsLowercase(bytes, vs, ve, "trailers") {
          head.fields[index].isHopByHop = true
          B.forEachListElement(bytes, vs, ve) { s, e in
            if B.equalsLowercase(bytes, s, e, "trailers") { head.wantsTETrailers = true }
          }
        }
      }
    }
    head.isUpgrade = hasUpgradeField && sawUpgradeToken
    if head.isUpgrade {
      for index in head.fields.indices
      where head.fields[index].known == .connection || head.fields[index].known == .upgrade {
        head.fields[index].isHopByHop = false
      }
    }
    if !nominated.isEmpty {
      guard nominated.count <= 10 else {
        throw Self.fail(.invalidConnectionHeader, "Connection nominates more than 10 headers")
      }
      for token in nominated {
        let s = token.lowerBound
        let e = token.upperBound
        guard B.isTokenChar(bytes[s]) else {
          throw Self.fail(.invalidConnectionHeader, "invalid Connection token")
        }
        switch classify(s, e) {
        case .host, .contentLength, .transferEncoding:
          throw Self.fail(.invalidConnectionHeader, "Connection nominates a framing or Host header")
        case .te:
          continue  // TE follows its own rule above.
        default:
          for index in head.fields.indices
          where B.equalsIgnoringASCIICaseBytes(bytes, head.fields[index].name, s..<e) {
            if head.isUpgrade && head.fields[index].known == .upgrade { continue }
            head.fields[index].isHopByHop = true
          }
        }
      }
    }
    head.keepAlive = head.version == .http11 ? !sawClose : (sawKeepAlive && !sawClose)

    if facts.hasTransferEncoding {
      if head.version == .http10 {
        throw Self.fail(.transferEncodingOnHTTP10, "Transfer-Encoding on an HTTP/1.0 message")
      }
      if facts.contentLength != nil {
        throw Self.fail(.contentLengthWithTransferEncoding, "both Content-Length and Transfer-Encoding")
      }
    }
    return facts
  }

  func requestFraming(
    _ head: inout HTTP1Head, method: HTTP1Method, facts: Facts, target: Range<Int>
  ) throws(HTTP1ParseStop) -> HTTP1Framing {
    if head.version == .http11 && head.hostIndex == nil {
      throw Self.fail(.missingHost, "HTTP/1.1 request without Host")
    }
    let first = bytes[target.lowerBound]
    let isAsterisk = target.count == 1 && first == 0x2A
    switch method {
    case .connect:
      guard first != 0x2F, !isAsterisk else {
        throw Self.fail(.invalidTarget, "CONNECT needs authority-form")
      }
      if facts.hasTransferEncoding {
        throw Self.fail(.unsupportedTransferEncoding, "Transfer-Encoding on CONNECT")
      }
      if let n = facts.contentLength, n > 0 { throw Self.fail(.bodyNotAllowed, "CONNECT with a body") }
      return .upgrade
    case .options where isAsterisk:
      break
    default:
      // origin-form or absolute-form (which starts with a scheme, hence a letter).
      guard first == 0x2F || (first | 0x20) &- 0x61 < 26 else {
        throw Self.fail(.invalidTarget, "request-target is not origin-form or absolute-form")
      }
    }
    if facts.hasTransferEncoding { return .chunked }
    if let n = facts.contentLength, n > 0 { return .contentLength(n) }
    return .none
  }

  func responseFraming(
    _ head: inout HTTP1Head, status: Int, requestMethod: HTTP1Method, facts: Facts
  ) throws(HTTP1ParseStop) -> HTTP1Framing {
    if status < 200 || status == 204 {
      if facts.hasTransferEncoding {
        throw Self.fail(.transferEncodingNotAllowed, "Transfer-Encoding on a \(status) response")
      }
      if let n = facts.contentLength, n > 0 {
        throw Self.fail(.contentLengthNotAllowed, "Content-Length on a \(status) response")
      }
      return status == 101 ? .upgrade : .none
    }
    if requestMethod == .connect && status < 300 {
      if facts.hasTransferEncoding {
        throw Self.fail(.transferEncodingNotAllowed, "Transfer-Encoding on a 2xx response to CONNECT")
      }
      return .upgrade
    }
    if requestMethod == .head || status == 304 { return .none }
    if facts.hasTransferEncoding { return .chunked }
    if let n = facts.contentLength { return n > 0 ? .contentLength(n) : .none }
    head.keepAlive = false
    return .untilClose
  }
}

extension HTTP1Bytes {
  static func equalsIgnoringASCIICaseBytes(
    _ bytes: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>
  ) -> Bool {
    guard a.count == b.count else { return false }
    for k in 0..<a.count where lowercased(bytes[a.lowerBound + k]) != lowercased(bytes[b.lowerBound + k]) {
      return false
    }
    return true
  }
}
