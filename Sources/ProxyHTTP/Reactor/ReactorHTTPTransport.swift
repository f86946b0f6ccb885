internal import NIOCore
internal import ProxyEngine

/// What both reactor HTTP transports (downstream and upstream) do with their `Connection`: gather the
/// core's writes until it flushes, close in the three ways the cores ask for, turn the core's "should read"
/// into one count of the connection's read-disable, hand received bytes over, and track the watermarks.
///
/// Writes are gathered because the core writes a head (with a small body in the same buffer) or a body slice
/// per read and flushes once per batch: the first write is kept as it is (no copy) and only a second one
/// before the flush is appended to it. Sending at the flush also puts a stream's stats and access log before
/// the peer sees its response. No access to this object's storage is held while `Connection.write` runs
/// (it may close the connection and re-enter the core).
class ReactorHTTPTransport {
  let connection: Connection
  /// Written output buffers of the pool's size go back to the reactor's pool (the downstream side, whose
  /// response heads are written into pooled buffers).
  private let returnsWrittenBuffers: Bool
  private var pending: ByteBuffer?
  /// Reading is disabled by this transport (one count of the connection's read-disable).
  private var paused: Bool
  private(set) var aboveHighWatermark = false

  init(connection: Connection, paused: Bool, returnsWrittenBuffers: Bool) {
    self.connection = connection
    self.paused = paused
    self.returnsWrittenBuffers = returnsWrittenBuffers
  }

  private static let allocator = ByteBufferAllocator()

  /// A pooled buffer when `capacity` fits one (given back once written, see `flush`), else a new one.
  func outputBuffer(capacity: Int) -> ByteBuffer {
    let pool = connection.reactor.buffers
    return capacity <= pool.bufferSize ? pool.take() : Self.allocator.buffer(capacity: capacity)
  }

  func write(_ bytes: ByteBuffer) {
    guard bytes.readableBytes > 0 else { return }
    if pending == nil {
      pending = bytes
    } else {
      var bytes = bytes
      pending!.writeBuffer(&bytes)
    }
  }

  /// Sends what is queued; a failed send closes the connection inside this call.
  func flush() {
    guard var data = pending else { return }
    pending = nil
    connection.write(&data)
    let pool = connection.reactor.buffers
    if returnsWrittenBuffers, data.readableBytes == 0, data.capacity == pool.bufferSize { pool.give(&data) }
  }

  func closeAfterPendingWrites() {
    flush()
    connection.close(.flushWrite)
  }

  func close() {
    pending = nil
    connection.close(.noFlush)
  }

  func shutdownOutputAfterPendingWrites() {
    flush()
    connection.shutdownWrite()
  }

  /// Reads on or off as the core decides.
  func setReading(_ wanted: Bool) {
    guard connection.state == .open else { return }
    if wanted && paused {
      paused = false
      connection.readDisable(false)
    } else if !wanted && !paused {
      paused = true
      connection.readDisable(true)
    }
  }

  /// Hands what the connection received to `consume`, which takes everything (a core keeps what it still
  /// needs — a partial head, pipelined requests — as its own slice).
  func received(_ consume: (inout ByteBuffer) -> Void) {
    var bytes = connection.takeReadBuffer()
    consume(&bytes)
    bytes.moveReaderIndex(to: bytes.writerIndex)
    connection.returnReadBuffer(&bytes)
  }

  func wentAboveHighWatermark() { aboveHighWatermark = true }
  func wentBelowLowWatermark() { aboveHighWatermark = false }

  /// Whole milliseconds from now to `deadline`, rounded up (a timer that fires early re-arms).
  static func millisecondsUntil(_ deadline: NIODeadline) -> Int64 {
    let nanoseconds = (deadline - .now()).nanoseconds
    return nanoseconds <= 0 ? 0 : nanoseconds / 1_000_000 + 1
  }
}
