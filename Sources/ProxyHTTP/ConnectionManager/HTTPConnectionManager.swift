internal import Logging
internal import NIOCore
internal import ProxyCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// What the HTTP connection manager needs from its downstream connection: one implementation per data path
/// (the reactor's `Connection`, a NIO channel). Calls come on the connection's worker thread.
protocol HTTPDownstreamIO: AnyObject {
  /// The connection can take more output (below its high watermark).
  var isWritable: Bool { get }
  /// Queues `bytes` for the client (sent at once or at the next `flush`).
  func write(_ bytes: ByteBuffer)
  func flush()
  /// Closes once everything queued is written.
  func closeAfterPendingWrites()
  /// Closes now (pending output is dropped).
  func close()
  /// Half-closes the client side once everything queued is written (a tunnel whose upstream ended).
  func shutdownOutputAfterPendingWrites()
  /// Reading may have to start or stop: ask `shouldRead()` again.
  func updateReading()
  /// Runs `timerFired()` at `deadline`, replacing a timer set before.
  func scheduleTimer(at deadline: NIODeadline)
  func cancelTimer()
  /// Starts connecting `upstream` (which reports the outcome to its owner).
  func connect(_ upstream: HTTPUpstreamConnection)
  /// A buffer for output to this connection, at least `capacity` bytes (the reactor lends a pooled one when
  /// it fits, and takes it back once it is written).
  func outputBuffer(capacity: Int) -> ByteBuffer
}

/// Envoy's HTTP connection manager for HTTP/1.1 without I/O: the owner of each request's state. It parses
/// requests, routes them, answers locally or proxies them over the worker's upstream pools, and decides
/// keep-alive, pipelining, upgrades, timeouts and resets; its `HTTPDownstreamIO` moves the bytes.
///
/// Invariants: requests are parsed with the offset codec straight from the receive buffer (a
/// cumulation buffer exists only while a head is partial or a pipelined request waits); bodies go
/// out as slices of the receive buffer in both directions; one stream is active at a time, so
/// responses leave in request order; reading stops only when a pipelined request is already
/// waiting or the upstream cannot take more (backpressure follows the partner's writability).
final class HTTPConnectionManager {
  /// One request/response exchange.
  final class Stream {
    let start = NIODeadline.now()
    let startTime: Int64
    var method: HTTP1Method = .get
    var isHead = false
    var requestFramer = BodyFramer.none
    var route: Route?
    var virtualHost: VirtualHost?
    /// The table the request was routed by (its global header mutations apply to the response too).
    var routeTable: RouteTable?
    var weighted: ForwardAction.WeightedCluster?
    var clusterState: HTTPClusterState?
    var host: UpstreamHost?
    var upstream: HTTPUpstreamConnection?
    /// Request bytes waiting for the upstream connection.
    var pendingUpstream = ByteBufferQueue()
    /// Request bytes written to a reused connection before any flush of them returned: if that
    /// connection closes now, none of them reached the upstream and the request can go out again.
    var unconfirmed: ByteBufferQueue?
    var retried = false
    var connecting = false
    var upstreamStart: NIODeadline?
    var routeDeadline: NIODeadline?
    var routeTimeout: TimeAmount?
    var status: Int?
    var flags: [String] = []
    var details: String?
    /// The connect error of the last upstream attempt (`%UPSTREAM_TRANSPORT_FAILURE_REASON%`).
    var transportFailureReason: String?
    var received: UInt64 = 0
    var sent: UInt64 = 0
    var finished = false
    var upstreamCounted = false
    var requestHeaders: [String: String]?
    var responseHeaders: [String: String]?
    var upstreamLocal: SocketAddress?

    init(startTime: Int64) { self.startTime = startTime }
  }

  private let filter: HTTPConnectionManagerFilter
  private let config: HTTPConnectionManagerConfig
  private let stats: HTTPConnectionManagerStats
  private let connection: DownstreamConnection
  private let proxy: ProxyContext
  private let pool: HTTPUpstreamPool<HTTPUpstreamConnection>
  /// The connection's I/O; released when the connection closes (that breaks the cycle with it).
  private var io: (any HTTPDownstreamIO)?
  private var machine = StateMachine()
  private var stream: Stream?
  /// A partial head (idle) or the bytes of pipelined requests (while a stream is active).
  private var pendingInput: ByteBuffer?
  /// When the first byte of a request head that is still partial arrived (no stream yet): Envoy's stream
  /// exists from that byte on, so the request-headers, request and stream-idle timeouts run from here and
  /// the connection idle timeout does not.
  private var headStart: NIODeadline?
  private var lastActivity = NIODeadline.now()
  private var timerDeadline: NIODeadline?
  private var closedCounted = false
  private var rxUnreported: UInt64 = 0
  private var txUnreported: UInt64 = 0
  private var closedByPeer = false
  /// Between a downstream read and its read-complete, which flushes the upstream once for everything
  /// the reads wrote.
  private var inDownstreamRead = false
  private static let allocator = ByteBufferAllocator()
  /// The arrays a head rewrite fills, kept between requests so that a request allocates none of them.
  private var scratchAdded: [(name: String, value: String)] = []
  private var scratchDrop: [Int] = []
  private var scratchFields: [HTTP1HeaderField] = []
  /// The route table last read from the filter's provider, and the provider generation it was read at.
  private var routeTable: RouteTable?
  private var routeGeneration: UInt64 = .max

  init(
    filter: HTTPConnectionManagerFilter, connection: DownstreamConnection, proxy: ProxyContext,
    pool: HTTPUpstreamPool<HTTPUpstreamConnection>
  ) {
    self.filter = filter
    self.config = filter.config
    self.stats = filter.stats
    self.connection = connection
    self.proxy = proxy
    self.pool = pool
  }

  var isWritable: Bool { io?.isWritable ?? false }

  // MARK: Events from the connection

  /// The connection is ready; `initialBytes` (read by listener filters) are handled as if just received.
  func start(io: any HTTPDownstreamIO, initialBytes: ByteBuffer?) {
    self.io = io
    stats.cxTotal.inc()
    stats.cxActive.inc()
    stats.cxHTTP1Total.inc()
    stats.cxHTTP1Active.inc()
    armTimer()
    if var bytes = initialBytes, bytes.readableBytes > 0 {
      received(&bytes)
      flushUpstream()
    }
  }

