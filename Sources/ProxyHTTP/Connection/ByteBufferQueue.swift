internal import NIOCore

/// Buffers kept in order, for the request bytes of one stream. Nearly every request is one buffer (the
/// head with a small body coalesced), so the first is held inline and an array exists only for more.
struct ByteBufferQueue {
  private var first: ByteBuffer?
  private var rest: [ByteBuffer] = []

  var isEmpty: Bool { first == nil }

  mutating func append(_ buffer: ByteBuffer) {
    if first == nil {
      first = buffer
    } else {
      rest.append(buffer)
    }
  }

  func forEach(_ body: (ByteBuffer) -> Void) {
    guard let first else { return }
    body(first)
    for buffer in rest { body(buffer) }
  }
}
