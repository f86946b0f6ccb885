package import Logging
package import NIOCore
internal import Synchronization

/// All clusters by name. Lookups are lock-protected dictionary reads of an immutable snapshot, so CDS can
/// replace clusters without stopping traffic. DNS clusters are resolved here (first resolution before the
/// server goes LIVE, then every `dns_refresh_rate`), off the event loops.
package final class ClusterManager: Sendable {
  private let clusters: Mutex<[String: UpstreamCluster]>
  private let stats: StatsStore
  private let logger: Logger
  private let resolver = DNSResolver()
  private let activeClusters: Gauge
  private let clusterAdded: Counter

  package init(clusters configs: [Cluster], stats: StatsStore, logger: Logger) {
    self.stats = stats
    self.logger = logger
    self.activeClusters = stats.gauge("cluster_manager.active_clusters")
    self.clusterAdded = stats.counter("cluster_manager.cluster_added")
    var map: [String: UpstreamCluster] = [:]
    for config in configs {
      map[config.name] = UpstreamCluster(config: config, stats: stats)
      clusterAdded.inc()
    }
    self.clusters = Mutex(map)
    activeClusters.set(UInt64(map.count))
    stats.gauge("cluster_manager.warming_clusters").set(0)
  }

  package func cluster(named name: String) -> UpstreamCluster? {
    clusters.withLock { $0[name] }
  }

  package var all: [UpstreamCluster] {
    clusters.withLock { Array($0.values) }.sorted { $0.name < $1.name }
  }

  /// Resolves every DNS cluster once. Failures are logged and leave the cluster empty, as Envoy does.
  package func initialize() async {
    await withTaskGroup(of: Void.self) { group in
      for cluster in all
      where cluster.config.discovery == .strictDNS || cluster.config.discovery == .logicalDNS {
        group.addTask { await self.refresh(cluster) }
      }
    }
  }

  /// Re-resolves DNS clusters and cleans up idle ORIGINAL_DST hosts until cancelled.
  package func run() async {
    await withTaskGroup(of: Void.self) { group in
      for cluster in all {
        switch cluster.config.discovery {
        case .strictDNS, .logicalDNS:
          group.addTask {
            while !Task.isCancelled {
              try? await Task.sleep(for: .nanoseconds(cluster.config.dnsRefreshRate.nanoseconds))
              if Task.isCancelled { return }
              await self.refresh(cluster)
            }
          }
        case .originalDestination:
          group.addTask {
            while !Task.isCancelled {
              try? await Task.sleep(for: .seconds(5))
              cluster.cleanUpIdleOriginalDestinationHosts()
            }
          }
        case .static, .eds:
          break
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
