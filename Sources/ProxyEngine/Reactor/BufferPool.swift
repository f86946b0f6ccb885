package import NIOCore

/// A reactor's spare buffers. A connection takes one to read into and gives it back as soon as its bytes
/// have been passed on, so an idle connection holds no buffer (HAProxy's rule) and a busy one reuses the
/// same storage without allocating.
package final class BufferPool {
  private var spare: [ByteBuffer] = []
  private let allocator = ByteBufferAllocator()
  /// Size of a read (and of a pooled buffer).
  package let bufferSize: Int
  /// Buffers kept for reuse at most; more are freed.
  package let maximumSpare: Int

  package init(bufferSize: Int = 16 * 1024, maximumSpare: Int = 512) {
    self.bufferSize = bufferSize
    self.maximumSpare = maximumSpare
  }

  package func take() -> ByteBuffer {
    spare.popLast() ?? allocator.buffer(capacity: bufferSize)
  }

  /// Takes `buffer` back (emptied); oversized buffers and those beyond `maximumSpare` are freed.
  package func give(_ buffer: inout ByteBuffer) {
    buffer.clear()
    if spare.count < maximumSpare, buffer.capacity <= 4 * bufferSize {
      spare.append(buffer)
    }
    buffer = ByteBuffer()
  }
}