  /// Bytes from the client; `readComplete()` follows the last read of a batch.
  func read(_ bytes: inout ByteBuffer) {
    inDownstreamRead = true
    received(&bytes)
  }

  private func received(_ bytes: inout ByteBuffer) {
    lastActivity = .now()
    rxUnreported &+= UInt64(bytes.readableBytes)
    if machine.isTunnel {
      stream?.received &+= UInt64(bytes.readableBytes)
      stream?.upstream?.write(bytes)
      return
    }
    if machine.isClosing { return }
    if var pending = pendingInput {
      pendingInput = nil
      pending.writeBuffer(&bytes)
      bytes = pending
    }
    processInput(&bytes)
    if bytes.readableBytes > 0 && !machine.isClosing {
      pendingInput = bytes
    }
    trackPartialHead()
  }

  /// Starts (or ends) the clock of a request head that has begun to arrive but is not complete, or of
  /// pipelined requests held back while the client does not read its responses.
  private func trackPartialHead() {
    if stream == nil && pendingInput != nil && !machine.isClosing && !machine.isTunnel {
      if headStart == nil {
        headStart = .now()
        armTimer()
      }
    } else {
      headStart = nil
    }
  }

  func readComplete() {
    inDownstreamRead = false
    flushUpstream()
    reportBytes()
  }

  private func flushUpstream() {
    guard let stream, let upstream = stream.upstream else { return }
    upstream.flush()
    // A failed write closes the connection inside the flush (and `upstreamReset` retries); if the
    // connection is still this stream's, the bytes reached the kernel.
    if stream.unconfirmed != nil && stream.upstream === upstream { stream.unconfirmed = nil }
  }

  /// Whether the connection should read now.
  func shouldRead() -> Bool {
    let upstreamWritable: Bool
    if let stream {
      upstreamWritable = stream.upstream?.isWritable ?? stream.pendingUpstream.isEmpty
    } else {
      upstreamWritable = true
    }
    return machine.shouldRead(
      hasBacklog: pendingInput != nil && stream != nil, upstreamWritable: upstreamWritable,
      downstreamWritable: io?.isWritable ?? false)
  }

  private func resumeReadingIfPaused() { io?.updateReading() }

  /// The connection went below its low watermark (it can take output again).
  func becameWritable() {
    if let stream {
      stream.upstream?.updateReading()
    } else {
      // Pipelined requests held back while the client was not reading its responses.
      processBacklog()
      resumeReadingIfPaused()
    }
  }

  /// The connection went above its high watermark: the upstream stops reading what it cannot take.
  func becameUnwritable() {
    stream?.upstream?.updateReading()
  }

  /// The client half-closed (FIN).
  func inputClosed() {
    closedByPeer = true
    switch machine.clientInputClosed() {
    case .close:
      io?.close()
    case .resetStream:
      stats.rqRxReset.inc()
      resetStream(flag: "DC", details: "downstream_remote_disconnect")
    case .closeAfterResponse:
      break
    case .halfCloseTunnel:
      stream?.upstream?.closeOutputAfterFlush()
    }
  }

  /// Runs once when the downstream goes away: resets what is in flight, stats; the I/O is released.
  /// `byPeer`: the client closed or reset it.
  func connectionClosed(byPeer: Bool = false) {
    guard !closedCounted else { return }
    closedCounted = true
    if byPeer { closedByPeer = true }
    io?.cancelTimer()
    io = nil
    let wasTunnel = machine.isTunnel
    machine.close()
    pendingInput = nil
    if let stream, !stream.finished {
      if stream.status == nil { stats.rqRxReset.inc() }
      stream.upstream?.detach(reuse: false)
      stream.upstream = nil
      if stream.flags.isEmpty && !wasTunnel { stream.flags.append("DC") }
      finishStream(stream)
    }
    stream = nil
    reportBytes()
    stats.cxActive.dec()
    stats.cxHTTP1Active.dec()
    stats.cxDestroy.inc()
    if closedByPeer { stats.cxDestroyRemote.inc() } else { stats.cxDestroyLocal.inc() }
    stats.cxLengthMs.record(Double((NIODeadline.now() - connection.startDeadline).nanoseconds) / 1_000_000)
  }

  // MARK: Requests

  /// Parses and forwards as much of `bytes` as the current state allows; what is left (a partial head or
  /// a pipelined request behind an active stream) stays in `bytes`.
  private func processInput(_ bytes: inout ByteBuffer) {
    while bytes.readableBytes > 0 && !machine.isClosing && !machine.isTunnel {
      if let stream {
        guard let s = machine.stream, !s.requestComplete else { return }  // pipelined: wait
        forwardRequestBody(stream, &bytes)
        continue
      }
      // A client that pipelines requests and does not read the responses (local replies are written at
      // once) must not grow the output without bound: the next request waits until the responses before
      // it drained below the write watermark.
      guard io?.isWritable ?? false else { return }
      let result = bytes.withUnsafeReadableBytes {
        HTTP1HeadParser.parseRequest($0, limits: config.limits, fieldStorage: &scratchFields)
      }
      switch result {
      case .incomplete:
        return
      case .invalid(let error):
        codecError(error)
        bytes.moveReaderIndex(forwardBy: bytes.readableBytes)
        return
      case .complete(let head, let framing):
        let headBytes = bytes.readSlice(length: head.length)!
        startStream(head, framing: framing, headBytes: headBytes, rest: &bytes)
        scratchFields = head.fields  // the next head's field array, once this one is gone
      }
    }
  }

  /// Body bytes of the active request: forwarded (or queued until the upstream is there).
  private func forwardRequestBody(_ stream: Stream, _ bytes: inout ByteBuffer) {
    let progress = bytes.withUnsafeReadableBytes { stream.requestFramer.consume($0) }
    switch progress {
    case .needMore:
      let slice = bytes.readSlice(length: bytes.readableBytes)!
      sendUpstream(stream, slice)
    case .complete(let n):
      if n > 0 { sendUpstream(stream, bytes.readSlice(length: n)!) }
      requestCompleted(stream)
    case .invalid(let error):
      bytes.moveReaderIndex(forwardBy: bytes.readableBytes)
      stats.cxProtocolError.inc()
      if stream.status == nil {
        stream.upstream?.detach(reuse: false)
        stream.upstream = nil
        machine.closeAfterResponse()
        localReply(
          stream, status: error.httpStatus, body: HTTP1HeadWriter.reasonPhrase(error.httpStatus), flag: "DPE",
          details: error.responseCodeDetails)
      } else {
        resetStream(flag: "DPE", details: error.responseCodeDetails)
      }
    }
  }

