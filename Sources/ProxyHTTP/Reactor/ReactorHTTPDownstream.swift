internal import NIOCore
internal import ProxyCore
internal import ProxyEngine

/// A downstream HTTP/1.1 connection on the reactor: the transport of an `HTTPConnectionManager`, with the
/// connection's one timer and the listener's accounting.
final class ReactorHTTPDownstream: ReactorHTTPTransport, ConnectionCallbacks, HTTPDownstreamIO {
  private let manager: HTTPConnectionManager
  private var accounting: ListenerConnectionAccounting?
  private var timer = TimerID.none

  private static let timerKind: UInt32 = 1

  private init(
    connection: Connection, manager: HTTPConnectionManager, accounting: ListenerConnectionAccounting
  ) {
    self.manager = manager
    self.accounting = accounting
    super.init(connection: connection, paused: true, returnsWrittenBuffers: true)
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

  func updateReading() { setReading(manager.shouldRead()) }

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
    received { manager.read(&$0) }
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
    wentAboveHighWatermark()
    manager.becameUnwritable()
    updateReading()
  }

  func onBelowWriteBufferLowWatermark(_ connection: Connection) {
    wentBelowLowWatermark()
    manager.becameWritable()
    updateReading()
  }

  func onTimer(_ connection: Connection, kind: UInt32) {
    guard kind == Self.timerKind else { return }
    manager.timerFired()
    updateReading()
  }
}
