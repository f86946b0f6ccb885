package import NIOCore
package import ProxyCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// A tcp_proxy filter held by reference, made once per filter chain.
package final class TcpProxyFilterRef {
  package let filter: TcpProxyFilter
  package init(_ filter: TcpProxyFilter) { self.filter = filter }
}

/// `envoy.filters.network.tcp_proxy` on the reactor: one session owns a downstream connection and the
/// upstream connection it opens on the same reactor, and moves bytes between them with direct calls.
///
/// - Backpressure: a side stops reading while the other side's pending output is above its high watermark
///   (the per-connection buffer limit) and resumes below the low one, so neither direction buffers more
///   than the limit.
/// - Half-close: a FIN read on one side becomes a write shutdown on the other once its pending bytes are
///   written; the session ends when both directions are closed, or either side fails.
/// - Connect attempts (`max_connect_attempts`) with the cluster's connect timeout; idle timeout; stats,
///   circuit-breaker slot and access log as the NIO handlers kept them.
package final class TCPProxySession: ConnectionCallbacks {
  /// The filter config, shared by reference: copying the struct per connection cost ~15 retains.
  private let route: TcpProxyFilterRef
  private let proxy: ProxyContext
  private let info: DownstreamConnection
  package let downstream: Connection
  package private(set) var upstream: Connection?
  private var cluster: UpstreamCluster?
  private var host: UpstreamHost?
  private var attempt = 0
  private var holdsConnectionSlot = false
  private var upstreamCounted = false
  private var upstreamConnected = false
  private var connectStartNanos: UInt64 = 0
  private var upstreamStartNanos: UInt64 = 0
  private var upstreamLocal: SocketAddress?
  private var closedByUpstream = false
  private var finished = false
  private var responseFlags: [String] = []
  private var terminationDetails: String?
  /// The last connect error (`%UPSTREAM_TRANSPORT_FAILURE_REASON%`).
  private var transportFailureReason: String?
  private var idleTimer = TimerID.none
  private var connectTimer = TimerID.none
  private var bytes = TcpProxyByteCount()
  private var downstreamPaused = false
  private var upstreamPaused = false
  /// The listener's bookkeeping, settled when the session ends.
  package var accounting: ListenerConnectionAccounting?
  /// Called once when the session has released everything (tests count sessions with it).
  package var onFinish: (() -> Void)?

  private static let idleKind: UInt32 = 1
  private static let connectKind: UInt32 = 2

  /// Starts serving `downstream`: picks the cluster and connects upstream. `initialBytes` are bytes listener
  /// filters already read (they go upstream first).
  package init(
    route: TcpProxyFilterRef, proxy: ProxyContext, connection info: DownstreamConnection,
    downstream: Connection,
    initialBytes: ByteBuffer? = nil
  ) {
    self.route = route
    self.proxy = proxy
    self.info = info
    self.downstream = downstream
    downstream.callbacks = self
    downstream.halfCloseEnabled = true
    if var initialBytes, initialBytes.readableBytes > 0 {
      bytes.add(received: initialBytes.readableBytes)
      pendingUpstream = initialBytes
      initialBytes = ByteBuffer()
    }
  }

  package convenience init(
    filter: TcpProxyFilter, proxy: ProxyContext, connection info: DownstreamConnection,
    downstream: Connection,
    initialBytes: ByteBuffer? = nil
  ) {
    self.init(
      route: TcpProxyFilterRef(filter), proxy: proxy, connection: info, downstream: downstream,
      initialBytes: initialBytes)
  }

  /// Bytes for upstream that arrived before it connected (only listener-filter bytes: downstream does not
  /// read until upstream connects).
  private var pendingUpstream: ByteBuffer?

  package func start() {
    route.filter.stats.cxTotal.inc()
    let clusterName = route.filter.chooseClusterName()
    guard let cluster = proxy.clusterManager.cluster(named: clusterName) else {
      route.filter.stats.cxNoRoute.inc()
      fail(flag: "NC", details: "no cluster \(clusterName)")
      return
    }
    self.cluster = cluster
    guard cluster.acquireConnectionSlot() else {
      fail(flag: "UO", details: "upstream connection overflow")
      return
    }
    holdsConnectionSlot = true
    // Downstream is read only once upstream can take the bytes.
    if downstream.isReadEnabled { downstream.readDisable(true) }
    downstreamPaused = true
    if let timeout = route.filter.config.idleTimeout {
      idleTimer = downstream.makeTimer(kind: Self.idleKind)
      downstream.reactor.arm(idleTimer, after: timeout)
    }
    connect()
  }

  // MARK: Upstream connect

  private func connect() {
    guard let cluster, downstream.state != .closed else { return }
    attempt += 1
    guard let host = cluster.chooseHost(originalDestination: info.originalDestination) else {
      cluster.stats.cxNoneHealthy.inc()
      fail(flag: "UH", details: "no healthy upstream")
      return
    }
    self.host = host
    cluster.connectionOpened(to: host)
    upstreamCounted = true
    connectStartNanos = MonotonicClock.nanoseconds()
    let connection: Connection
    do {
      connection = try Connection.upstream(to: host, of: cluster, reactor: downstream.reactor)
    } catch {
      connectFailed(errno: error.errno, reason: error.reason, transport: error.transportFailureReason)
      return
    }
    connection.callbacks = self
    connection.halfCloseEnabled = true
    upstream = connection
    connectTimer = connection.makeTimer(kind: Self.connectKind)
    connection.reactor.arm(connectTimer, after: cluster.config.connectTimeout)
  }

  /// `transport`: Envoy's transport failure reason (none for a timeout).
  private func connectFailed(
    errno code: Int32, reason: String, transport: String? = nil, timedOut: Bool = false
  ) {
    guard let cluster, let host else { return }
    cluster.stats.cxConnectFail.inc()
    if timedOut { cluster.stats.cxConnectTimeout.inc() }
    host.connectFailures.wrappingAdd(1, ordering: .relaxed)
    releaseUpstreamCount()
    upstream = nil
    transportFailureReason = transport
    proxy.logger.debug(
      "upstream connect failed",
      metadata: [
        "proxy.connection": "\(info.id)", "proxy.cluster": "\(cluster.name)",
        "proxy.upstream": "\(host.address)", "error": "\(reason)", "proxy.attempt": "\(attempt)",
      ])
    if attempt < route.filter.config.maxConnectAttempts, downstream.state != .closed {
      connect()
    } else {
      fail(flag: "UF", details: "upstream connect error: \(reason)")
    }
  }

  private func didConnect(_ connection: Connection) {
    upstreamConnected = true
    connection.reactor.cancel(connectTimer)
    let now = MonotonicClock.nanoseconds()
    cluster?.stats.cxConnectMs.record(Double(now &- connectStartNanos) / 1_000_000)
    upstreamStartNanos = now
    // Only access logs read the upstream's local address: no getsockname otherwise.
    if !route.filter.accessLogs.isEmpty { upstreamLocal = connection.localAddress }
    if var bytes = pendingUpstream {
      pendingUpstream = nil
      connection.write(&bytes)
    }
    if downstream.readBuffer.readableBytes > 0 { forward(from: downstream, to: connection, endStream: false) }
    if downstream.readEnded {
      connection.shutdownWrite()
    }
    if downstreamPaused {
      downstreamPaused = false
      downstream.readDisable(false)
    }
  }

  // MARK: ConnectionCallbacks

  package func onData(_ connection: Connection, endStream: Bool) {
    let count = connection.readBuffer.readableBytes
    touch()
    if connection === downstream {
      bytes.add(received: count)
      guard let upstream, upstreamConnected else { return }  // reading is off until then
      forward(from: connection, to: upstream, endStream: endStream)
    } else {
      bytes.add(sent: count)
      if endStream, !downstream.readEnded { closedByUpstream = true }
      forward(from: connection, to: downstream, endStream: endStream)
    }
    reportBytes()
  }

  /// Writes what `source` received to `destination` (the write may close either side).
  private func forward(from source: Connection, to destination: Connection, endStream: Bool) {
    var bytes = source.takeReadBuffer()
    destination.write(&bytes, endStream: endStream)
    source.returnReadBuffer(&bytes)
  }

  package func onEvent(_ connection: Connection, _ event: ConnectionEvent) {
    if connection === downstream {
      downstreamClosed(event)
      return
    }
    switch event {
    case .connected:
      didConnect(connection)
    case .connectFailed(let code):
      connectFailed(
        errno: code, reason: String(cString: strerror(code)),
        transport: UpstreamConnectError.delayedFailureReason(code))
    case .remoteClose, .localClose:
      upstreamClosed(event)
    }
  }

  package func onAboveWriteBufferHighWatermark(_ connection: Connection) {
    // `connection` cannot take more: stop reading its partner.
    if connection === downstream {
      guard let upstream, !upstreamPaused else { return }
      upstreamPaused = true
      route.filter.stats.upstreamPausedReading.inc()
      upstream.readDisable(true)
    } else if !downstreamPaused {
      downstreamPaused = true
      route.filter.stats.downstreamPausedReading.inc()
      downstream.readDisable(true)
    }
  }

  package func onBelowWriteBufferLowWatermark(_ connection: Connection) {
    if connection === downstream {
      guard let upstream, upstreamPaused else { return }
      upstreamPaused = false
      route.filter.stats.upstreamResumedReading.inc()
      upstream.readDisable(false)
    } else if downstreamPaused, upstreamConnected {
      downstreamPaused = false
      route.filter.stats.downstreamResumedReading.inc()
      downstream.readDisable(false)
    }
  }

  package func onTimer(_ connection: Connection, kind: UInt32) {
    switch kind {
    case Self.idleKind:
      route.filter.stats.idleTimeout.inc()
      terminationDetails = "idle timeout"
      upstream?.close(.noFlush)
      downstream.close(.noFlush)
    case Self.connectKind:
      guard connection === upstream, !upstreamConnected else { return }
      upstream = nil
      connection.callbacks = nil
      connection.close(.noFlush)
      connectFailed(errno: ETIMEDOUT, reason: "connect timeout", timedOut: true)
    default:
      break
    }
  }

  // MARK: Closing

  private func downstreamClosed(_ event: ConnectionEvent) {
    if terminationDetails == nil, case .remoteClose(let code?) = event {
      terminationDetails = "downstream error: \(String(cString: strerror(code)))"
    }
    if let upstream, upstream.state != .closed {
      upstream.close(upstreamConnected ? .flushWrite : .noFlush)  // reports back through onEvent
    } else {
      finish()
    }
  }

  private func upstreamClosed(_ event: ConnectionEvent) {
    guard let cluster, upstreamCounted else {
      finishIfDone()
      return
    }
    if case .localClose = event, !closedByUpstream {
      cluster.stats.cxDestroyLocal.inc()
    } else {
      cluster.stats.cxDestroyRemote.inc()
      closedByUpstream = true
    }
    cluster.stats.cxDestroy.inc()
    if upstreamStartNanos > 0 {
      cluster.stats.cxLengthMs.record(Double(MonotonicClock.nanoseconds() &- upstreamStartNanos) / 1_000_000)
    }
    releaseUpstreamCount()
    upstream = nil
    if downstream.state != .closed {
      downstream.close(.flushWrite)
    } else {
      finish()
    }
  }

  private func finishIfDone() {
    if downstream.state == .closed, upstream == nil || upstream?.state == .closed { finish() }
  }

  /// Closes a connection that never got (or lost) its upstream, with an Envoy response flag.
  private func fail(flag: String, details: String) {
    responseFlags.append(flag)
    terminationDetails = details
    downstream.close(.noFlush)
  }

  private func touch() {
    guard idleTimer != .none, let timeout = route.filter.config.idleTimeout else { return }
    downstream.reactor.arm(idleTimer, after: timeout)
  }

  private func reportBytes() { bytes.report(to: route.filter.stats, cluster: cluster?.stats) }

  private func releaseUpstreamCount() {
    guard upstreamCounted else { return }
    upstreamCounted = false
    if let cluster, let host { cluster.connectionClosed(to: host) }
  }

  /// Runs once, when both sides are gone: stats, circuit-breaker slot, access log.
  private func finish() {
    guard !finished else { return }
    finished = true
    reportBytes()
    releaseUpstreamCount()
    if holdsConnectionSlot {
      holdsConnectionSlot = false
      cluster?.releaseConnectionSlot()
    }
    accounting?.finish()
    accounting = nil
    onFinish?()
    onFinish = nil
    let outcome = TcpProxyFilter.Outcome(
      upstreamHost: host, upstreamLocal: upstreamLocal, cluster: cluster, bytes: bytes,
      responseFlags: responseFlags, terminationDetails: terminationDetails,
      transportFailureReason: transportFailureReason)
    route.filter.logAccess(info, outcome, to: proxy.accessLog)
  }
}