  private func sendUpstream(_ stream: Stream, _ bytes: ByteBuffer) {
    stream.received &+= UInt64(bytes.readableBytes)
    if let upstream = stream.upstream {
      if stream.unconfirmed != nil { stream.unconfirmed!.append(bytes) }
      upstream.write(bytes)
    } else if stream.connecting {
      stream.pendingUpstream.append(bytes)
    }
    // Otherwise the stream was answered locally: the body is discarded.
  }

  private func requestCompleted(_ stream: Stream) {
    machine.requestCompleted()
    if let timeout = stream.routeTimeout {
      stream.routeDeadline = .now() + timeout
      armTimer()
    }
  }

  /// A request head arrived with nothing in flight: route it and start proxying or answer locally.
  private func startStream(
    _ head: HTTP1Head, framing: HTTP1Framing, headBytes: ByteBuffer, rest: inout ByteBuffer
  ) {
    let stream = Stream(startTime: Self.wallClockNanos())
    self.stream = stream
    machine.requestStarted(keepAlive: head.keepAlive)
    stats.rqTotal.inc()
    stats.rqHTTP1Total.inc()
    stats.rqActive.inc()
    stream.method = head.method ?? .get
    stream.isHead = stream.method == .head
    stream.requestFramer = framing == .upgrade ? .none : BodyFramer(framing, limits: config.limits)
    stream.received = UInt64(head.length)
    armTimer()

    var target = headBytes.withUnsafeReadableBytes { head.target(in: $0) } ?? "/"
    var authority =
      headBytes.withUnsafeReadableBytes { raw in head.hostIndex.map { head.value(at: $0, in: raw) } } ?? ""
    var targetRewritten = false
    var authorityRewritten = false
    if !target.hasPrefix("/"), target != "*", let range = target.range(of: "://") {
      // absolute-form: the authority comes from the URL, the path is forwarded in origin-form.
      let afterScheme = target[range.upperBound...]
      let slash = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
      authority = String(afterScheme[..<slash])
      let path = String(afterScheme[slash...])
      target = path.hasPrefix("/") ? path : "/" + path
      targetRewritten = true
      authorityRewritten = true
    }
    switch config.stripPortMode {
    case .none: break
    case .any:
      let stripped = HostPort.stripPort(authority)
      if stripped != authority {
        authority = stripped
        authorityRewritten = true
      }
    case .matching:
      if let port = HostPort.port(authority), port == connection.localAddress.port {
        authority = HostPort.stripPort(authority)
        authorityRewritten = true
      }
    }
    let request = RouteRequest(
      path: target, method: stream.method.name, authority: authority, headers: .parsed(head, headBytes))
    if !filter.accessLogs.isEmpty {
      stream.requestHeaders = Self.headerMap(head, headBytes)
      stream.requestHeaders?[":method"] = stream.method.name
      stream.requestHeaders?[":path"] = target
      stream.requestHeaders?[":authority"] = authority
    }

    // Body bytes already here are taken now, so a small request is complete before it is routed.
    var body: ByteBuffer?
    if rest.readableBytes > 0, framing != .upgrade {
      let progress = rest.withUnsafeReadableBytes { stream.requestFramer.consume($0) }
      switch progress {
      case .needMore:
        body = rest.readSlice(length: rest.readableBytes)
      case .complete(let n):
        body = n > 0 ? rest.readSlice(length: n) : nil
        machine.requestCompleted()
      case .invalid(let error):
        rest.moveReaderIndex(forwardBy: rest.readableBytes)
        stats.cxProtocolError.inc()
        machine.closeAfterResponse()
        localReply(
          stream, status: error.httpStatus, body: HTTP1HeadWriter.reasonPhrase(error.httpStatus), flag: "DPE",
          details: error.responseCodeDetails)
        return
      }
    } else if case .none = stream.requestFramer {
      machine.requestCompleted()
    }
    if let body { stream.received &+= UInt64(body.readableBytes) }

    // Routing.
    if stream.method == .connect {
      stats.noRoute.inc()
      machine.closeAfterResponse()
      localReply(stream, status: 404, body: "", flag: "NR", details: "route_not_found")
      return
    }
    let routes = filter.routes
    if routes.generation != routeGeneration {
      routeGeneration = routes.generation
      routeTable = routes.current
    }
    guard let table = routeTable, let vhost = table.config.virtualHost(forHost: authority),
      let route = vhost.route(for: request)
    else {
      stats.noRoute.inc()
      localReply(stream, status: 404, body: "", flag: "NR", details: "route_not_found")
      return
    }
    stream.virtualHost = vhost
    stream.route = route
    stream.routeTable = table
    switch route.action {
    case .directResponse(let status, let text):
      stats.rqDirectResponse.inc()
      localReply(stream, status: status, body: text, flag: nil, details: "direct_response", applyRoute: true)
      return
    case .redirect(let redirect):
      stats.rqRedirect.inc()
      var matchedPrefix: String?
      if case .prefix(let p) = route.match.path { matchedPrefix = p }
      let location = redirect.location(for: request, matchedPrefix: matchedPrefix)
      localReply(
        stream, status: redirect.status, body: "", flag: nil, details: "direct_response", applyRoute: true,
        extra: [("location", location)])
      return
    case .forward(let forward):
      if head.isUpgrade {
        let type =
          headBytes.withUnsafeReadableBytes { head.header(named: "upgrade", in: $0) }?.lowercased() ?? ""
        let allowed = forward.upgrades[type] ?? config.upgradeTypes.contains(type)
        if !allowed {
          stats.rqWebSocket.inc()
          machine.closeAfterResponse()
          localReply(stream, status: 403, body: "", flag: nil, details: "upgrade_failed")
          return
        }
      }
      let choice = forward.chooseCluster()
      stream.weighted = choice.weighted
      guard let cluster = proxy.clusterManager.cluster(named: choice.name) else {
        stats.noCluster.inc()
        localReply(
          stream, status: forward.clusterNotFoundStatus, body: "", flag: "NC", details: "cluster_not_found")
        return
      }
      stats.rqTotalRouter.inc()
      let clusterState = pool.state(for: cluster)
      stream.clusterState = clusterState
      stream.routeTimeout = forward.timeout
      if machine.stream?.requestComplete == true, let timeout = forward.timeout {
        stream.routeDeadline = .now() + timeout
        armTimer()
      }
      guard let host = cluster.chooseHost(originalDestination: connection.originalDestination) else {
        cluster.stats.cxNoneHealthy.inc()
        localReply(
          stream, status: 503, body: HTTP1LocalReplyText.noHealthyUpstream, flag: "UH",
          details: "no_healthy_upstream")
        return
      }
      stream.host = host
      if clusterState.rqActive.value >= UInt64(cluster.config.defaultThresholds.maxRequests) {
        clusterState.rqOverflow.inc()
        localReply(
          stream, status: 503, body: Self.overflowText, flag: "UO",
          details: "upstream_reset_before_response_started{overflow}")
        return
      }

      // The head as it goes upstream, with a small body in the same buffer.
      let rewrite = requestRewrite(
        head, headBytes: headBytes, stream: stream, forward: forward, target: target, authority: authority,
        targetRewritten: targetRewritten, authorityRewritten: authorityRewritten)
      let coalesce = body.map { $0.readableBytes <= 16 * 1024 } ?? false
      var out = Self.allocator.buffer(
        capacity: HTTP1HeadWriter.capacity(
          for: head, rewrite: rewrite, bodyBytes: coalesce ? body?.readableBytes ?? 0 : 0))
      HTTP1HeadWriter.write(head, from: headBytes, rewrite: rewrite, body: coalesce ? body : nil, into: &out)
      recycle(rewrite)
      if head.expectsContinue && !config.proxy100Continue && head.version == .http11 {
        var reply = Self.allocator.buffer(capacity: 32)
        HTTP1HeadWriter.writeContinue(into: &reply)
        io?.write(reply)
        io?.flush()
      }
      clusterState.rqTotal.inc()
      clusterState.rqActive.inc()
      host.requestsTotal.wrappingAdd(1, ordering: .relaxed)
      stream.upstreamCounted = true
      stream.pendingUpstream.append(out)
      if let body, !coalesce { stream.pendingUpstream.append(body) }
      acquireUpstream(stream, cluster: cluster, host: host, allowPooled: true)
    }
  }

