package import Logging
internal import NIOCore
package import ProxyCore

/// The byte-reading listener filters (tls_inspector, http_inspector) on a reactor connection: it reads, and
/// keeps what arrives in the connection's read buffer, until every inspector has decided (or the listener
/// filter timeout fires), records the transport protocol, SNI and ALPN, and hands the connection to its
/// filter chain with the bytes read so far. Nothing is forwarded before the chain is chosen.
final class ListenerFilterSession: ConnectionCallbacks {
  private let connection: Connection
  private var info: DownstreamConnection
  private let listener: ReactorServedListener
  private let proxy: ProxyContext
  private let logger: Logger
  private var accounting: ListenerConnectionAccounting?
  private var inspectTLS: Bool
  private var inspectHTTP: Bool
  private var timer = TimerID.none
  private var done = false

  /// A kind no terminal filter uses: the timer is cancelled at the hand-over, never reported to them.
  private static let timeoutKind: UInt32 = 0x4C46

  private init(
    connection: Connection, info: DownstreamConnection, listener: ReactorServedListener, proxy: ProxyContext,
    accounting: ListenerConnectionAccounting, tls: Bool, http: Bool, logger: Logger
  ) {
    self.connection = connection
    self.info = info
    self.listener = listener
    self.proxy = proxy
    self.accounting = accounting
    self.inspectTLS = tls
    self.inspectHTTP = http
    self.logger = logger
  }

  /// Inspects `connection` (accepted with reading disabled once), then serves it on `listener`.
  static func start(
    _ connection: Connection, info: DownstreamConnection, listener: ReactorServedListener,
    proxy: ProxyContext, accounting: ListenerConnectionAccounting, tls: Bool, http: Bool, logger: Logger
  ) {
    let session = ListenerFilterSession(
      connection: connection, info: info, listener: listener, proxy: proxy, accounting: accounting, tls: tls,
      http: http, logger: logger)
    connection.callbacks = session
    connection.halfCloseEnabled = true
    listener.listener.stats.preCxActive.inc()
    if let limit = listener.listener.config.listenerFiltersTimeout {
      session.timer = connection.makeTimer(kind: timeoutKind)
      connection.reactor.arm(session.timer, after: limit)
    }
    if !connection.isReadEnabled { connection.readDisable(false) }
  }

  // MARK: ConnectionCallbacks

  func onData(_ connection: Connection, endStream: Bool) {
    guard !done else { return }
    inspect()
    // The peer finished sending before the inspectors decided: go on with what is known.
    if !done, endStream { finish() }
  }

  func onEvent(_ connection: Connection, _ event: ConnectionEvent) {
    guard !done else { return }
    done = true
    listener.listener.stats.preCxActive.dec()
    accounting?.finish()
    accounting = nil
  }

  func onAboveWriteBufferHighWatermark(_ connection: Connection) {}
  func onBelowWriteBufferLowWatermark(_ connection: Connection) {}

  func onTimer(_ connection: Connection, kind: UInt32) {
    guard kind == Self.timeoutKind, !done else { return }
    listener.listener.stats.preCxTimeout.inc()
    if listener.listener.config.continueOnListenerFiltersTimeout {
      finish()
    } else {
      connection.close(.noFlush)  // reports through onEvent
    }
  }

  // MARK: Inspection

  private func inspect() {
    connection.readBuffer.withUnsafeReadableBytes { bytes in
      if inspectTLS {
        switch TLSClientHelloInspector.inspect(bytes) {
        case .needMoreData: return
        case .tls(let serverName, let alpn):
          info.transportProtocol = "tls"
          info.serverName = serverName
          info.applicationProtocols = alpn
          inspectTLS = false
          inspectHTTP = false  // http_inspector leaves TLS connections alone
        case .notMatched, .http:
          inspectTLS = false
        }
      }
      if inspectHTTP {
        switch HTTPInspector.inspect(bytes) {
        case .needMoreData: return
        case .http(let proto):
          info.applicationProtocols = [proto]
          inspectHTTP = false
        case .notMatched, .tls:
          inspectHTTP = false
        }
      }
    }
    if !inspectTLS && !inspectHTTP { finish() }
  }

  /// Hands the connection, with reading disabled again and the bytes read so far, to its filter chain.
  private func finish() {
    guard !done, let accounting else { return }
    done = true
    self.accounting = nil
    if timer != .none { connection.reactor.cancel(timer) }
    listener.listener.stats.preCxActive.dec()
    if connection.isReadEnabled { connection.readDisable(true) }
    let bytes = connection.takeReadBuffer()
    let initialBytes = bytes.readableBytes > 0 ? bytes : nil
    connection.callbacks = nil
    listener.serve(
      connection, info: info, proxy: proxy, initialBytes: initialBytes, accounting: accounting, logger: logger
    )
  }
}
