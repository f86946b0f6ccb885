package import NIOCore
internal import Synchronization

/// A listener at run time: its config, the compiled filter-chain selector, its `listener.<prefix>.`
/// stats and (when bound) the data path's binding of it.
package final class ActiveListener: Sendable {
  package let config: Listener
  package let info: ListenerInfo
  package let selector: FilterChainSelector
  package let stats: ListenerStats
  package let restoresOriginalDestination: Bool
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
  package var boundAddress: SocketAddress? { engineBinding.withLock { $0?.boundAddress } }

  func setEngineBinding(_ binding: any ListenerEngineBinding) { engineBinding.withLock { $0 = binding } }

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