  /// What changes on the request head on its way upstream. The head's fields are scanned once for the
  /// headers the proxy itself sets; configured header mutations (rare) are looked up by name after.
  private func requestRewrite(
    _ head: HTTP1Head, headBytes: ByteBuffer, stream: Stream, forward: ForwardAction, target: String,
    authority: String, targetRewritten: Bool, authorityRewritten: Bool
  ) -> HTTP1HeadRewrite {
    var rewrite = HTTP1HeadRewrite(version: .http11)
    let route = stream.route!
    let vhost = stream.virtualHost!
    let global = stream.routeTable?.config.headers ?? HeaderMutations()
    let weighted = stream.weighted?.headers
    var (added, drop) = takeScratch()

    headBytes.withUnsafeReadableBytes { raw in
      let dropExpect = head.expectsContinue && !config.proxy100Continue
      let useRemoteAddress = config.useRemoteAddress
      var hasForwardedProto = false
      var hasRequestID = false
      var forwardedFor = ""
      for index in head.fields.indices {
        let field = head.fields[index]
        if field.known == .expect {
          if dropExpect { drop.append(index) }
          continue
        }
        let start = Int(field.nameStart)
        let end = Int(field.nameEnd)
        // Every name looked for here starts with "x-".
        guard end - start > 2, HTTP1Bytes.lowercased(raw[start]) == UInt8(ascii: "x"),
          raw[start + 1] == UInt8(ascii: "-")
        else { continue }
        if HTTP1Bytes.equalsIgnoringASCIICase(raw, start, end, lowercase: "x-forwarded-proto") {
          hasForwardedProto = true
          if useRemoteAddress { drop.append(index) }
        } else if useRemoteAddress,
          HTTP1Bytes.equalsIgnoringASCIICase(raw, start, end, lowercase: "x-forwarded-for")
        {
          let value = head.value(at: index, in: raw)
          forwardedFor = forwardedFor.isEmpty ? value : forwardedFor + "," + value
          drop.append(index)
        } else if HTTP1Bytes.equalsIgnoringASCIICase(raw, start, end, lowercase: "x-request-id") {
          hasRequestID = true
        } else if forward.timeout != nil,
          HTTP1Bytes.equalsIgnoringASCIICase(raw, start, end, lowercase: "x-envoy-expected-rq-timeout-ms")
        {
          drop.append(index)
        }
      }
      // x-forwarded-proto: kept from a trusted hop, else set to the downstream scheme.
      if useRemoteAddress || !hasForwardedProto { added.append(("x-forwarded-proto", "http")) }
      if useRemoteAddress, let ip = connection.remoteAddress.ipAddress {
        added.append(("x-forwarded-for", forwardedFor.isEmpty ? ip : forwardedFor + "," + ip))
      }
      if config.generateRequestID && !hasRequestID {
        let id = pool.requestIDs.next()
        added.append(("x-request-id", id))
        stream.requestHeaders?["x-request-id"] = id
      }
      if let timeout = forward.timeout {
        added.append(("x-envoy-expected-rq-timeout-ms", String(timeout.nanoseconds / 1_000_000)))
      }

      // Configured mutations: the weighted cluster's, the route's, the virtual host's, the table's.
      let hasMutations =
        !(weighted?.requestToRemove.isEmpty ?? true) || !(weighted?.requestToAdd.isEmpty ?? true)
        || !route.headers.requestToRemove.isEmpty || !route.headers.requestToAdd.isEmpty
        || !vhost.headers.requestToRemove.isEmpty || !vhost.headers.requestToAdd.isEmpty
        || !global.requestToRemove.isEmpty || !global.requestToAdd.isEmpty
      if hasMutations {
        func indices(of name: String) -> [Int] { Self.fieldIndices(named: name, in: head, raw) }
        var removals = route.headers.requestToRemove + vhost.headers.requestToRemove + global.requestToRemove
        if let weighted { removals += weighted.requestToRemove }
        var additions = weighted?.requestToAdd ?? []
        additions += route.headers.requestToAdd + vhost.headers.requestToAdd + global.requestToAdd
        Self.apply(
          removals: removals, additions: additions, indices: indices, absentAmongAdded: true, added: &added,
          drop: &drop)
      }
    }
    rewrite.dropIndices = drop
    var newTarget = targetRewritten ? target : nil
    if let prefix = forward.prefixRewrite, case .prefix(let matched) = route.match.path,
      target.utf8.count >= matched.utf8.count
    {
      newTarget = prefix + target.dropFirst(matched.count)
      added.append(("x-envoy-original-path", target))
    }
    rewrite.target = newTarget
    if let host = stream.weighted?.hostRewrite ?? forward.hostRewrite {
      rewrite.host = host
    } else if authorityRewritten {
      rewrite.host = authority
    }
    rewrite.addedHeaders = added
    return rewrite
  }

