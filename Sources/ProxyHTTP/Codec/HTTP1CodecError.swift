/// Every way an HTTP/1.1 message can be rejected by the framing codec.
///
/// One error type for the whole codec (heads, chunked bodies, trailers). `httpStatus` and
/// `responseCodeDetails` are what Envoy sends and logs when the *downstream request* is at fault.
/// When the fault is in an *upstream response*, the connection manager answers
/// `HTTP1CodecError.upstreamProtocolErrorStatus` (502) with
/// `HTTP1CodecError.upstreamProtocolErrorDetails` instead, as Envoy's router does.
package struct HTTP1CodecError: Error, Hashable, Sendable, CustomStringConvertible {
  package enum Code: Hashable, Sendable {
    /// Malformed start line: bad method token, missing/extra spaces, bad status code.
    case invalidStartLine
    /// Request-target empty or containing SP, CTL, DEL or non-ASCII bytes; or the wrong form
    /// for the method (`*` only for OPTIONS, authority-form only for CONNECT).
    case invalidTarget
    /// Not exactly `HTTP/1.0` or `HTTP/1.1`.
    case invalidVersion
    /// LF not preceded by CR, or CR not followed by LF.
    case bareLineFeed
    /// A header line starting with SP/HTAB (obs-fold, RFC 9112 §5.2).
    case obsoleteLineFolding
    /// SP/HTAB before the first header line (RFC 9112 §2.2).
    case leadingWhitespace
    /// Empty field name or a non-token byte in it.
    case invalidHeaderName
    /// SP/HTAB between the field name and the colon (RFC 9112 §5.1).
    case whitespaceBeforeColon
    /// CTL (other than HTAB) or DEL in a field value.
    case invalidHeaderValue
    /// Head (or trailer section) larger than `HTTP1Limits.maxHeadBytes`.
    case headersTooLarge
    /// More than `HTTP1Limits.maxHeaderCount` fields (or trailer fields).
    case tooManyHeaders
    /// Content-Length not `1*DIGIT`, overflowing, a list, or repeated.
    case invalidContentLength
    /// Content-Length together with Transfer-Encoding (a request-smuggling vector).
    case contentLengthWithTransferEncoding
    /// Transfer-Encoding other than exactly one `chunked` coding.
    case unsupportedTransferEncoding
    /// Transfer-Encoding on an HTTP/1.0 message (RFC 9112 §6.1: framing is faulty).
    case transferEncodingOnHTTP10
    /// Transfer-Encoding on a 1xx/204 response, or on a 2xx response to CONNECT.
    case transferEncodingNotAllowed
    /// A non-zero Content-Length on a 1xx/204 response.
    case contentLengthNotAllowed
    /// A body (Content-Length > 0) on a CONNECT request.
    case bodyNotAllowed
    /// HTTP/1.1 request without Host.
    case missingHost
    /// More than one Host field.
    case duplicateHost
    /// Connection nominates a field the proxy cannot drop (host, content-length, transfer-encoding)
    /// or more than 10 fields.
    case invalidConnectionHeader
    /// Chunk size not hex, too long or overflowing, or whitespace before it.
    case invalidChunkSize
    /// Chunk extension not `;name[=token|quoted-string]`.
    case invalidChunkExtension
    /// Chunk data not followed by CRLF.
    case missingChunkDataTerminator
    /// Connection closed before the message's framing said it ended.
    case truncatedBody
  }

  package var code: Code
  package var message: String

  package init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  /// The status Envoy sends downstream for a request rejected with this error.
  package var httpStatus: Int {
    switch code {
    case .headersTooLarge, .tooManyHeaders: 431
    case .unsupportedTransferEncoding: 501
    default: 400
    }
  }

  /// Envoy's `%RESPONSE_CODE_DETAILS%` for this error.
  package var responseCodeDetails: String {
    switch code {
    case .headersTooLarge: "http1.headers_too_large"
    case .tooManyHeaders: "http1.too_many_headers"
    case .invalidHeaderValue: "http1.invalid_characters"
    case .unsupportedTransferEncoding: "http1.invalid_transfer_encoding"
    case .transferEncodingNotAllowed: "http1.transfer_encoding_not_allowed"
    case .contentLengthWithTransferEncoding, .contentLengthNotAllowed: "http1.content_length_not_allowed"
    case .bodyNotAllowed: "http1.body_disallowed"
    case .invalidConnectionHeader: "http1.connection_header_rejected"
    case .missingHost: "missing_host_header"
    default: "http1.codec_error"
    }
  }

  package var description: String { "\(responseCodeDetails): \(message)" }

  /// Status for a downstream request whose upstream response failed to parse (Envoy: 502).
  package static let upstreamProtocolErrorStatus = 502
  /// Envoy's details for an upstream response that failed to parse before headers were sent.
  package static let upstreamProtocolErrorDetails = "upstream_reset_before_response_started{protocol_error}"
}
