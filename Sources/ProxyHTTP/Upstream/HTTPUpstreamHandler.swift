internal import NIOCore
internal import ProxyCore

/// One upstream HTTP/1.1 connection. While a downstream stream is attached it parses the response
/// head (keeping a cumulation buffer only while the head is partial), forwards body slices zero-copy
/// per the response framing, and reads only while the downstream is writable. While idle in its
/// pool it reads only to notice a close (any byte from an idle upstream retires the connection) and
/// closes itself after the cluster's idle timeout.
final class HTTPUpstreamHandler: ChannelDuplexHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  enum Phase: Equatable {
    /// In the pool (or not yet attached after connecting).
    case idle
    case awaitingHead
    case body
    /// After a 101: raw bytes until close.
    case tunnel
    case closed
  }

  let host: UpstreamHost
  let cluster: UpstreamCluster
  let clusterState: HTTPClusterState
  private let pool: HTTPUpstreamPool
  private var context: ChannelHandlerContext?
  private(set) var phase: Phase = .idle
  /// The stream's handler while one is attached. A strong reference (no weak side table on the hot
  /// path); the cycle through the downstream's stream is broken by `detach` and `channelInactive`.
  private var downstream: HTTPDownstreamHandler?
  private var requestMethod: HTTP1Method = .get
  private var partialHead: ByteBuffer?
  private var framer = BodyFramer.none
  private var readPending = false
  /// The response said `connection: close`, or the body ran until close, or bytes followed it.
  private var mustClose = false
  /// Requests served; > 0 means the connection was reused from the pool.
  private(set) var requestsServed = 0
  private var idleSince = NIODeadline.now()
  private var idleTimer: Scheduled<Void>?
  private var released = false

  init(host: UpstreamHost, cluster: UpstreamCluster, clusterState: HTTPClusterState, pool: HTTPUpstreamPool) {
    self.host = host
    self.cluster = cluster
    self.clusterState = clusterState
    self.pool = pool
  }

  var isReusable: Bool {
    phase == .idle && !mustClose && (context?.channel.isActive ?? false)
  }

  var isWritable: Bool { context?.channel.isWritable ?? false }
  var channel: (any Channel)? { context?.channel }

  // MARK: Called by the downstream handler (same loop)

  /// Binds a downstream stream; the response that follows belongs to it.
  func attach(_ downstream: HTTPDownstreamHandler, method: HTTP1Method) {
    self.downstream = downstream
    requestMethod = method
    phase = .awaitingHead
    framer = .none
    partialHead = nil
    // An armed idle timer stays armed: it re-checks when it fires (cheaper than cancelling and
    // scheduling a timer per request).
    requestsServed += 1
    host.requestsActive.wrappingAdd(1, ordering: .relaxed)
  }

  func write(_ bytes: ByteBuffer) {
    context?.write(wrapOutboundOut(bytes), promise: nil)
  }

  func flush() { context?.flush() }

  func resumeReadingIfPaused() {
    guard readPending, let context else { return }
    readPending = false
    context.read()
  }

  /// The stream is done with this connection: back to the pool when `reuse`, else closed.
  func detach(reuse: Bool) {
    if downstream != nil { host.requestsActive.wrappingSubtract(1, ordering: .relaxed) }
    downstream = nil
    partialHead = nil
    if reuse && !mustClose && phase == .idle, let context, context.channel.isActive {
      idleSince = .now()
      pool.release(self)
      scheduleIdleCheck()
      if readPending {
        readPending = false
        context.read()
      }
    } else {
      close()
    }
  }

  func close() {
    phase = .closed
    idleTimer?.cancel()
    idleTimer = nil
    context?.close(promise: nil)
  }

  /// Half-closes the request side of a tunnel once pending bytes are written.
  func closeOutputAfterFlush() {
    guard let context else { return }
    let written = context.eventLoop.makePromise(of: Void.self)
    context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: written)
    written.futureResult.assumeIsolated().whenComplete { _ in
      context.close(mode: .output, promise: nil)
    }
  }

  // MARK: Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    clusterState.cxHTTP1Total.inc()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    self.context = nil
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var bytes = unwrapInboundIn(data)
    switch phase {
    case .idle, .closed:
      // An idle HTTP/1.1 upstream has nothing to say; anything it sends makes it unusable.
      mustClose = true
      pool.remove(self)
      close()
    case .tunnel:
      downstream?.upstreamTunnelBytes(bytes)
    case .body:
      forwardBody(&bytes)
    case .awaitingHead:
      if var partial = partialHead {
        partial.writeBuffer(&bytes)
        partialHead = nil
        bytes = partial
      }
      parseHead(&bytes)
    }
  }

  private func parseHead(_ bytes: inout ByteBuffer) {
    while phase == .awaitingHead {
      guard bytes.readableBytes > 0 else { return }
      let result = bytes.withUnsafeReadableBytes {
        HTTP1HeadParser.parseResponse($0, requestMethod: requestMethod)
      }
      switch result {
      case .incomplete:
        partialHead = bytes
        return
      case .invalid(let error):
        mustClose = true
        let downstream = self.downstream
        close()
        downstream?.upstreamProtocolError(error)
        return
      case .complete(let head, let framing):
        let status = head.status ?? 0
        if status < 200 && status != 101 {
          // 1xx informational (100 Continue answered locally, 103): not forwarded.
          bytes.moveReaderIndex(forwardBy: head.length)
          continue
        }
        if !head.keepAlive { mustClose = true }
        let headBytes = bytes.readSlice(length: head.length)!
        switch framing {
        case .upgrade:
          phase = .tunnel
          framer = .untilClose
        case .untilClose:
          mustClose = true
          phase = .body
          framer = .untilClose
        default:
          phase = .body
          framer = BodyFramer(framing)
        }
        // Body bytes that came with the head leave in the same write.
        let (body, complete) = takeBody(&bytes)
        downstream?.upstreamResponseHead(
          head, bytes: headBytes, body: body, complete: complete, framing: framing)
        if complete {
          finishResponse(leftover: bytes.readableBytes)
        } else if phase == .tunnel, bytes.readableBytes > 0 {
          downstream?.upstreamTunnelBytes(bytes)
        }
        return
      }
    }
  }

  /// Takes the body bytes of `bytes` per the framer; returns them and whether the body ended.
  private func takeBody(_ bytes: inout ByteBuffer) -> (ByteBuffer?, Bool) {
    if phase == .tunnel { return (nil, false) }
    let progress = bytes.withUnsafeReadableBytes { framer.consume($0) }
    switch progress {
    case .needMore:
      let all = bytes.readableBytes > 0 ? bytes.readSlice(length: bytes.readableBytes) : nil
      return (all, false)
    case .complete(let n):
      return (n > 0 ? bytes.readSlice(length: n) : nil, true)
    case .invalid(let error):
      mustClose = true
      let downstream = self.downstream
      close()
      downstream?.upstreamProtocolError(error)
      return (nil, false)
    }
  }

  private func forwardBody(_ bytes: inout ByteBuffer) {
    let (body, complete) = takeBody(&bytes)
    if let body { downstream?.upstreamResponseBody(body) }
    if complete { finishResponse(leftover: bytes.readableBytes) }
  }

  private func finishResponse(leftover: Int) {
    if leftover > 0 { mustClose = true }  // bytes after a response we did not ask for
    phase = .idle
    downstream?.upstreamResponseComplete(reusable: !mustClose)
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    downstream?.upstreamReadComplete()
  }

  func read(context: ChannelHandlerContext) {
    if let downstream, !downstream.isWritable {
      readPending = true
    } else {
      context.read()
    }
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable { downstream?.upstreamBecameWritable() }
    context.fireChannelWritabilityChanged()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    guard case .inputClosed? = event as? ChannelEvent else {
      context.fireUserInboundEventTriggered(event)
      return
    }
    switch phase {
    case .tunnel:
      downstream?.upstreamTunnelInputClosed()
    case .body where framer == .untilClose:
      mustClose = true
      phase = .idle
      downstream?.upstreamResponseComplete(reusable: false)
      close()
    default:
      mustClose = true
      close()
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    mustClose = true
    context.close(promise: nil)
  }

  func channelInactive(context: ChannelHandlerContext) {
    let previous = phase
    phase = .closed
    idleTimer?.cancel()
    idleTimer = nil
    pool.remove(self)
    if let downstream {
      self.downstream = nil
      host.requestsActive.wrappingSubtract(1, ordering: .relaxed)
      switch previous {
      case .body where framer == .untilClose:
        downstream.upstreamResponseComplete(reusable: false)
      case .tunnel:
        downstream.upstreamTunnelClosed()
      case .awaitingHead, .body:
        downstream.upstreamReset(responseStarted: previous == .body)
      case .idle, .closed:
        break
      }
    }
    releaseConnection()
    context.fireChannelInactive()
  }

  /// Connection accounting, once: the cluster's slot and active counts.
  private func releaseConnection() {
    guard !released else { return }
    released = true
    cluster.releaseConnectionSlot()
    cluster.stats.cxActive.dec()
    cluster.stats.cxDestroy.inc()
    host.connectionsActive.wrappingSubtract(1, ordering: .relaxed)
  }

  // MARK: Idle timeout

  /// Arms the idle timer unless it is armed already. It is never cancelled while the connection is in
  /// use: when it fires it closes the connection only if it has been idle for the whole timeout, and
  /// otherwise re-arms for the rest of it.
  private func scheduleIdleCheck() {
    guard let timeout = clusterState.idleTimeout, let context, idleTimer == nil else { return }
    let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    idleTimer = context.eventLoop.scheduleTask(deadline: idleSince + timeout) {
      bound.value.idleCheck()
    }
  }

  private func idleCheck() {
    idleTimer = nil
    guard phase != .closed, let timeout = clusterState.idleTimeout else { return }
    guard phase == .idle, downstream == nil else {
      // In use: the connection is idle again once its response is done (`detach` re-arms).
      return
    }
    if NIODeadline.now() - idleSince >= timeout {
      cluster.stats.scope.counter("upstream_cx_idle_timeout").inc()
      pool.remove(self)
      close()
    } else {
      scheduleIdleCheck()
    }
  }
}