  /// The scratch arrays, emptied, for one head rewrite (`recycle(_:)` gives them back).
  private func takeScratch() -> ([(name: String, value: String)], [Int]) {
    var added = scratchAdded
    var drop = scratchDrop
    scratchAdded = []
    scratchDrop = []
    added.removeAll(keepingCapacity: true)
    drop.removeAll(keepingCapacity: true)
    if added.capacity < 4 { added.reserveCapacity(4) }
    return (added, drop)
  }

  /// Keeps a written rewrite's arrays for the next request (their storage, once the rewrite is gone).
  private func recycle(_ rewrite: HTTP1HeadRewrite) {
    scratchAdded = rewrite.addedHeaders
    scratchDrop = rewrite.dropIndices
  }

  // MARK: Upstream connections

  private func acquireUpstream(
    _ stream: Stream, cluster: UpstreamCluster, host: UpstreamHost, allowPooled: Bool
  ) {
    guard let io, let clusterState = stream.clusterState else { return }
    if allowPooled, let pooled = pool.acquire(host: host, cluster: cluster) {
      attachUpstream(stream, pooled, reused: true)
      return
    }
    guard cluster.acquireConnectionSlot() else {
      clusterState.rqPendingOverflow.inc()
      localReply(
        stream, status: 503, body: Self.overflowText, flag: "UO",
        details: "upstream_reset_before_response_started{overflow}")
      return
    }
    clusterState.rqPendingTotal.inc()
    clusterState.rqPendingActive.inc()
    stream.connecting = true
    let upstream = HTTPUpstreamConnection(
      host: host, cluster: cluster, clusterState: clusterState, pool: pool, owner: self)
    io.connect(upstream)
  }

  /// `upstream`, started by `acquireUpstream`, connected.
  func upstreamConnected(_ upstream: HTTPUpstreamConnection) {
    upstream.clusterState.rqPendingActive.dec()
    guard let stream, stream.connecting, !stream.finished, io != nil else {
      upstream.detach(reuse: true)  // nobody waits for it any more: keep it for the next request
      return
    }
    stream.upstreamLocal = upstream.localAddress
    attachUpstream(stream, upstream, reused: false)
  }

  /// `upstream`, started by `acquireUpstream`, could not connect (its accounting is already undone).
  func upstreamConnectFailed(_ upstream: HTTPUpstreamConnection, reason: String, timedOut: Bool) {
    upstream.clusterState.rqPendingActive.dec()
    guard let stream, stream.connecting else { return }
    connectFailed(stream, cluster: upstream.cluster, host: upstream.host, reason: reason, timedOut: timedOut)
  }

  private func connectFailed(
    _ stream: Stream, cluster: UpstreamCluster, host: UpstreamHost, reason: String, timedOut: Bool
  ) {
    guard self.stream === stream, !stream.finished else { return }
    stream.connecting = false
    // A timeout is no transport failure in Envoy's terms.
    stream.transportFailureReason = timedOut ? nil : reason
    stream.pendingUpstream = ByteBufferQueue()
    proxy.logger.debug(
      "upstream connect failed",
      metadata: [
        "proxy.connection": "\(connection.id)", "proxy.cluster": "\(cluster.name)",
        "proxy.upstream": "\(host.address)", "error": "\(reason)",
      ])
    localReply(
      stream, status: 503, body: HTTP1LocalReplyText.upstreamConnectionFailure, flag: "UF",
      details: "upstream_reset_before_response_started{connection_failure}")
  }

  private func attachUpstream(_ stream: Stream, _ upstream: HTTPUpstreamConnection, reused: Bool) {
    stream.connecting = false
    stream.upstream = upstream
    stream.upstreamStart = .now()
    upstream.attach(self, method: stream.method)
    let pending = stream.pendingUpstream
    stream.pendingUpstream = ByteBufferQueue()
    // A pooled connection may have been closed by the peer: the bytes are kept until a flush has put
    // them in the kernel (`flushUpstream`), so a close before that sends the request once more on a new
    // connection (`upstreamReset`). No write promise: it cost an allocation, a callback and a
    // generic-metadata lookup on every pooled request.
    if reused && !stream.retried { stream.unconfirmed = pending }
    pending.forEach { upstream.write($0) }
    // Inside a downstream read the read-complete flushes; otherwise (connect completed) flush now.
    if !inDownstreamRead { flushUpstream() }
    resumeReadingIfPaused()
  }

  // MARK: Called by the upstream connection (same worker)

