internal import NIOCore

/// The downstream half of a tcp_proxy connection, and the owner of its state. It connects upstream on the
/// same event loop, then glues the two channels: bytes read on one side are written to the other, and a
/// side is only read while the other side is writable, so neither direction ever buffers more than the
/// channel's write-buffer high watermark (backpressure, never unbounded buffering). A FIN on one side
/// becomes a write shutdown on the other after pending bytes are written (half-close); a connection with
/// no bytes either way for the idle timeout is closed.
final class TCPProxyDownstreamHandler: ChannelDuplexHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let filter: TcpProxyFilter
  private let connection: DownstreamConnection
  private let proxy: ProxyContext
  private var context: ChannelHandlerContext?
  private var upstream: TCPProxyUpstreamHandler?
  private var cluster: UpstreamCluster?
  private var host: UpstreamHost?
  /// Bytes from downstream waiting for the upstream connection.
  private var pending: ByteBuffer?
  /// A read was requested while the upstream could not take more.
  private var readPending = false
  private var holdsConnectionSlot = false
  private var upstreamCounted = false
  private var downstreamInputClosed = false
  private var upstreamInputClosed = false
  private var closing = false
  private var finished = false
  private var lastActivity = NIODeadline.now()
  private var idleTimer: Scheduled<Void>?
  private var connectStart = NIODeadline.now()
  private var upstreamStart: NIODeadline?
  private var upstreamLocal: SocketAddress?
  private var closedByUpstream = false
  private var responseFlags: [String] = []
  private var terminationDetails: String?
  // Byte counts: totals for the access log, and the part not yet added to the shared counters.
  private var bytes = TcpProxyByteCount()

  init(
    filter: TcpProxyFilter, connection: DownstreamConnection, proxy: ProxyContext, initialBytes: ByteBuffer?
  ) {
    self.filter = filter
    self.connection = connection
    self.proxy = proxy
    if let initialBytes, initialBytes.readableBytes > 0 {
      self.pending = initialBytes
      self.bytes.add(received: initialBytes.readableBytes)
    }
  }

  // MARK: Setup

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    filter.stats.cxTotal.inc()
    let clusterName = filter.chooseClusterName()
    guard let cluster = proxy.clusterManager.cluster(named: clusterName) else {
      filter.stats.cxNoRoute.inc()
      fail(flag: "NC", details: "no cluster \(clusterName)")
      return
    }
    self.cluster = cluster
    guard cluster.acquireConnectionSlot() else {
      fail(flag: "UO", details: "upstream connection overflow")
      return
    }
    holdsConnectionSlot = true
    if let timeout = filter.config.idleTimeout { scheduleIdleCheck(after: timeout) }
    connect(attempt: 1)
  }

  private func connect(attempt: Int) {
    guard let cluster, let context, !closing else { return }
    guard let host = cluster.chooseHost(originalDestination: connection.originalDestination) else {
      cluster.stats.cxNoneHealthy.inc()
      fail(flag: "UH", details: "no healthy upstream")
      return
    }
    self.host = host
    cluster.connectionOpened(to: host)
    upstreamCounted = true
    connectStart = .now()
    UpstreamConnector.connect(to: host, cluster: cluster, on: context.eventLoop)
      .assumeIsolated()
      .whenComplete { result in
        switch result {
        case .success(let channel):
          self.upstreamConnected(channel)
        case .failure(let error):
          self.connectFailed(error, attempt: attempt)
        }
      }
  }

  private func connectFailed(_ error: any Error, attempt: Int) {
    guard let cluster, let host else { return }
    cluster.stats.cxConnectFail.inc()
    if case ChannelError.connectTimeout = error { cluster.stats.cxConnectTimeout.inc() }
    host.connectFailures.wrappingAdd(1, ordering: .relaxed)
    releaseUpstreamCount()
    proxy.logger.debug(
      "upstream connect failed",
      metadata: [
        "proxy.connection": "\(connection.id)", "proxy.cluster": "\(cluster.name)",
        "proxy.upstream": "\(host.address)", "error": "\(error)", "proxy.attempt": "\(attempt)",
      ])
    if attempt < filter.config.maxConnectAttempts && !closing {
      connect(attempt: attempt + 1)
    } else {
      fail(flag: "UF", details: "upstream connect error: \(error)")
    }
  }

  private func upstreamConnected(_ channel: any Channel) {
    guard let context, !closing else {
      channel.close(promise: nil)
      return
    }
    let now = NIODeadline.now()
    cluster?.stats.cxConnectMs.record(Double((now - connectStart).nanoseconds) / 1_000_000)
    upstreamStart = now
    upstreamLocal = channel.localAddress
    let handler = TCPProxyUpstreamHandler(downstream: self)
    do {
      try channel.pipeline.syncOperations.addHandler(handler)
    } catch {
      channel.close(promise: nil)
      fail(flag: "UF", details: "cannot set up upstream pipeline: \(error)")
      return
    }
    upstream = handler
    if var bytes = pending {
      pending = nil
      handler.write(&bytes)
      handler.flush()
    }
    if downstreamInputClosed {
      handler.closeOutputAfterFlush()
    }
    if readPending && channel.isWritable {
      readPending = false
      context.read()
    }
  }

  // MARK: Downstream events

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var bytes = unwrapInboundIn(data)
    self.bytes.add(received: bytes.readableBytes)
    lastActivity = .now()
    if let upstream {
      upstream.write(&bytes)
    } else if pending == nil {
      pending = bytes
    } else {
      pending!.writeBuffer(&bytes)
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    upstream?.flush()
    reportBytes()
  }

  func read(context: ChannelHandlerContext) {
    if let upstream, upstream.isWritable {
      context.read()
    } else {
      if !readPending && upstream != nil { filter.stats.downstreamPausedReading.inc() }
      readPending = true
    }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable { upstream?.resumeReadingIfPaused() }
    context.fireChannelWritabilityChanged()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    guard case .inputClosed? = event as? ChannelEvent else {
      context.fireUserInboundEventTriggered(event)
      return
    }
    downstreamInputClosed = true
    if upstreamInputClosed {
      closeBoth()
    } else {
      upstream?.closeOutputAfterFlush()
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    terminationDetails = terminationDetails ?? "downstream error: \(error)"
    context.close(promise: nil)
  }

  func channelInactive(context: ChannelHandlerContext) {
    closing = true
    if let upstream {
      upstream.closeAfterFlush()
    } else {
      finish()
    }
    context.fireChannelInactive()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    closing = true
    upstream?.closeAfterFlush()
    finish()
    self.context = nil
  }

  // MARK: Called by the upstream half (same event loop)

  var isWritable: Bool { context?.channel.isWritable ?? false }

  func writeFromUpstream(_ bytes: inout ByteBuffer) {
    self.bytes.add(sent: bytes.readableBytes)
    lastActivity = .now()
    context?.write(wrapOutboundOut(bytes), promise: nil)
  }

  func flushFromUpstream() {
    context?.flush()
    reportBytes()
  }

  func resumeReadingIfPaused() {
    guard readPending, let context else { return }
    readPending = false
    filter.stats.downstreamResumedReading.inc()
    context.read()
  }

  func upstreamPausedReading() { filter.stats.upstreamPausedReading.inc() }
  func upstreamResumedReading() { filter.stats.upstreamResumedReading.inc() }

  func upstreamInputDidClose() {
    upstreamInputClosed = true
    if !downstreamInputClosed { closedByUpstream = true }
    if downstreamInputClosed {
      closeBoth()
    } else if let context {
      context.closeAfterPendingWrites(mode: .output)
    }
  }

  /// The upstream channel closed. Account for it; close downstream once its pending bytes are written.
  func upstreamDidClose() {
    guard upstream != nil else { return }
    if let cluster {
      if closing && !closedByUpstream {
        cluster.stats.cxDestroyLocal.inc()
      } else {
        cluster.stats.cxDestroyRemote.inc()
      }
      cluster.stats.cxDestroy.inc()
      if let upstreamStart {
        cluster.stats.cxLengthMs.record(Double((NIODeadline.now() - upstreamStart).nanoseconds) / 1_000_000)
      }
    }
    releaseUpstreamCount()
    upstream = nil
    if let context, !closing {
      closing = true
      closedByUpstream = true
      context.closeAfterPendingWrites(mode: .all)
    } else {
      finish()
    }
  }

  // MARK: Closing

  private func closeBoth() {
    closing = true
    upstream?.closeAfterFlush()
    if let context { context.closeAfterPendingWrites(mode: .all) }
  }

  /// Closes a connection that never got (or lost) its upstream, with an Envoy response flag.
  private func fail(flag: String, details: String) {
    responseFlags.append(flag)
    terminationDetails = details
    closing = true
    context?.close(promise: nil)
  }

  private func scheduleIdleCheck(after delay: TimeAmount) {
    guard let context else { return }
    let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
    idleTimer = context.eventLoop.scheduleTask(in: delay) {
      loopBound.value.idleCheck()
    }
  }

  private func idleCheck() {
    guard !closing, let timeout = filter.config.idleTimeout else { return }
    let idle = NIODeadline.now() - lastActivity
    if idle >= timeout {
      filter.stats.idleTimeout.inc()
      terminationDetails = "idle timeout"
      closing = true
      upstream?.closeAfterFlush()
      context?.close(promise: nil)
    } else {
      scheduleIdleCheck(after: timeout - idle)
    }
  }

  private func reportBytes() { bytes.report(to: filter.stats, cluster: cluster?.stats) }

  private func releaseUpstreamCount() {
    guard upstreamCounted else { return }
    upstreamCounted = false
    if let cluster, let host { cluster.connectionClosed(to: host) }
  }

  /// Runs once, when the downstream is gone: stats, circuit-breaker slot, access log.
  private func finish() {
    guard !finished else { return }
    finished = true
    idleTimer?.cancel()
    reportBytes()
    if upstream == nil { releaseUpstreamCount() }
    if holdsConnectionSlot {
      holdsConnectionSlot = false
      cluster?.releaseConnectionSlot()
    }
    let outcome = TcpProxyFilter.Outcome(
      upstreamHost: host, upstreamLocal: upstreamLocal, cluster: cluster?.name, bytes: bytes,
      responseFlags: responseFlags, terminationDetails: terminationDetails)
    filter.logAccess(connection, outcome, to: proxy.accessLog)
  }
}
