internal import NIOCore
internal import ProxyCore

/// What an upstream HTTP/1.1 connection needs from its transport: one implementation per data path (the
/// reactor's `Connection`, a NIO channel). Calls come on the worker thread.
protocol HTTPUpstreamIO: AnyObject {
  var isWritable: Bool { get }
  var localAddress: SocketAddress? { get }
  /// Queues `bytes` (sent at once or at the next `flush`).
  func write(_ bytes: ByteBuffer)
  func flush()
  func close()
  /// Half-closes the request side once everything queued is written.
  func shutdownOutputAfterPendingWrites()
  /// Reading may have to start or stop: ask `shouldRead()` again.
  func updateReading()
  /// Runs `idleCheck()` at `deadline` unless a check is already scheduled.
  func scheduleIdleCheck(at deadline: NIODeadline)
}

/// One upstream HTTP/1.1 connection without I/O. While a downstream stream is attached it parses the
/// response head (keeping a cumulation buffer only while the head is partial), forwards body slices
/// zero-copy per the response framing, and reads only while the downstream is writable. While idle in its
/// pool it reads only to notice a close (any byte from an idle upstream retires the connection) and
/// closes itself after the cluster's idle timeout. It owns the connection's accounting (circuit-breaker
/// slot, `upstream_cx_*`, the host's counts) from the moment it is created until it closes.
final class HTTPUpstreamConnection: PooledHTTPUpstream {
  enum Phase: Equatable {
    /// Connecting, in the pool, or not yet attached after connecting.
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
  private let pool: HTTPUpstreamPool<HTTPUpstreamConnection>
  private var io: (any HTTPUpstreamIO)?
  private(set) var phase: Phase = .idle
  /// The connection manager that asked for this connection, until it connects or fails.
  private var owner: HTTPConnectionManager?
  private var connected = false
  /// The stream's connection manager while one is attached. A strong reference (no weak side table on the
  /// hot path); the cycle through the manager's stream is broken by `detach` and `closed`.
  private var downstream: HTTPConnectionManager?
  private var requestMethod: HTTP1Method = .get
  private var partialHead: ByteBuffer?
  /// The last response head's field array, kept for the next parse.
  private var scratchFields: [HTTP1HeaderField] = []
  private var framer = BodyFramer.none
  /// The response said `connection: close`, or the body ran until close, or bytes followed it.
  private var mustClose = false
  /// Requests served; > 0 means the connection was reused from the pool.
  private(set) var requestsServed = 0
  private var idleSince = NIODeadline.now()
  private var released = false
  private let connectStart = NIODeadline.now()

  /// A connection about to be started for `owner` (counted as opened now).
  init(
    host: UpstreamHost, cluster: UpstreamCluster, clusterState: HTTPClusterState,
    pool: HTTPUpstreamPool<HTTPUpstreamConnection>, owner: HTTPConnectionManager
  ) {
    self.host = host
    self.cluster = cluster
    self.clusterState = clusterState
    self.pool = pool
    self.owner = owner
    cluster.connectionOpened(to: host)
  }

  var isReusable: Bool { phase == .idle && connected && !mustClose && io != nil }
  var isWritable: Bool { io?.isWritable ?? false }
  var localAddress: SocketAddress? { io?.localAddress }

  // MARK: Connecting (from the transport)

  /// The transport exists (before its connect completes); writes queue until then.
  func bind(io: any HTTPUpstreamIO) { self.io = io }

  func didConnect() {
    connected = true
    cluster.stats.cxConnectMs.record(Double((NIODeadline.now() - connectStart).nanoseconds) / 1_000_000)
    clusterState.cxHTTP1Total.inc()
    let owner = self.owner
    self.owner = nil
    owner?.upstreamConnected(self)
  }

