/// Validates a chunked body (RFC 9112 §7.1) across arbitrary read boundaries without copying it.
///
/// The proxy forwards chunked bytes verbatim, so the scanner only has to find where the message
/// ends and refuse anything two parsers could disagree on: non-hex or overflowing sizes, whitespace
/// anywhere in the chunk-size line outside a quoted string, malformed extensions (only
/// `;name[=token|quoted-string]` is allowed), chunk data not followed by CRLF, bare LF or CR, obs-fold or
/// bad characters in trailers, and trailer sections over the limits.
///
/// RFC 9112 §7.1.1 allows BWS around `;` and `=` in chunk extensions, but llhttp (strict) and h11 reject
/// it (`IndependentParserTests`): a body one parser frames and another refuses is what smuggling needs, so
/// the scanner refuses it too.
package struct ChunkedBodyScanner: Hashable, Sendable {
  package enum ScanResult: Hashable, Sendable {
    /// Every byte given belongs to this body and may be forwarded; the body goes on.
    case needMore
    /// The body ended after this many bytes of the input (last chunk, trailers, final CRLF);
    /// any bytes after that start the next message.
    case complete(Int)
    case invalid(HTTP1CodecError)
  }

  enum State: UInt8, Hashable, Sendable {
    case sizeStart, sizeDigits
    case extBeforeName, extName, extBeforeValue, extTokenValue
    case extQuoted, extQuotedPair, extAfterValue
    case sizeLF, data, dataCR, dataLF
    case trailerLineStart, trailerName, trailerValue, trailerLF, finalLF
    case done, failed
  }

  private(set) var state: State = .sizeStart
  private var chunkSize = 0
  private var remaining = 0
  private var lineBytes = 0
  private var trailerBytes = 0
  private var trailerCount = 0
  private let limits: HTTP1Limits

  package init(limits: HTTP1Limits = HTTP1Limits()) {
    self.limits = limits
  }

  /// True once the last chunk, trailers and final CRLF have been seen.
  package var isComplete: Bool { state == .done }

  private typealias B = HTTP1Bytes

  private mutating func fail(_ code: HTTP1CodecError.Code, _ message: String) -> ScanResult {
    state = .failed
    return .invalid(HTTP1CodecError(code, message))
  }

  /// Scans the next bytes of the body. After `.complete` or `.invalid` the scanner stays put.
  package mutating func scan(_ bytes: UnsafeRawBufferPointer) -> ScanResult {
    switch state {
    case .done: return .complete(0)
    case .failed: return .invalid(HTTP1CodecError(.invalidChunkSize, "scan after a framing error"))
    default: break
    }
    var i = 0
    let n = bytes.count
    while i < n {
      if state == .data {
        let take = min(remaining, n - i)
        remaining -= take
        i += take
        if remaining == 0 { state = .dataCR }
        continue
      }
      let c = bytes[i]
      i += 1
      switch state {
      case .sizeStart:
        guard let d = B.hexValue(c) else { return fail(.invalidChunkSize, "chunk size is not hex") }
        chunkSize = Int(d)
        lineBytes = 1
        state = .sizeDigits
        continue
      case .trailerLineStart, .trailerName, .trailerValue, .trailerLF, .finalLF:
        if let result = trailerByte(c) { return result }
        if state == .done { return .complete(i) }
        continue
      case .dataCR:
        guard c == B.cr else { return fail(.missingChunkDataTerminator, "chunk data not followed by CRLF") }
        state = .dataLF
        continue
      case .dataLF:
        guard c == B.lf else { return fail(.missingChunkDataTerminator, "chunk data not followed by CRLF") }
        state = .sizeStart
        continue
      case .sizeLF:
        guard c == B.lf else { return fail(.bareLineFeed, "CR not followed by LF in chunk size line") }
        if chunkSize == 0 {
          state = .trailerLineStart
        } else {
          remaining = chunkSize
          state = .data
        }
        continue
      default:
        break
      }
      // The rest of a chunk-size line: size digits and extensions.
      if c == B.cr {
        switch state {
        case .sizeDigits, .extName, .extTokenValue, .extAfterValue:
          state = .sizeLF
          continue
        case .extQuoted, .extQuotedPair:
          return fail(.invalidChunkExtension, "CR in quoted chunk extension")
        default:
          return fail(.invalidChunkExtension, "chunk size line ends early")
        }
      }
      if c == B.lf { return fail(.bareLineFeed, "bare LF in chunk size line") }
      lineBytes += 1
      guard lineBytes <= limits.maxChunkLineBytes else {
        return fail(.invalidChunkExtension, "chunk size line longer than \(limits.maxChunkLineBytes) bytes")
      }
      switch state {
      case .sizeDigits:
        if let d = B.hexValue(c) {
          guard chunkSize <= Int.max >> 4 else { return fail(.invalidChunkSize, "chunk size overflows") }
          chunkSize = chunkSize << 4 | Int(d)
        } else if c == 0x3B {
          state = .extBeforeName
        } else if B.isOWS(c) {
          return fail(.invalidChunkSize, "whitespace after chunk size")
        } else {
          return fail(.invalidChunkSize, "invalid character in chunk size")
        }
      case .extBeforeName:
        guard B.isTokenChar(c) else {
          return fail(
            .invalidChunkExtension,
            B.isOWS(c) ? "whitespace in chunk extension" : "invalid chunk extension name")
        }
        state = .extName
      case .extName:
        if B.isTokenChar(c) { break }
        if c == 0x3D {
          state = .extBeforeValue
        } else if c == 0x3B {
          state = .extBeforeName
        } else {
          return fail(
            .invalidChunkExtension,
            B.isOWS(c) ? "whitespace in chunk extension" : "invalid character in chunk extension")
        }
      case .extBeforeValue:
        if c == 0x22 {
          state = .extQuoted
        } else if B.isTokenChar(c) {
          state = .extTokenValue
        } else {
          return fail(
            .invalidChunkExtension,
            B.isOWS(c) ? "whitespace in chunk extension" : "invalid chunk extension value")
        }
      case .extTokenValue, .extAfterValue:
        if state == .extTokenValue && B.isTokenChar(c) { break }
        if c == 0x3B {
          state = .extBeforeName
        } else {
          return fail(
            .invalidChunkExtension,
            B.isOWS(c) ? "whitespace in chunk extension" : "invalid character in chunk extension value")
        }
      case .extQuoted:
        if c == 0x22 {
          state = .extAfterValue
        } else if c == 0x5C {
          state = .extQuotedPair
        } else if !B.isFieldValueChar(c) {
          return fail(.invalidChunkExtension, "invalid character in quoted chunk extension")
        }
      case .extQuotedPair:
        guard B.isFieldValueChar(c) else {
          return fail(.invalidChunkExtension, "invalid quoted-pair in chunk extension")
        }
        state = .extQuoted
      default:
        return fail(.invalidChunkSize, "unreachable chunk state")
      }
    }
    return .needMore
  }

  /// One byte of the trailer section; returns a result only on failure.
  private mutating func trailerByte(_ c: UInt8) -> ScanResult? {
    trailerBytes += 1
    guard trailerBytes <= limits.maxHeadBytes else {
      return fail(.headersTooLarge, "trailers exceed \(limits.maxHeadBytes) bytes")
    }
    switch state {
    case .trailerLineStart:
      if c == B.cr {
        state = .finalLF
      } else if B.isTokenChar(c) {
        trailerCount += 1
        guard trailerCount <= limits.maxHeaderCount else {
          return fail(.tooManyHeaders, "more than \(limits.maxHeaderCount) trailers")
        }
        state = .trailerName
      } else if c == B.lf {
        return fail(.bareLineFeed, "bare LF in trailers")
      } else if B.isOWS(c) {
        return fail(
          trailerCount == 0 ? .leadingWhitespace : .obsoleteLineFolding, "whitespace at trailer line start")
      } else {
        return fail(.invalidHeaderName, "invalid character in trailer name")
      }
    case .trailerName:
      if c == B.colon {
        state = .trailerValue
      } else if B.isOWS(c) {
        return fail(.whitespaceBeforeColon, "whitespace between trailer name and colon")
      } else if !B.isTokenChar(c) {
        return fail(c == B.lf ? .bareLineFeed : .invalidHeaderName, "invalid character in trailer name")
      }
    case .trailerValue:
      if c == B.cr {
        state = .trailerLF
      } else if !B.isFieldValueChar(c) {
        return fail(c == B.lf ? .bareLineFeed : .invalidHeaderValue, "invalid character in trailer value")
      }
    case .trailerLF:
      guard c == B.lf else { return fail(.bareLineFeed, "CR not followed by LF in trailers") }
      state = .trailerLineStart
    case .finalLF:
      guard c == B.lf else { return fail(.bareLineFeed, "CR not followed by LF at end of chunked body") }
      state = .done
    default:
      break
    }
    return nil
  }
}
