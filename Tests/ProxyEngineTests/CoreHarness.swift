import Foundation
import Logging
import NIOCore
import TestSupport

@testable import ProxyCore
@testable import ProxyEngine

#if canImport(Glibc)
  import Glibc
#endif

/// A proxy core in-process: stats, clusters, listeners on one reactor worker.
final class CoreHarness: @unchecked Sendable {
  let engine: ReactorListenerEngine
  let stats: StatsStore
  let context: ProxyContext
  let clusterManager: ClusterManager
  let listeners: ListenerManager
  var accessLog: AccessLogSink { context.accessLog }

  init(listeners: [Listener], clusters: [Cluster]) throws {
    stats = try StatsStore(config: StatsConfig())
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    clusterManager = ClusterManager(clusters: clusters, stats: stats, logger: logger)
    context = ProxyContext(
      clusterManager: clusterManager, stats: stats, logger: logger, accessLog: AccessLogSink())
    engine = try ReactorListenerEngine(workers: 1, logger: logger)
    self.listeners = ListenerManager(listeners: listeners, context: context, engine: engine)
  }

  /// Shares `other`'s stats, clusters and context, with its own listeners (filters need the stats first).
  init(other: CoreHarness, listeners configs: [Listener]) {
    stats = other.stats
    context = other.context
    clusterManager = other.clusterManager
    engine = other.engine
    listeners = ListenerManager(listeners: configs, context: other.context, engine: engine)
  }

  func start() async throws {
    await clusterManager.initialize()
    try await listeners.start()
  }

  func port(_ name: String) -> Int { listeners.listener(named: name)!.boundAddress!.port! }

  func counter(_ name: String) -> UInt64 { stats.counterValue(name) ?? 0 }

  func stop() async {
    await listeners.stopAccepting(inboundOnly: false)
    engine.shutdown()
  }

  /// Waits until `condition` holds, polling; fails the wait after `seconds`.
  static func eventually(_ seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if condition() { return true }
      try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
  }
}

/// Builders for test configs.
enum Config {
  static func tcpProxyListener(
    _ name: String, port: Int = 0, cluster: TcpProxyConfig.Route, stats: StatsStore,
    configure: (inout TcpProxyConfig) -> Void = { _ in }
  ) throws -> Listener {
    var listener = Listener(name: name, address: try SocketAddress(ipAddress: "127.0.0.1", port: port))
    var proxy = TcpProxyConfig(statPrefix: name, route: cluster)
    configure(&proxy)
    listener.filterChains = [
      FilterChain(name: "tcp", terminal: try TcpProxyFilter(config: proxy, stats: stats))
    ]
    return listener
  }

  static func staticCluster(_ name: String, ports: [Int], configure: (inout Cluster) -> Void = { _ in })
    throws -> Cluster
  {
    var cluster = Cluster(name: name)
    cluster.endpoints = try ports.map {
      Cluster.Endpoint(address: .socket(try SocketAddress(ipAddress: "127.0.0.1", port: $0)))
    }
    cluster.connectTimeout = .seconds(2)
    configure(&cluster)
    return cluster
  }
}
