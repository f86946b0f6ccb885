internal import NIOCore
internal import ProxyCore
internal import ProxyEngine

/// A downstream HTTP/1.1 connection on the reactor: moves bytes between a `Connection` and its
/// `HTTPConnectionManager`, turns the manager's read decisions into `readDisable`, and owns the
/// connection's one timer.
final class ReactorHTTPDownstream: ConnectionCallbacks, HTTPDownstreamIO {
  private let connection: Connection
  private let manager: HTTPConnectionManager
  private var accounting: ListenerConnectionAccounting?
  /// Reading is disabled by this shell (one count of the connection's read-disable).
  private var paused = true
  private var aboveHighWatermark = false
  private var timer = TimerID.none
  private var output = PendingOutput()

  private static let timerKind: UInt32 = 1

  private init(
    connection: Connection, manager: HTTPConnectionManager, accounting: ListenerConnectionAccounting
  ) {
    self.connection = connection
    self.manager = manager
    self.accounting = accounting
  }

  /// Serves `connection` (accepted with reading disabled once) with `manager`.
  static func start(
    _ connection: Connection, manager: HTTPConnectionManager, initialBytes: ByteBuffer?,
    accounting: ListenerConnectionAccounting
  ) {
    let shell = ReactorHTTPDownstream(connection: connection, manager: manager, accounting: accounting)
    connection.callbacks = shell
    connection.halfCloseEnabled = true
    if connection.isReadEnabled { connection.readDisable(true) }
    manager.start(io: shell, initialBytes: initialBytes)
    // A client that half-closed while listener filters read its first bytes sends nothing more.
    if connection.readEnded { manager.inputClosed() }
    shell.updateReading()
  }

  // MARK: HTTPDownstreamIO

  var isWritable: Bool { !aboveHighWatermark && connection.state == .open }

  func write(_ bytes: ByteBuffer) { output.append(bytes) }

  func flush() { output.flush(to: connection) }

  func closeAfterPendingWrites() {
    output.flush(to: connection)
    connection.close(.flushWrite)
  }

  func close() {
    output.drop()
    connection.close(.noFlush)
  }

  func shutdownOutputAfterPendingWrites() {
    output.flush(to: connection)
    connection.shutdownWrite()
  }

  func updateReading() {
    guard connection.state == .open else { return }
    let wanted = manager.shouldRead()
    if wanted && paused {
      paused = false
      connection.readDisable(false)
    } else if !wanted && !paused {
      paused = true
      connection.readDisable(true)
    }
  }

  func scheduleTimer(at deadline: NIODeadline) {
    guard connection.state != .closed else { return }
    if timer == .none { timer = connection.makeTimer(kind: Self.timerKind) }
    connection.reactor.arm(timer, afterMilliseconds: Self.millisecondsUntil(deadline))
  }

  func cancelTimer() {
    guard timer != .none, connection.state != .closed else { return }
    connection.reactor.cancel(timer)
  }

  func connect(_ upstream: HTTPUpstreamConnection) {
    ReactorHTTPUpstream.connect(upstream, reactor: connection.reactor)
  }

  // MARK: ConnectionCallbacks

  func onData(_ connection: Connection, endStream: Bool) {
    var bytes = connection.takeReadBuffer()
    manager.read(&bytes)
    // The manager keeps what it still needs (a partial head, pipelined requests) as its own slice.
    bytes.moveReaderIndex(to: bytes.writerIndex)
    connection.returnReadBuffer(&bytes)
    manager.readComplete()
    if endStream { manager.inputClosed() }
    updateReading()
  }

  func onEvent(_ connection: Connection, _ event: ConnectionEvent) {
    switch event {
    case .connected, .connectFailed:
      return
    case .remoteClose:
      manager.connectionClosed(byPeer: true)
    case .localClose:
      manager.connectionClosed(byPeer: false)
    }
    accounting?.finish()
    accounting = nil
  }

  func onAboveWriteBufferHighWatermark(_ connection: Connection) {
    aboveHighWatermark = true
    manager.becameUnwritable()
    updateReading()
  }

  func onBelowWriteBufferLowWatermark(_ connection: Connection) {
    aboveHighWatermark = false
    manager.becameWritable()
    updateReading()
  }

  func onTimer(_ connection: Connection, kind: UInt32) {
    guard kind == Self.timerKind else { return }
    manager.timerFired()
    updateReading()
  }

  /// Whole milliseconds from now to `deadline`, rounded up (a timer that fires early re-arms).
  static func millisecondsUntil(_ deadline: NIODeadline) -> Int64 {
    let nanoseconds = (deadline - .now()).nanoseconds
    return nanoseconds <= 0 ? 0 : nanoseconds / 1_000_000 + 1
  }
}
