package import NIOCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// What a transport-socket read or write did.
package enum TransportIOResult: Equatable {
  /// Moved this many bytes (> 0).
  case bytes(Int)
  /// Nothing to do until the socket is ready again.
  case wouldBlock
  /// The peer closed its sending side (reads only).
  case endOfStream
  /// The socket failed (errno); the connection closes.
  case failed(Int32)
}

/// The layer between a connection's socket and its filters, as Envoy's `TransportSocket`: `raw` moves bytes
/// unchanged; TLS (the TLS issue) encrypts and decrypts on the same interface and reports what it
/// negotiated. It owns no fd: the connection passes it in.
package protocol TransportSocket: AnyObject {
  /// Reads into `buffer` (after its written bytes), at most `maximum` bytes.
  func read(fd: Int32, into buffer: inout ByteBuffer, maximum: Int) -> TransportIOResult
  /// Writes from `buffer`'s readable bytes; what was written is consumed from `buffer`.
  func write(fd: Int32, from buffer: inout ByteBuffer) -> TransportIOResult
  /// The socket connected (or was accepted); a TLS socket starts its handshake.
  func onConnected(fd: Int32)
  /// The protocol negotiated by ALPN, if any.
  var negotiatedProtocol: String? { get }
  /// The server name the client asked for (SNI), if any.
  var requestedServerName: String? { get }
  /// "raw_buffer" or "tls", for logs and stats.
  var name: String { get }
}

/// Plain bytes: `recv` and `send` on the fd. Stateless, so every raw connection shares `shared`.
package final class RawTransportSocket: TransportSocket, Sendable {
  package static let shared = RawTransportSocket()

  package init() {}

  package func read(fd: Int32, into buffer: inout ByteBuffer, maximum: Int) -> TransportIOResult {
    var result = 0
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maximum) { space -> Int in
      result = recv(fd, space.baseAddress, min(space.count, maximum), 0)
      return max(0, result)  // the writer index moves by what was read; nothing on an error
    }
    if result > 0 { return .bytes(result) }
    if result == 0 { return .endOfStream }
    let code = currentErrno()
    return code == EAGAIN || code == EWOULDBLOCK ? .wouldBlock : .failed(code)
  }

  package func write(fd: Int32, from buffer: inout ByteBuffer) -> TransportIOResult {
    guard buffer.readableBytes > 0 else { return .bytes(0) }
    let written = buffer.withUnsafeReadableBytes { bytes in
      send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
    }
    if written > 0 {
      buffer.moveReaderIndex(forwardBy: written)
      return .bytes(written)
    }
    let code = currentErrno()
    return code == EAGAIN || code == EWOULDBLOCK ? .wouldBlock : .failed(code)
  }

  package func onConnected(fd: Int32) {}
  package var negotiatedProtocol: String? { nil }
  package var requestedServerName: String? { nil }
  package var name: String { "raw_buffer" }
}
