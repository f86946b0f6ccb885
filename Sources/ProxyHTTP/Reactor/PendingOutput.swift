internal import NIOCore
internal import ProxyEngine

/// Output the connection manager queued and has not flushed yet. The manager writes a head (with a small
/// body in the same buffer) or a body slice per read and flushes once per batch, so the first write is kept
/// as it is (no copy) and only a second one before the flush is appended to it. Sending at the flush, as
/// the NIO path did, also puts a stream's stats and access log before the peer sees its response.
struct PendingOutput {
  private var bytes: ByteBuffer?

  var isEmpty: Bool { bytes == nil }

  mutating func append(_ data: ByteBuffer) {
    guard data.readableBytes > 0 else { return }
    if bytes == nil {
      bytes = data
    } else {
      var data = data
      bytes!.writeBuffer(&data)
    }
  }

  /// Writes what is queued to `connection` (which sends at once, or buffers what the kernel did not take).
  mutating func flush(to connection: Connection) {
    guard var data = bytes else { return }
    bytes = nil
    connection.write(&data)
  }

  mutating func drop() { bytes = nil }
}
