package import NIOCore
internal import Synchronization

/// A listener at run time: its config, the compiled filter-chain selector, its `listener.<prefix>.`
/// stats and (when bound) its server socket.
package final class ActiveListener: Sendable {
  package let config: Listener
  package let info: ListenerInfo
  package let selector: FilterChainSelector
  package let stats: ListenerStats
  package let restoresOriginalDestination: Bool
  private let serverChannel = Mutex<(any Channel)?>(nil)
  private let engineBinding = Mutex<(any ListenerEngineBinding)?>(nil)

  package init(config: Listener, stats store: StatsStore) {
    self.config = config
    self.info = ListenerInfo(
      name: config.name, statPrefix: config.statPrefix, direction: config.trafficDirection,
      perConnectionBufferLimitBytes: config.perConnectionBufferLimitBytes)
    self.selector = FilterChainSelector(chains: config.filterChains, defaultChain: config.defaultFilterChain)
    self.stats = ListenerStats(store: store, prefix: config.statPrefix)
    self.restoresOriginalDestination =
      config.useOriginalDestination || config.listenerFilters.contains { $0.kind == .originalDestination }
  }

  package var name: String { config.name }

  /// The bound address (differs from the config when it asked for port 0).
  package var boundAddress: SocketAddress? {
    if let address = serverChannel.withLock({ $0?.localAddress }) { return address }
    return engineBinding.withLock { $0?.boundAddress }
  }

  func setServerChannel(_ channel: any Channel) { serverChannel.withLock { $0 = channel } }

  func setEngineBinding(_ binding: any ListenerEngineBinding) { engineBinding.withLock { $0 = binding } }

  /// Whether a `ListenerEngine` (not NIO) serves this listener.
  package var servedByEngine: Bool { engineBinding.withLock { $0 != nil } }

  /// Closes the listening socket; open connections are not touched.
  func stopAccepting() async -> Bool {
    let channel = serverChannel.withLock { current -> (any Channel)? in
      defer { current = nil }
      return current
    }
    let binding = engineBinding.withLock { current -> (any ListenerEngineBinding)? in
      defer { current = nil }
      return current
    }
    try? await channel?.close().get()
    await binding?.stopAccepting()
    return channel != nil || binding != nil
  }

  var isAccepting: Bool { serverChannel.withLock { $0 != nil } || engineBinding.withLock { $0 != nil } }

  /// The inspectors that run for a connection to `destinationPort` (those not disabled by their predicate).
  package func inspectors(destinationPort: Int) -> (tls: Bool, http: Bool) {
    var tls = false
    var http = false
    for filter in config.listenerFilters
    where !(filter.disabled?.matches(destinationPort: destinationPort) ?? false) {
      switch filter.kind {
      case .tlsInspector: tls = true
      case .httpInspector: http = true
      case .originalDestination: break
      }
    }
    return (tls, http)
  }

  /// Chooses the filter chain and hands the connection to its terminal filter.
  func serve(
    _ channel: any Channel, connection: DownstreamConnection, context: ProxyContext, initialBytes: ByteBuffer?
  ) {
    guard let chain = selector.select(connection) else {
      stats.noFilterChainMatch.inc()
      context.logger.debug(
        "no filter chain matches; closing",
        metadata: [
          "proxy.listener": "\(config.name)", "proxy.connection": "\(connection.id)",
          "proxy.destination": "\(connection.localAddress.envoyDescription)",
          "proxy.sni": "\(connection.serverName ?? "-")",
        ])
      channel.close(promise: nil)
      return
    }
    do {
      try chain.terminal.install(
        on: channel, connection: connection, context: context, initialBytes: initialBytes)
    } catch {
      context.logger.warning(
        "cannot set up the filter chain; closing",
        metadata: [
          "proxy.listener": "\(config.name)", "proxy.filter_chain": "\(chain.name)", "error": "\(error)",
        ])
      channel.close(promise: nil)
    }
  }
}

/// `listener.<prefix>.` stats.
package struct ListenerStats: Sendable {
  package let cxTotal: Counter
  package let cxActive: Gauge
  package let cxDestroy: Counter
  package let cxOverflow: Counter
  package let globalCxOverflow: Counter
  package let cxLengthMs: Histogram
  package let noFilterChainMatch: Counter
  package let preCxActive: Gauge
  package let preCxTimeout: Counter
  /// Pilotfish's own: accept(2) failed for lack of file descriptors (or kernel memory) and the listener
  /// paused accepting for a moment instead of retrying at once.
  package let acceptFdExhausted: Counter

  init(store: StatsStore, prefix: String) {
    let scope = store.scope("listener.\(prefix)")
    cxTotal = scope.counter("downstream_cx_total")
    cxActive = scope.gauge("downstream_cx_active")
    cxDestroy = scope.counter("downstream_cx_destroy")
    cxOverflow = scope.counter("downstream_cx_overflow")
    globalCxOverflow = scope.counter("downstream_global_cx_overflow")
    cxLengthMs = scope.histogram("downstream_cx_length_ms")
    noFilterChainMatch = scope.counter("no_filter_chain_match")
    preCxActive = scope.gauge("downstream_pre_cx_active")
    preCxTimeout = scope.counter("downstream_pre_cx_timeout")
    acceptFdExhausted = scope.counter("downstream_cx_accept_fd_exhausted")
  }
}