  func upstreamResponseHead(
    _ head: HTTP1Head, bytes headBytes: ByteBuffer, body: ByteBuffer?, complete: Bool, framing: HTTP1Framing
  ) {
    guard let stream, let io else { return }
    let status = head.status ?? 502
    stream.status = status
    stream.details = "via_upstream"
    stream.unconfirmed = nil
    lastActivity = .now()
    let action = machine.responseHeadStarted(
      status: status, draining: isDraining,
      bodyUntilClose: framing == .untilClose)
    var (added, drop) = takeScratch()
    var close = false
    switch action {
    case .upgrade:
      break
    case .writeHead(let c, let drainClose):
      close = c
      if drainClose { stats.cxDrainClose.inc() }
    }
    headBytes.withUnsafeReadableBytes { raw in
      if config.serverHeaderTransformation != .passThrough {
        var hasServer = false
        for index in head.fields.indices {
          let field = head.fields[index]
          guard
            HTTP1Bytes.equalsIgnoringASCIICase(
              raw, Int(field.nameStart), Int(field.nameEnd), lowercase: "server")
          else { continue }
          hasServer = true
          if config.serverHeaderTransformation == .overwrite { drop.append(index) }
        }
        if config.serverHeaderTransformation == .overwrite || !hasServer {
          added.append(("server", config.serverName))
        }
      }
      if let start = stream.upstreamStart {
        added.append(
          ("x-envoy-upstream-service-time", String((NIODeadline.now() - start).nanoseconds / 1_000_000)))
      }
      if hasResponseMutations(stream) {
        func indices(of name: String) -> [Int] { Self.fieldIndices(named: name, in: head, raw) }
        let mutations = responseMutations(stream)
        Self.apply(
          removals: mutations.removals, additions: mutations.additions, indices: indices,
          absentAmongAdded: false,
          added: &added, drop: &drop)
      }
      if stream.responseHeaders == nil && !filter.accessLogs.isEmpty {
        stream.responseHeaders = Self.headerMap(head, headBytes)
      }
    }
    if close {
      added.append(("connection", "close"))
    } else if machine.stream?.requestKeepAlive == true && head.version == .http10 {
      added.append(("connection", "keep-alive"))
    }
    let rewrite = HTTP1HeadRewrite(dropIndices: drop, addedHeaders: added)
    let coalesce = body.map { $0.readableBytes <= 16 * 1024 } ?? true
    var out = io.outputBuffer(
      capacity: HTTP1HeadWriter.capacity(
        for: head, rewrite: rewrite, bodyBytes: coalesce ? body?.readableBytes ?? 0 : 0))
    HTTP1HeadWriter.write(head, from: headBytes, rewrite: rewrite, body: coalesce ? body : nil, into: &out)
    recycle(rewrite)
    stream.sent &+= UInt64(out.readableBytes)
    io.write(out)
    if let body, !coalesce {
      stream.sent &+= UInt64(body.readableBytes)
      io.write(body)
    }
    stream.clusterState?.countResponse(status: status)
    if action == .upgrade {
      io.flush()
      // Bytes the client sent after its upgrade request belong to the tunnel.
      if let early = pendingInput, let upstream = stream.upstream {
        pendingInput = nil
        upstream.write(early)
        upstream.flush()
      }
      resumeReadingIfPaused()
    }
  }

  private func hasResponseMutations(_ stream: Stream) -> Bool {
    func any(_ m: HeaderMutations?) -> Bool {
      guard let m else { return false }
      return !m.responseToRemove.isEmpty || !m.responseToAdd.isEmpty
    }
    return any(stream.weighted?.headers) || any(stream.route?.headers) || any(stream.virtualHost?.headers)
      || any(stream.routeTable?.config.headers)
  }

  private func responseMutations(_ stream: Stream) -> (
    removals: [String], additions: [HeaderMutations.Addition]
  ) {
    var removals: [String] = []
    var additions: [HeaderMutations.Addition] = []
    if let weighted = stream.weighted {
      removals += weighted.headers.responseToRemove
      additions += weighted.headers.responseToAdd
    }
    if let route = stream.route {
      removals += route.headers.responseToRemove
      additions += route.headers.responseToAdd
    }
    if let vhost = stream.virtualHost {
      removals += vhost.headers.responseToRemove
      additions += vhost.headers.responseToAdd
    }
    if let global = stream.routeTable?.config.headers {
      removals += global.responseToRemove
      additions += global.responseToAdd
    }
    return (removals, additions)
  }

  func upstreamResponseBody(_ bytes: ByteBuffer) {
    guard let stream, let io else { return }
    lastActivity = .now()
    stream.sent &+= UInt64(bytes.readableBytes)
    io.write(bytes)
  }

  func upstreamReadComplete() {
    io?.flush()
    reportBytes()
  }

  func upstreamResponseComplete(reusable: Bool) {
    guard let stream, io != nil else { return }
    let upstream = stream.upstream
    stream.upstream = nil
    let requestComplete = machine.stream?.requestComplete ?? false
    upstream?.detach(reuse: reusable && requestComplete)
    finishStream(stream)
    afterResponse(dropBacklogOnClose: false)
  }

  /// The upstream connection closed (or reset) before the response ended.
  func upstreamReset(responseStarted: Bool) {
    guard let stream else { return }
    stream.upstream = nil
    stream.clusterState?.rqRxReset.inc()
    if !responseStarted && stream.status == nil {
      if stream.unconfirmed != nil, !stream.retried, let host = stream.host,
        let cluster = stream.clusterState?.cluster
      {
        // Closed before our first write was confirmed: nothing reached the upstream.
        let bytes = stream.unconfirmed!
        stream.retried = true
        stream.unconfirmed = nil
        stream.pendingUpstream = bytes
        acquireUpstream(stream, cluster: cluster, host: host, allowPooled: false)
        return
      }
      localReply(
        stream, status: 503, body: HTTP1LocalReplyText.upstreamConnectionTermination, flag: "UC",
        details: "upstream_reset_before_response_started{connection_termination}")
    } else {
      resetStream(flag: "UC", details: "upstream_reset_after_response_started{connection_termination}")
    }
  }

  func upstreamProtocolError(_ error: HTTP1CodecError) {
    guard let stream else { return }
    stream.upstream = nil
    stream.clusterState?.rqRxReset.inc()
    if stream.status == nil {
      localReply(
        stream, status: HTTP1CodecError.upstreamProtocolErrorStatus,
        body: "upstream connect error or disconnect/reset before headers. reset reason: protocol error",
        flag: "UPE", details: HTTP1CodecError.upstreamProtocolErrorDetails)
    } else {
      resetStream(flag: "UPE", details: "upstream_reset_after_response_started{protocol_error}")
    }
  }

  /// The upstream connection's output went above or below its watermarks: reading may start or stop.
  func upstreamWritabilityChanged() {
    resumeReadingIfPaused()
  }

  // Tunnel (after 101).

  func upstreamTunnelBytes(_ bytes: ByteBuffer) {
    guard let io else { return }
    lastActivity = .now()
    stream?.sent &+= UInt64(bytes.readableBytes)
    io.write(bytes)
  }

  func upstreamTunnelInputClosed() {
    guard let io else { return }
    if machine.inputClosed {
      io.closeAfterPendingWrites()
    } else {
      io.shutdownOutputAfterPendingWrites()
    }
  }

  func upstreamTunnelClosed() {
    guard let io else { return }
    stream?.upstream = nil
    machine.close()
    io.closeAfterPendingWrites()
  }

