import Logging
import NIOCore
import Testing

@testable import ProxyCore

/// CDS and EDS as the cluster manager applies them: EDS clusters warm until their endpoints arrive, an
/// update keeps serving the old version until the new one is complete, endpoints are remembered per service,
/// clusters sharing a service all get its endpoints, and removal forgets them.
@Suite("cluster manager: CDS and EDS updates")
struct ClusterManagerTests {
  static func eds(_ name: String, service: String, timeout: Int64 = 1) -> Cluster {
    var cluster = Cluster(name: name)
    cluster.discovery = .eds(serviceName: service)
    cluster.connectTimeout = .seconds(timeout)
    return cluster
  }

  static func endpoint(_ port: Int) throws -> Cluster.Endpoint {
    Cluster.Endpoint(address: .socket(try SocketAddress(ipAddress: "127.0.0.1", port: port)))
  }

  @Test func edsClustersWarmAndUpdatesKeepServing() async throws {
    let stats = try StatsStore(config: StatsConfig())
    let manager = ClusterManager(clusters: [], stats: stats, logger: Logger(label: "test"))

    // A new EDS cluster warms; its endpoints make it active.
    #expect(await manager.apply([Self.eds("a", service: "svc")], removed: []) == ["a"])
    #expect(manager.cluster(named: "a") == nil)
    #expect(manager.edsServiceNames == ["svc"])
    #expect(manager.isWarming(service: "svc"))
    #expect(stats.gauge("cluster_manager.warming_clusters").value == 1)
    #expect(manager.updateEndpoints(service: "svc", [try Self.endpoint(1000)]) == ["a"])
    let first = try #require(manager.cluster(named: "a"))
    #expect(first.hosts.map(\.address) == [.socket(try SocketAddress(ipAddress: "127.0.0.1", port: 1000))])
    #expect(stats.gauge("cluster_manager.active_clusters").value == 1)
    #expect(stats.gauge("cluster_manager.warming_clusters").value == 0)

    // A second cluster of the same service starts from the endpoints already known: active at once.
    #expect(await manager.apply([Self.eds("b", service: "svc")], removed: []) == [])
    #expect(manager.cluster(named: "b")?.hosts.count == 1)

    // An endpoint update reaches both; an unchanged host keeps its object (stats, pooled connections).
    let kept = try #require(first.hosts.first)
    manager.updateEndpoints(service: "svc", [try Self.endpoint(1000), try Self.endpoint(1001)])
    #expect(manager.cluster(named: "a")?.hosts.count == 2)
    #expect(manager.cluster(named: "b")?.hosts.count == 2)
    #expect(manager.cluster(named: "a")?.hosts.first === kept)

    // A cluster moved to another service warms there while its old version keeps serving.
    #expect(await manager.apply([Self.eds("a", service: "other", timeout: 2)], removed: []) == ["a"])
    #expect(manager.cluster(named: "a") === first)
    #expect(manager.edsServiceNames == ["svc", "other"])
    manager.updateEndpoints(service: "other", [try Self.endpoint(2000)])
    #expect(manager.cluster(named: "a") !== first)
    #expect(manager.cluster(named: "a")?.config.connectTimeout == .seconds(2))
    #expect(manager.edsServiceNames == ["svc", "other"])  // b still uses svc

    // Removal: gone, and its service forgotten once no cluster uses it.
    await manager.apply([], removed: ["b"])
    #expect(manager.cluster(named: "b") == nil)
    #expect(manager.edsServiceNames == ["other"])
    #expect(stats.counter("cluster_manager.cluster_removed").value == 1)
    #expect(stats.counter("cluster_manager.cluster_modified").value == 1)
  }

  @Test func anInitialFetchTimeoutActivatesWarmingClustersEmpty() async throws {
    let stats = try StatsStore(config: StatsConfig())
    let manager = ClusterManager(clusters: [], stats: stats, logger: Logger(label: "test"))
    await manager.apply([Self.eds("a", service: "svc")], removed: [])
    #expect(manager.activateWarming() == ["a"])
    #expect(manager.cluster(named: "a")?.hosts.isEmpty == true)
  }
}
