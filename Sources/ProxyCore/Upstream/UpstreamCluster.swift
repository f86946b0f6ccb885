package import NIOCore
package import Synchronization

/// A cluster at run time: its validated config, the current host snapshot, the load balancer, circuit
/// breaker accounting and stats. Shared by all event loops; the data path takes one short lock to read
/// the host snapshot and otherwise uses atomics.
package final class UpstreamCluster: Sendable {
  package let config: Cluster
  package let stats: ClusterStats
  private let hostSet: Mutex<HostSet>
  private let balancer: LoadBalancer
  /// ORIGINAL_DST hosts by address, created on first use and removed when idle.
  private let originalDestinationHosts = Mutex<[SocketAddress: UpstreamHost]>([:])
  private let activeConnections = Atomic<Int>(0)

  package init(config: Cluster, stats store: StatsStore) {
    self.config = config
    self.stats = ClusterStats(store: store, statName: config.statName)
    self.balancer = LoadBalancer(policy: config.loadBalancing)
    let staticHosts: [UpstreamHost]
    switch config.discovery {
    case .static:
      staticHosts = config.endpoints.map(UpstreamHost.init(endpoint:))
    case .strictDNS, .logicalDNS, .originalDestination, .eds:
      staticHosts = []
    }
    self.hostSet = Mutex(HostSet(staticHosts))
    stats.remainingCxDefault.set(UInt64(config.defaultThresholds.maxConnections))
    stats.cxOpenDefault.set(0)
    publishMembership(HostSet(staticHosts), changed: !staticHosts.isEmpty)
  }

  package var name: String { config.name }

  /// Every host, for `/clusters` (ORIGINAL_DST hosts included).
  package var hosts: [UpstreamHost] {
    let listed = hostSet.withLock { $0.all }
    let dynamic = originalDestinationHosts.withLock { Array($0.values) }
    return listed + dynamic.sorted { $0.address.description < $1.address.description }
  }

  /// Replaces the hosts (DNS resolution, EDS). Unchanged addresses keep their host objects and stats.
  package func updateHosts(_ endpoints: [Cluster.Endpoint]) {
    let changed = hostSet.withLock { current -> HostSet? in
      let existing = Dictionary(current.all.map { ($0.address, $0) }, uniquingKeysWith: { a, _ in a })
      let hosts = endpoints.map { endpoint in
        if let host = existing[endpoint.address], host.matches(endpoint) { return host }
        return UpstreamHost(endpoint: endpoint)
      }
      let same = hosts.count == current.all.count && zip(hosts, current.all).allSatisfy { $0 === $1 }
      if same { return nil }
      current = HostSet(hosts)
      return current
    }
    if let changed { publishMembership(changed, changed: true) }
  }

  private func publishMembership(_ set: HostSet, changed: Bool) {
    stats.membershipTotal.set(UInt64(set.all.count))
    stats.membershipHealthy.set(UInt64(set.healthy.count))
    stats.membershipDegraded.set(0)
    stats.membershipExcluded.set(0)
    stats.maxHostWeight.set(UInt64(set.all.map(\.weight).max() ?? 0))
    if changed { stats.membershipChange.inc() }
  }

  /// Chooses a host for a new upstream connection. ORIGINAL_DST clusters use the downstream
  /// connection's original destination. Nil when there is none (`upstream_cx_none_healthy`).
  package func chooseHost(originalDestination: SocketAddress?) -> UpstreamHost? {
    if case .originalDestination = config.discovery {
      guard let destination = originalDestination else { return nil }
      return originalDestinationHosts.withLock { hosts in
        if let host = hosts[destination] { return host }
        let host = UpstreamHost(address: .socket(destination))
        hosts[destination] = host
        return host
      }
    }
    let snapshot = hostSet.withLock { $0 }
    return balancer.pick(from: snapshot)
  }

  /// Removes ORIGINAL_DST hosts with no active connection (Envoy's `cleanup_interval`).
  package func cleanUpIdleOriginalDestinationHosts() {
    originalDestinationHosts.withLock { hosts in
      hosts = hosts.filter { $0.value.connectionsActive.load(ordering: .relaxed) > 0 }
    }
  }

  /// Counts a connection being opened to `host`: `upstream_cx_total`, `upstream_cx_active` and the host's
  /// own counters (for /clusters and least-request balancing).
  package func connectionOpened(to host: UpstreamHost) {
    stats.cxTotal.inc()
    stats.cxActive.inc()
    host.connectionsTotal.wrappingAdd(1, ordering: .relaxed)
    host.connectionsActive.wrappingAdd(1, ordering: .relaxed)
  }

  /// Undoes `connectionOpened(to:)`'s active counts when that connection is gone (or never connected).
  package func connectionClosed(to host: UpstreamHost) {
    stats.cxActive.dec()
    host.connectionsActive.wrappingSubtract(1, ordering: .relaxed)
  }

  /// Circuit breaker for connections: true when one more upstream connection is allowed, and counts it.
  package func acquireConnectionSlot() -> Bool {
    let limit = config.defaultThresholds.maxConnections
    let now = activeConnections.wrappingAdd(1, ordering: .relaxed).newValue
    if now > limit {
      activeConnections.wrappingSubtract(1, ordering: .relaxed)
      stats.cxOverflow.inc()
      stats.cxOpenDefault.set(1)
      return false
    }
    stats.remainingCxDefault.set(UInt64(max(0, limit - now)))
    if now == limit { stats.cxOpenDefault.set(1) }
    return true
  }

  package func releaseConnectionSlot() {
    let limit = config.defaultThresholds.maxConnections
    let now = activeConnections.wrappingSubtract(1, ordering: .relaxed).newValue
    stats.remainingCxDefault.set(UInt64(max(0, limit - now)))
    if now < limit { stats.cxOpenDefault.set(0) }
  }
}