  // MARK: Local replies, resets, completion

  static let overflowText =
    "upstream connect error or disconnect/reset before headers. reset reason: overflow"

  /// Answers the current request from the proxy (Envoy's `sendLocalReply`).
  private func localReply(
    _ stream: Stream, status: Int, body: String, flag: String?, details: String, applyRoute: Bool = false,
    extra: [(name: String, value: String)] = []
  ) {
    guard let io else { return }
    if let flag { stream.flags.append(flag) }
    stream.details = details
    stream.status = status
    stream.upstream?.detach(reuse: false)
    stream.upstream = nil
    stream.connecting = false
    stream.pendingUpstream = ByteBufferQueue()
    // The rest of the request body will not be read: say so.
    if machine.stream?.requestComplete == false { machine.closeAfterResponse() }
    let action = machine.responseHeadStarted(
      status: status, draining: isDraining, bodyUntilClose: false)
    var close = true
    if case .writeHead(let c, let drainClose) = action {
      close = c
      if drainClose { stats.cxDrainClose.inc() }
    }
    var headers: [(name: String, value: String)] = []
    if config.serverHeaderTransformation != .passThrough { headers.append(("server", config.serverName)) }
    headers += extra
    if applyRoute {
      let mutations = responseMutations(stream)
      for addition in mutations.additions where !mutations.removals.contains(addition.name) {
        if addition.value.isEmpty && !addition.keepEmptyValue { continue }
        if addition.action == .overwriteIfExists { continue }
        headers.append((addition.name, addition.value))
      }
    }
    var out = io.outputBuffer(capacity: 160 + body.utf8.count)
    HTTP1HeadWriter.writeLocalReply(
      status: status, body: body, extraHeaders: headers, close: close, isHeadRequest: stream.isHead,
      into: &out)
    stream.sent &+= UInt64(out.readableBytes)
    io.write(out)
    finishStream(stream)
    afterResponse(dropBacklogOnClose: true)
  }

  /// The response is complete: close, or go on with pipelined requests already read.
  private func afterResponse(dropBacklogOnClose: Bool) {
    switch machine.responseCompleted() {
    case .close:
      self.stream = nil
      if dropBacklogOnClose { pendingInput = nil }
      io?.closeAfterPendingWrites()
    case .keepAlive:
      self.stream = nil
      io?.flush()
      armTimer()
      processBacklog()
      resumeReadingIfPaused()
    }
  }

  /// Handles pipelined requests already read while no stream is active.
  private func processBacklog() {
    guard stream == nil, var backlog = pendingInput else { return }
    pendingInput = nil
    processInput(&backlog)
    if backlog.readableBytes > 0 && !machine.isClosing { pendingInput = backlog }
    flushUpstream()
    trackPartialHead()
  }

  /// A request rejected by the codec before a stream existed.
  private func codecError(_ error: HTTP1CodecError) {
    stats.cxProtocolError.inc()
    replyBeforeHead(
      status: error.httpStatus, body: HTTP1HeadWriter.reasonPhrase(error.httpStatus), flag: "DPE",
      details: error.responseCodeDetails)
  }

  /// Answers a request whose head never completed (a codec error or a timeout) and closes the
  /// connection after the reply.
  private func replyBeforeHead(status: Int, body: String, flag: String?, details: String) {
    guard machine.isIdle else { return }
    let stream = Stream(startTime: Self.wallClockNanos())
    self.stream = stream
    headStart = nil
    machine.requestStarted(keepAlive: false)
    stats.rqTotal.inc()
    stats.rqHTTP1Total.inc()
    stats.rqActive.inc()
    machine.closeAfterResponse()
    localReply(stream, status: status, body: body, flag: flag, details: details)
  }

  /// Ends the current stream abruptly: the upstream is closed and so is the downstream.
  private func resetStream(flag: String, details: String) {
    machine.streamReset()
    if let stream {
      stream.flags.append(flag)
      stream.details = details
      stream.upstream?.detach(reuse: false)
      stream.upstream = nil
      finishStream(stream)
      stats.rqTxReset.inc()
    }
    stream = nil
    pendingInput = nil
    io?.close()
  }

  /// Stats, host counters and the access log of a stream, once.
  private func finishStream(_ stream: Stream) {
    guard !stream.finished else { return }
    stream.finished = true
    let now = NIODeadline.now()
    lastActivity = now
    stats.rqActive.dec()
    if let status = stream.status {
      stats.rqCompleted.inc()
      stats.countResponse(status: status)
    }
    stats.rqTime.record(Double((now - stream.start).nanoseconds) / 1_000_000)
    if stream.upstreamCounted, let clusterState = stream.clusterState {
      stream.upstreamCounted = false
      clusterState.rqActive.dec()
      clusterState.rqCompleted.inc()
      if let start = stream.upstreamStart {
        clusterState.rqTime.record(Double((now - start).nanoseconds) / 1_000_000)
      }
      if let host = stream.host {
        if let status = stream.status, status < 500, stream.flags.isEmpty {
          host.requestSuccesses.wrappingAdd(1, ordering: .relaxed)
        } else {
          host.requestErrors.wrappingAdd(1, ordering: .relaxed)
        }
      }
    }
    guard !filter.accessLogs.isEmpty else { return }
    var entry = AccessLogEntry(startTime: stream.startTime)
    entry.durationMs = (now - stream.start).nanoseconds / 1_000_000
    entry.downstreamRemote = connection.remoteAddress
    entry.downstreamLocal = connection.localAddress
    entry.upstreamHost = stream.host.map { $0.address.description }
    entry.upstreamLocal = stream.upstreamLocal
    entry.upstreamCluster = stream.clusterState?.cluster.name
    entry.upstreamClusterObservabilityName = stream.clusterState?.cluster.config.statName
    entry.upstreamTransportFailureReason = stream.transportFailureReason
    entry.responseCodeDetails = stream.details
    entry.bytesReceived = stream.received
    entry.bytesSent = stream.sent
    entry.responseFlags = stream.flags
    entry.requestedServerName = connection.serverName
    entry.protocolName = "HTTP/1.1"
    entry.responseCode = stream.status ?? 0
    entry.routeName = stream.route?.name
    entry.connectionTerminationDetails = nil
    let requestHeaders = stream.requestHeaders ?? [:]
    let responseHeaders = stream.responseHeaders ?? [:]
    entry.requestHeader = { requestHeaders[$0] }
    entry.responseHeader = { responseHeaders[$0] }
    for log in filter.accessLogs { log.log(entry, to: proxy.accessLog) }
  }

