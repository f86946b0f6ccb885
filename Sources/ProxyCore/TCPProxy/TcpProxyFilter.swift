package import NIOCore

/// `envoy.filters.network.tcp_proxy` as a terminal filter: installs the downstream half of the glue, which
/// connects upstream on the same event loop.
package struct TcpProxyFilter: TerminalNetworkFilter {
  package let config: TcpProxyConfig
  package let stats: TcpProxyStats
  package let accessLogFormats: [(path: String, format: AccessLogFormat)]

  package init(config: TcpProxyConfig, stats store: StatsStore) throws(ProxyConfigError) {
    self.config = config
    self.stats = TcpProxyStats(store: store, prefix: config.statPrefix)
    self.accessLogFormats = try AccessLogFormat.compile(config.accessLogs)
  }

  package var filterName: String { "envoy.filters.network.tcp_proxy" }
  package var clusterNames: [String] { config.route.clusterNames }

  package func install(
    on channel: any Channel, connection: DownstreamConnection, context: ProxyContext,
    initialBytes: ByteBuffer?
  ) throws {
    let handler = TCPProxyDownstreamHandler(
      filter: self, connection: connection, proxy: context, initialBytes: initialBytes)
    try channel.pipeline.syncOperations.addHandler(handler)
  }

  /// What a finished tcp_proxy connection reports to the access logs.
  package struct Outcome {
    package var upstreamHost: UpstreamHost?
    package var upstreamLocal: SocketAddress?
    package var cluster: String?
    package var received: UInt64 = 0
    package var sent: UInt64 = 0
    package var responseFlags: [String] = []
    package var terminationDetails: String?

    package init() {}
  }

  /// Writes one line per configured access log for a finished connection.
  package func logAccess(_ connection: DownstreamConnection, _ outcome: Outcome, to sink: AccessLogSink) {
    guard !accessLogFormats.isEmpty else { return }
    var entry = AccessLogEntry(startTime: connection.startTime)
    entry.durationMs = (NIODeadline.now() - connection.startDeadline).nanoseconds / 1_000_000
    entry.downstreamRemote = connection.remoteAddress
    entry.downstreamLocal = connection.localAddress
    entry.upstreamHost = outcome.upstreamHost.map { $0.address.description }
    entry.upstreamLocal = outcome.upstreamLocal
    entry.upstreamCluster = outcome.cluster
    entry.bytesReceived = outcome.received
    entry.bytesSent = outcome.sent
    entry.responseFlags = outcome.responseFlags
    entry.requestedServerName = connection.serverName
    entry.connectionTerminationDetails = outcome.terminationDetails
    for (path, format) in accessLogFormats {
      sink.append(format.render(entry), to: path)
    }
  }

  /// Picks the cluster for a new connection (weighted clusters in proportion to weight).
  package func chooseClusterName() -> String {
    switch config.route {
    case .cluster(let name):
      return name
    case .weighted(let clusters):
      let total = clusters.reduce(0) { $0 + $1.weight }
      guard total > 0 else { return clusters[0].name }
      var point = Int.random(in: 0..<total)
      for cluster in clusters {
        if point < cluster.weight { return cluster.name }
        point -= cluster.weight
      }
      return clusters[clusters.count - 1].name
    }
  }
}

/// `tcp.<stat_prefix>.` stats.
package struct TcpProxyStats: Sendable {
  package let cxTotal: Counter
  package let cxNoRoute: Counter
  package let rxBytesTotal: Counter
  package let txBytesTotal: Counter
  package let idleTimeout: Counter
  package let upstreamFlushTotal: Counter
  package let downstreamPausedReading: Counter
  package let downstreamResumedReading: Counter
  package let upstreamPausedReading: Counter
  package let upstreamResumedReading: Counter

  init(store: StatsStore, prefix: String) {
    let scope = store.scope("tcp.\(prefix)")
    cxTotal = scope.counter("downstream_cx_total")
    cxNoRoute = scope.counter("downstream_cx_no_route")
    rxBytesTotal = scope.counter("downstream_cx_rx_bytes_total")
    txBytesTotal = scope.counter("downstream_cx_tx_bytes_total")
    idleTimeout = scope.counter("idle_timeout")
    upstreamFlushTotal = scope.counter("upstream_flush_total")
    downstreamPausedReading = scope.counter("downstream_flow_control_paused_reading_total")
    downstreamResumedReading = scope.counter("downstream_flow_control_resumed_reading_total")
    upstreamPausedReading = scope.counter("upstream_flow_control_paused_reading_total")
    upstreamResumedReading = scope.counter("upstream_flow_control_resumed_reading_total")
  }
}
