package import Logging
package import NIOCore
internal import Synchronization

/// All clusters by name: the bootstrap's static ones and those CDS adds, updates and removes. Lookups are
/// lock-protected dictionary reads, so CDS replaces clusters without stopping traffic; a connection keeps
/// the cluster object it started with. An EDS cluster warms (is not used) until its first load assignment
/// arrives; an updated cluster keeps serving in its old form meanwhile, as in Envoy. DNS clusters are
/// resolved here (a new one before it becomes active, then every `dns_refresh_rate`), off the workers.
package final class ClusterManager: Sendable {
  private struct State {
    var active: [String: UpstreamCluster] = [:]
    /// Clusters (new, or updated versions of active ones) waiting for their endpoints.
    var warming: [String: UpstreamCluster] = [:]
    /// The last endpoints EDS delivered, by service name: a cluster that (re)appears for a known service
    /// starts from them.
    var assignments: [String: [Cluster.Endpoint]] = [:]
    /// When each DNS cluster is next resolved (uptime nanoseconds).
    var nextResolution: [String: UInt64] = [:]
    /// DNS clusters being resolved now.
    var resolving: Set<String> = []
    /// Active and warming EDS clusters by service name (an EDS update touches only these).
    var byService: [String: Set<String>] = [:]

    mutating func index(_ cluster: UpstreamCluster) {
      if case .eds(let service) = cluster.config.discovery {
        byService[service, default: []].insert(cluster.name)
      }
    }

    /// Drops `name` from the service index unless an active or warming cluster of that name still has it.
    mutating func unindex(_ name: String, service: String) {
      let stillThere = [active[name], warming[name]].contains {
        $0?.config.discovery == .eds(serviceName: service)
      }
      guard !stillThere else { return }
      byService[service]?.remove(name)
      if byService[service]?.isEmpty == true { byService[service] = nil }
    }
  }

  private let state = Mutex(State())
  private let stats: StatsStore
  private let logger: Logger
  private let resolver = DNSResolver()
  private let activeClusters: Gauge
  private let warmingClusters: Gauge
  private let clusterAdded: Counter
  private let clusterModified: Counter
  private let clusterRemoved: Counter

  package init(clusters configs: [Cluster], stats: StatsStore, logger: Logger) {
    self.stats = stats
    self.logger = logger
    self.activeClusters = stats.gauge("cluster_manager.active_clusters")
    self.warmingClusters = stats.gauge("cluster_manager.warming_clusters")
    self.clusterAdded = stats.counter("cluster_manager.cluster_added")
    self.clusterModified = stats.counter("cluster_manager.cluster_modified")
    self.clusterRemoved = stats.counter("cluster_manager.cluster_removed")
    state.withLock { state in
      for config in configs {
        let cluster = UpstreamCluster(config: config, stats: stats)
        state.active[config.name] = cluster
        state.index(cluster)
        clusterAdded.inc()
      }
    }
    publishCounts()
  }

  package func cluster(named name: String) -> UpstreamCluster? {
    state.withLock { $0.active[name] }
  }

  /// The active clusters, by name.
  package var all: [UpstreamCluster] {
    state.withLock { Array($0.active.values) }.sorted { $0.name < $1.name }
  }

  /// The clusters waiting for their endpoints, by name.
  package var warming: [UpstreamCluster] {
    state.withLock { Array($0.warming.values) }.sorted { $0.name < $1.name }
  }

  /// The EDS service names of every active and warming cluster (what EDS must subscribe to).
  package var edsServiceNames: Set<String> { state.withLock { Set($0.byService.keys) } }

  /// Whether a cluster of EDS service `service` is waiting for its endpoints.
  package func isWarming(service: String) -> Bool {
    state.withLock { state in (state.byService[service] ?? []).contains { state.warming[$0] != nil } }
  }

  /// Resolves every DNS cluster once. Failures are logged and leave the cluster empty, as Envoy does.
  package func initialize() async {
    await withTaskGroup(of: Void.self) { group in
      for cluster in all where cluster.config.isDNS {
        group.addTask { await self.refresh(cluster) }
      }
    }
  }

  /// Applies a CDS update: `clusters` are added or replace the cluster of the same name, `removed` go.
  /// DNS clusters are resolved before they become active; EDS clusters warm until their endpoints are
  /// known (at once when EDS already delivered them for the service). Returns the names still warming.
  @discardableResult
  package func apply(_ clusters: [Cluster], removed: [String]) async -> [String] {
    var made: [UpstreamCluster] = []
    for config in clusters {
      let cluster = UpstreamCluster(config: config, stats: stats)
      if config.isDNS { await refresh(cluster) }
      made.append(cluster)
    }
    let warming = state.withLock { state -> [String] in
      for name in removed {
        let old = state.active.removeValue(forKey: name) ?? state.warming[name]
        let had = old != nil
        let warmed = state.warming.removeValue(forKey: name) != nil
        state.nextResolution[name] = nil
        if case .eds(let service)? = old?.config.discovery { state.unindex(name, service: service) }
        if had || warmed { clusterRemoved.inc() }
      }
      for cluster in made {
        let name = cluster.name
        let previous = state.active[name] ?? state.warming[name]
        if previous != nil { clusterModified.inc() } else { clusterAdded.inc() }
        state.nextResolution[name] = nil
        if case .eds(let service) = cluster.config.discovery {
          if let endpoints = state.assignments[service] {
            cluster.updateHosts(endpoints)
            state.warming[name] = nil
            state.active[name] = cluster
          } else {
            state.warming[name] = cluster
          }
        } else {
          state.warming[name] = nil
          state.active[name] = cluster
        }
        if case .eds(let service)? = previous?.config.discovery { state.unindex(name, service: service) }
        state.index(cluster)
      }
      return state.warming.keys.sorted()
    }
    publishCounts()
    return warming
  }

  /// Applies an EDS update for `service`: every active and warming cluster of that service gets the
  /// endpoints (unchanged hosts keep their objects, stats and pooled connections); warming ones become
  /// active. Returns the clusters that finished warming.
  @discardableResult
  package func updateEndpoints(service: String, _ endpoints: [Cluster.Endpoint]) -> [String] {
    let (targets, warmed) = state.withLock { state -> ([UpstreamCluster], [String]) in
      state.assignments[service] = endpoints
      var targets: [UpstreamCluster] = []
      var warmed: [String] = []
      for name in state.byService[service] ?? [] {
        if let cluster = state.warming[name], cluster.config.discovery == .eds(serviceName: service) {
          targets.append(cluster)
          state.warming[name] = nil
          // The active cluster it replaces (an older version) is dropped: the new one is complete now.
          let replaced = state.active.updateValue(cluster, forKey: name)
          if case .eds(let old)? = replaced?.config.discovery, old != service {
            state.unindex(name, service: old)
          }
          warmed.append(name)
        } else if let cluster = state.active[name], cluster.config.discovery == .eds(serviceName: service) {
          targets.append(cluster)
        }
      }
      return (targets, warmed.sorted())
    }
    for cluster in targets {
      cluster.stats.updateAttempt.inc()
      cluster.updateHosts(endpoints)
      cluster.stats.updateSuccess.inc()
      if endpoints.isEmpty { cluster.stats.updateEmpty.inc() }
    }
    if !warmed.isEmpty { publishCounts() }
    return warmed
  }

  /// EDS says `service` has no load assignment any more: its clusters keep no hosts.
  package func removeEndpoints(service: String) {
    state.withLock { $0.assignments[service] = nil }
    _ = updateEndpoints(service: service, [])
    state.withLock { $0.assignments[service] = nil }
  }

  /// Forgets load assignments no cluster uses.
  package func pruneAssignments(keeping services: Set<String>) {
    state.withLock { state in state.assignments = state.assignments.filter { services.contains($0.key) } }
  }

  /// Clusters that are still warming become active without endpoints (the initial fetch timed out).
  package func activateWarming() -> [String] {
    let names = state.withLock { state -> [String] in
      let names = state.warming.keys.sorted()
      for (name, cluster) in state.warming {
        let replaced = state.active.updateValue(cluster, forKey: name)
        if case .eds(let old)? = replaced?.config.discovery { state.unindex(name, service: old) }
      }
      state.warming = [:]
      return names
    }
    publishCounts()
    return names
  }

  private func publishCounts() {
    let (active, warming) = state.withLock { ($0.active.count, $0.warming.count) }
    activeClusters.set(UInt64(active))
    warmingClusters.set(UInt64(warming))
  }

  /// Re-resolves DNS clusters (each every `dns_refresh_rate`) and cleans up idle ORIGINAL_DST hosts every
  /// 5 s until cancelled; clusters CDS adds later are picked up.
  package func run() async {
    var sinceCleanup = Duration.zero
    let tick = Duration.milliseconds(100)
    await withDiscardingTaskGroup { group in
      while !Task.isCancelled {
        try? await Task.sleep(for: tick)
        if Task.isCancelled { break }
        let now = NIODeadline.now().uptimeNanoseconds
        let due = state.withLock { state -> [UpstreamCluster] in
          var due: [UpstreamCluster] = []
          for cluster in state.active.values
          where cluster.config.isDNS && !state.resolving.contains(cluster.name) {
            let period = UInt64(max(1, cluster.config.dnsRefreshRate.nanoseconds))
            guard let next = state.nextResolution[cluster.name] else {
              state.nextResolution[cluster.name] = now &+ period
              continue
            }
            if now >= next {
              state.nextResolution[cluster.name] = now &+ period
              state.resolving.insert(cluster.name)
              due.append(cluster)
            }
          }
          return due
        }
        for cluster in due {
          group.addTask {
            await self.refresh(cluster)
            self.state.withLock { _ = $0.resolving.remove(cluster.name) }
          }
        }
        sinceCleanup += tick
        if sinceCleanup >= .seconds(5) {
          sinceCleanup = .zero
          for cluster in all where cluster.config.discovery == .originalDestination {
            cluster.cleanUpIdleOriginalDestinationHosts()
          }
        }
      }
    }
  }

  private func refresh(_ cluster: UpstreamCluster) async {
    let config = cluster.config
    cluster.stats.updateAttempt.inc()
    var endpoints: [Cluster.Endpoint] = []
    var failed = false
    for endpoint in config.endpoints {
      guard case .dns(let host, let port) = endpoint.address else {
        endpoints.append(endpoint)
        continue
      }
      do {
        var addresses = try await resolver.resolve(host: host, port: port, family: config.dnsLookupFamily)
        if config.discovery == .logicalDNS { addresses = Array(addresses.prefix(1)) }
        for address in addresses {
          var resolved = endpoint
          resolved.address = .socket(address)
          if resolved.hostname.isEmpty { resolved.hostname = host }
          endpoints.append(resolved)
        }
      } catch {
        failed = true
        logger.warning(
          "DNS resolution failed; keeping the previous hosts",
          metadata: ["proxy.cluster": "\(config.name)", "proxy.dns.host": "\(host)", "error": "\(error)"])
      }
    }
    if failed {
      cluster.stats.updateFailure.inc()
      return
    }
    cluster.updateHosts(endpoints)
    cluster.stats.updateSuccess.inc()
    if endpoints.isEmpty { cluster.stats.updateEmpty.inc() }
  }
}

extension Cluster {
  /// STRICT_DNS or LOGICAL_DNS.
  package var isDNS: Bool { discovery == .strictDNS || discovery == .logicalDNS }
}