  // MARK: Timers

  /// One timer per connection, armed for the earliest deadline that matters now and re-armed when it
  /// fires: route timeout, request timeout, stream idle timeout, connection idle timeout.
  private func nextDeadline() -> NIODeadline? {
    var earliest: NIODeadline?
    func consider(_ d: NIODeadline?) {
      guard let d else { return }
      if earliest == nil || d < earliest! { earliest = d }
    }
    if let stream {
      consider(stream.routeDeadline)
      if let t = config.streamIdleTimeout, !machine.isTunnel { consider(lastActivity + t) }
      if let t = config.requestTimeout, machine.stream?.requestComplete == false {
        consider(stream.start + t)
      }
    } else if let headStart {
      if let t = config.requestHeadersTimeout { consider(headStart + t) }
      if let t = config.requestTimeout { consider(headStart + t) }
      if let t = config.streamIdleTimeout { consider(lastActivity + t) }
    } else if let t = config.idleTimeout {
      consider(lastActivity + t)
    }
    return earliest
  }

  /// The listener is draining (`/drain_listeners`, shutdown) or a listener update drains this connection's
  /// filter chain: the response says `connection: close`.
  private var isDraining: Bool {
    connection.chainDrain?.isDraining == true || proxy.drain.shouldClose(connection.listener.direction)
  }

  private func armTimer() {
    guard let io, let deadline = nextDeadline() else { return }
    if let armed = timerDeadline, armed <= deadline { return }
    timerDeadline = deadline
    io.scheduleTimer(at: deadline)
  }

  /// The timer set through `scheduleTimer(at:)` fired.
  func timerFired() {
    timerDeadline = nil
    guard io != nil, !machine.isClosing else { return }
    let now = NIODeadline.now()
    if let stream {
      if let deadline = stream.routeDeadline, now >= deadline {
        stream.clusterState?.rqTimeout.inc()
        stream.host?.requestTimeouts.wrappingAdd(1, ordering: .relaxed)
        if stream.status == nil {
          stream.upstream?.detach(reuse: false)
          stream.upstream = nil
          localReply(
            stream, status: 504, body: HTTP1LocalReplyText.upstreamRequestTimeout, flag: "UT",
            details: "upstream_response_timeout")
        } else {
          resetStream(flag: "UT", details: "upstream_response_timeout")
        }
        return
      }
      if let t = config.requestTimeout, machine.stream?.requestComplete == false, now >= stream.start + t {
        stats.rqTimeout.inc()
        machine.closeAfterResponse()
        localReply(
          stream, status: 408, body: "request timeout", flag: nil, details: "request_overall_timeout")
        return
      }
      if let t = config.streamIdleTimeout, !machine.isTunnel, now >= lastActivity + t {
        stats.rqIdleTimeout.inc()
        if stream.status == nil {
          machine.closeAfterResponse()
          localReply(stream, status: 408, body: "stream timeout", flag: "SI", details: "stream_idle_timeout")
        } else {
          resetStream(flag: "SI", details: "stream_idle_timeout")
        }
        return
      }
    } else if let headStart {
      if let t = config.requestHeadersTimeout, now >= headStart + t {
        stats.rqHeaderTimeout.inc()
        replyBeforeHead(
          status: 408, body: "request header timeout", flag: nil, details: "request_header_timeout")
        return
      }
      if let t = config.requestTimeout, now >= headStart + t {
        stats.rqTimeout.inc()
        replyBeforeHead(status: 408, body: "request timeout", flag: nil, details: "request_overall_timeout")
        return
      }
      if let t = config.streamIdleTimeout, now >= lastActivity + t {
        stats.rqIdleTimeout.inc()
        replyBeforeHead(status: 408, body: "stream timeout", flag: "SI", details: "stream_idle_timeout")
        return
      }
    } else if let t = config.idleTimeout, now >= lastActivity + t {
      stats.cxIdleTimeout.inc()
      machine.close()
      io?.close()
      return
    }
    armTimer()
  }

  // MARK: Helpers

  private func reportBytes() {
    if rxUnreported > 0 {
      stats.cxRxBytesTotal.add(rxUnreported)
      rxUnreported = 0
    }
    if txUnreported > 0 {
      stats.cxTxBytesTotal.add(txUnreported)
      txUnreported = 0
    }
  }

  /// Configured header mutations on a head: fields to drop (`indices` finds a name's fields) and lines to
  /// add. `absentAmongAdded`: `addIfAbsent` also looks at the lines added so far.
  static func apply(
    removals: [String], additions: [HeaderMutations.Addition], indices: (String) -> [Int],
    absentAmongAdded: Bool, added: inout [(name: String, value: String)], drop: inout [Int]
  ) {
    for name in removals { drop += indices(name) }
    for addition in additions {
      let existing = indices(addition.name)
      switch addition.action {
      case .append: break
      case .addIfAbsent:
        if !existing.isEmpty { continue }
        if absentAmongAdded && added.contains(where: { $0.name == addition.name }) { continue }
      case .overwrite: drop += existing
      case .overwriteIfExists:
        if existing.isEmpty { continue }
        drop += existing
      }
      if addition.value.isEmpty && !addition.keepEmptyValue { continue }
      added.append((addition.name, addition.value))
    }
  }

  /// Indices of the head's fields called `name` (ASCII case-insensitive), read from `raw`.
  static func fieldIndices(named name: String, in head: HTTP1Head, _ raw: UnsafeRawBufferPointer) -> [Int] {
    head.fields.indices.filter {
      HTTP1Bytes.equalsIgnoringASCIICase(
        raw, head.fields[$0].name.lowerBound, head.fields[$0].name.upperBound, name)
    }
  }

  static func headerMap(_ head: HTTP1Head, _ bytes: ByteBuffer) -> [String: String] {
    bytes.withUnsafeReadableBytes { raw in
      var map: [String: String] = [:]
      for index in head.fields.indices {
        let name = head.name(at: index, in: raw).lowercased()
        if map[name] == nil { map[name] = head.value(at: index, in: raw) }
      }
      return map
    }
  }

  static func wallClockNanos() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
  }

  /// A random (version 4) UUID, lower-case, as Envoy's `x-request-id`.
}
