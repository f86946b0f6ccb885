internal import NIOCore
internal import ProxyCore
internal import ProxyEngine

#if canImport(Glibc)
  internal import Glibc
#endif

/// An upstream HTTP/1.1 connection on the reactor: the transport of an `HTTPUpstreamConnection`, with the
/// connect timeout and the pooled connection's idle check as the connection's timers.
final class ReactorHTTPUpstream: ReactorHTTPTransport, ConnectionCallbacks, HTTPUpstreamIO {
  private let core: HTTPUpstreamConnection
  private var connected = false
  private var connectTimer = TimerID.none
  private var idleTimer = TimerID.none

  private static let connectKind: UInt32 = 1
  private static let idleKind: UInt32 = 2

  private init(connection: Connection, core: HTTPUpstreamConnection) {
    self.core = core
    super.init(connection: connection, paused: false, returnsWrittenBuffers: false)
  }

  /// Starts connecting `core` on `reactor`; the outcome reaches `core` (at once if the connect fails).
  static func connect(_ core: HTTPUpstreamConnection, reactor: Reactor) {
    let connection: Connection
    do {
      connection = try Connection.upstream(to: core.host, of: core.cluster, reactor: reactor)
    } catch {
      // Envoy's wording: it becomes %UPSTREAM_TRANSPORT_FAILURE_REASON% (the debug log names the host).
      core.connectFailed(reason: error.transportFailureReason, timedOut: false)
      return
    }
    let shell = ReactorHTTPUpstream(connection: connection, core: core)
    connection.callbacks = shell
    connection.halfCloseEnabled = true
    core.bind(io: shell)
    shell.connectTimer = connection.makeTimer(kind: connectKind)
    reactor.arm(
      shell.connectTimer,
      after: core.cluster.config.connectTimeout)
  }

  // MARK: HTTPUpstreamIO

  var isWritable: Bool { !aboveHighWatermark && connection.state != .closed }
  var localAddress: SocketAddress? { connection.localAddress }

  func updateReading() { setReading(core.shouldRead()) }

  func scheduleIdleCheck(at deadline: NIODeadline) {
    guard connection.state != .closed else { return }
    if idleTimer == .none { idleTimer = connection.makeTimer(kind: Self.idleKind) }
    guard !connection.reactor.isArmed(idleTimer) else { return }
    connection.reactor.arm(idleTimer, afterMilliseconds: Self.millisecondsUntil(deadline))
  }

  // MARK: ConnectionCallbacks

  func onData(_ connection: Connection, endStream: Bool) {
    received { core.read(&$0) }
    core.readComplete()
    if endStream { core.inputClosed() }
    updateReading()
  }

  func onEvent(_ connection: Connection, _ event: ConnectionEvent) {
    switch event {
    case .connected:
      connected = true
      connection.reactor.cancel(connectTimer)
      core.didConnect()
      updateReading()
    case .connectFailed(let code):
      core.connectFailed(reason: UpstreamConnectError.delayedFailureReason(code), timedOut: false)
    case .remoteClose, .localClose:
      core.closed()
    }
  }

  func onAboveWriteBufferHighWatermark(_ connection: Connection) {
    wentAboveHighWatermark()
    core.writabilityChanged()
  }

  func onBelowWriteBufferLowWatermark(_ connection: Connection) {
    wentBelowLowWatermark()
    core.writabilityChanged()
  }

  func onTimer(_ connection: Connection, kind: UInt32) {
    switch kind {
    case Self.connectKind:
      guard !connected else { return }
      connection.callbacks = nil
      connection.close(.noFlush)
      core.connectFailed(reason: "connect timeout", timedOut: true)
    case Self.idleKind:
      core.idleCheck()
    default:
      break
    }
  }
}