  func connectFailed(reason: String, timedOut: Bool) {
    cluster.stats.cxConnectFail.inc()
    if timedOut { cluster.stats.cxConnectTimeout.inc() }
    host.connectFailures.wrappingAdd(1, ordering: .relaxed)
    phase = .closed
    io = nil
    released = true
    cluster.releaseConnectionSlot()
    cluster.connectionClosed(to: host)
    let owner = self.owner
    self.owner = nil
    owner?.upstreamConnectFailed(self, reason: reason, timedOut: timedOut)
  }

  // MARK: Called by the connection manager (same worker)

  /// Binds a downstream stream; the response that follows belongs to it.
  func attach(_ downstream: HTTPConnectionManager, method: HTTP1Method) {
    self.downstream = downstream
    requestMethod = method
    phase = .awaitingHead
    framer = .none
    partialHead = nil
    // An armed idle check stays armed: it re-checks when it fires (cheaper than cancelling and
    // scheduling a timer per request).
    requestsServed += 1
    host.requestsActive.wrappingAdd(1, ordering: .relaxed)
  }

  func write(_ bytes: ByteBuffer) { io?.write(bytes) }

  func flush() { io?.flush() }

  func updateReading() { io?.updateReading() }

  /// Whether the transport should read now: always while idle (to notice a close), else while the
  /// downstream can take what is read.
  func shouldRead() -> Bool {
    guard let downstream else { return true }
    return downstream.isWritable
  }

  /// The stream is done with this connection: back to the pool when `reuse`, else closed.
  func detach(reuse: Bool) {
    if downstream != nil { host.requestsActive.wrappingSubtract(1, ordering: .relaxed) }
    downstream = nil
    partialHead = nil
    if reuse && !mustClose && phase == .idle && connected, let io {
      idleSince = .now()
      pool.release(self)
      scheduleIdleCheck()
      io.updateReading()
    } else {
      close()
    }
  }

  func close() {
    phase = .closed
    io?.close()
  }

  /// Half-closes the request side of a tunnel once pending bytes are written.
  func closeOutputAfterFlush() { io?.shutdownOutputAfterPendingWrites() }

  // MARK: Events from the transport

  func read(_ bytes: inout ByteBuffer) {
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

  func readComplete() { downstream?.upstreamReadComplete() }

  /// The transport went above or below its watermarks.
  func writabilityChanged() { downstream?.upstreamWritabilityChanged() }

  /// The upstream half-closed (FIN).
  func inputClosed() {
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

  /// The transport closed (once); what was in flight is reported to the stream.
  func closed() {
    if !connected, owner != nil {
      connectFailed(reason: "connection closed while connecting", timedOut: false)
      return
    }
    let previous = phase
    phase = .closed
    io = nil
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
  }

  // MARK: Parsing

  private func parseHead(_ bytes: inout ByteBuffer) {
    while phase == .awaitingHead {
      guard bytes.readableBytes > 0 else { return }
      let result = bytes.withUnsafeReadableBytes {
        HTTP1HeadParser.parseResponse($0, requestMethod: requestMethod, fieldStorage: &scratchFields)
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
        scratchFields = head.fields  // the next response's field array, once this one is gone
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

  /// Connection accounting, once: the cluster's slot and active counts.
  private func releaseConnection() {
    guard !released else { return }
    released = true
    cluster.releaseConnectionSlot()
    cluster.connectionClosed(to: host)
    cluster.stats.cxDestroy.inc()
  }

  // MARK: Idle timeout

  /// Asks for an idle check at the end of the idle timeout. It is never cancelled while the connection is
  /// in use: when it fires it closes the connection only if it has been idle for the whole timeout, and
  /// otherwise asks again for the rest of it.
  private func scheduleIdleCheck() {
    guard let timeout = clusterState.idleTimeout else { return }
    io?.scheduleIdleCheck(at: idleSince + timeout)
  }

  /// The check asked for by `scheduleIdleCheck(at:)` is due.
  func idleCheck() {
    guard phase != .closed, let timeout = clusterState.idleTimeout else { return }
    guard phase == .idle, downstream == nil else {
      // In use: the connection is idle again once its response is done (`detach` asks again).
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
