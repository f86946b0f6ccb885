package import NIOCore

/// `envoy.filters.network.tcp_proxy` as a terminal filter: its config, stats and access logs (the engine's
/// tcp_proxy session moves the bytes).
package struct TcpProxyFilter: TerminalNetworkFilter {
  package let config: TcpProxyConfig
  package let stats: TcpProxyStats
  package let accessLogs: [CompiledAccessLog]

  package init(config: TcpProxyConfig, stats store: StatsStore) throws(ProxyConfigError) {
    self.config = config
    self.stats = TcpProxyStats(store: store, prefix: config.statPrefix)
    self.accessLogs = try CompiledAccessLog.compile(config.accessLogs)
  }

  package var filterName: String { "envoy.filters.network.tcp_proxy" }
  package var clusterNames: [String] { config.route.clusterNames }

  /// What a finished tcp_proxy connection reports to the access logs.
  package struct Outcome {
    package var upstreamHost: UpstreamHost?
    package var upstreamLocal: SocketAddress?
    package var cluster: String?
    package var received: UInt64 = 0
    package var sent: UInt64 = 0
    package var responseFlags: [String] = []
    package var terminationDetails: String?
    /// The connect error of the last upstream attempt that failed.
    package var transportFailureReason: String?
    /// `%UPSTREAM_CLUSTER%`: the cluster's `alt_stat_name` when it has one.
    package var clusterObservabilityName: String?

    package init(
      upstreamHost: UpstreamHost?, upstreamLocal: SocketAddress?, cluster: UpstreamCluster?,
      bytes: TcpProxyByteCount, responseFlags: [String], terminationDetails: String?,
      transportFailureReason: String? = nil
    ) {
      self.upstreamHost = upstreamHost
      self.upstreamLocal = upstreamLocal
      self.cluster = cluster?.name
      self.clusterObservabilityName = cluster?.config.statName
      self.transportFailureReason = transportFailureReason
      self.received = bytes.received
      self.sent = bytes.sent
      self.responseFlags = responseFlags
      self.terminationDetails = terminationDetails
    }
  }

  /// Writes one line per configured access log for a finished connection.
  package func logAccess(_ connection: DownstreamConnection, _ outcome: Outcome, to sink: AccessLogSink) {
    guard !accessLogs.isEmpty else { return }
    var entry = AccessLogEntry(startTime: connection.startTime)
    entry.durationMs = (NIODeadline.now() - connection.startDeadline).nanoseconds / 1_000_000
    entry.downstreamRemote = connection.remoteAddress
    entry.downstreamLocal = connection.localAddress
    entry.upstreamHost = outcome.upstreamHost.map { $0.address.description }
    entry.upstreamLocal = outcome.upstreamLocal
    entry.upstreamCluster = outcome.cluster
    entry.upstreamClusterObservabilityName = outcome.clusterObservabilityName
    entry.upstreamTransportFailureReason = outcome.transportFailureReason
    entry.bytesReceived = outcome.received
    entry.bytesSent = outcome.sent
    entry.responseFlags = outcome.responseFlags
    entry.requestedServerName = connection.serverName
    entry.connectionTerminationDetails = outcome.terminationDetails
    for log in accessLogs { log.log(entry, to: sink) }
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

/// The bytes one tcp_proxy connection moved: totals for the access log, and the part the shared counters
/// have not been told yet (they are told per batch of reads, not per read).
package struct TcpProxyByteCount {
  package private(set) var received: UInt64 = 0
  package private(set) var sent: UInt64 = 0
  private var receivedUnreported: UInt64 = 0
  private var sentUnreported: UInt64 = 0

  package init() {}

  /// Bytes read from downstream.
  package mutating func add(received bytes: Int) {
    received &+= UInt64(bytes)
    receivedUnreported &+= UInt64(bytes)
  }

  /// Bytes written to downstream.
  package mutating func add(sent bytes: Int) {
    sent &+= UInt64(bytes)
    sentUnreported &+= UInt64(bytes)
  }

  /// Adds what is unreported to `tcp.<prefix>.downstream_cx_{rx,tx}_bytes_total` and the cluster's
  /// `upstream_cx_{tx,rx}_bytes_total`.
  package mutating func report(to stats: TcpProxyStats, cluster: ClusterStats?) {
    if receivedUnreported > 0 {
      stats.rxBytesTotal.add(receivedUnreported)
      cluster?.cxTxBytesTotal.add(receivedUnreported)
      receivedUnreported = 0
    }
    if sentUnreported > 0 {
      stats.txBytesTotal.add(sentUnreported)
      cluster?.cxRxBytesTotal.add(sentUnreported)
      sentUnreported = 0
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
