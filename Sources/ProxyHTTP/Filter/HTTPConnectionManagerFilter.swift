internal import EnvoyAPI
package import NIOCore
package import ProxyCore
package import ProxyEngine
internal import SwiftProtobuf

/// `envoy.filters.network.http_connection_manager` as a terminal filter on the reactor: an
/// `HTTPConnectionManager` per connection, which routes each request and proxies it over the worker's
/// upstream pools.
package struct HTTPConnectionManagerFilter: TerminalNetworkFilter, ReactorTerminalFilter {
  package let config: HTTPConnectionManagerConfig
  let stats: HTTPConnectionManagerStats
  let accessLogs: [CompiledAccessLog]
  /// Upstream pools of this filter, one per worker.
  let pools: HTTPUpstreamPoolDirectory
  /// The route table: inline, or by RDS.
  package let routes: RouteConfigProvider

  package static let filterName = "envoy.filters.network.http_connection_manager"

  /// `routes` resolves an RDS route table name (a registry of its own when not given).
  package init(
    config: HTTPConnectionManagerConfig, stats store: StatsStore, pools: HTTPUpstreamPoolDirectory = .init(),
    routes registry: RouteConfigRegistry? = nil
  ) throws(ProxyConfigError) {
    self.config = config
    if let name = config.rdsRouteConfigName {
      self.routes = (registry ?? RouteConfigRegistry()).provider(named: name)
    } else {
      self.routes = RouteConfigProvider(inline: config.routeConfig)
    }
    self.stats = HTTPConnectionManagerStats(store: store, prefix: config.statPrefix)
    self.accessLogs = try CompiledAccessLog.compile(config.accessLogs)
    self.pools = pools
  }

  package var filterName: String { Self.filterName }
  package var clusterNames: [String] { config.clusterNames }

  package func serve(
    _ connection: Connection, info: DownstreamConnection, proxy: ProxyContext, initialBytes: ByteBuffer?,
    accounting: ListenerConnectionAccounting
  ) {
    let manager = HTTPConnectionManager(
      filter: self, connection: info, proxy: proxy, pool: pools.pool(on: connection.reactor))
    ReactorHTTPDownstream.start(
      connection, manager: manager, initialBytes: initialBytes, accounting: accounting)
  }

  /// Registers the HTTP connection manager's type and name with the network filter registry. Every HCM
  /// built through this registry shares one pool directory, so listeners reuse each other's upstream
  /// connections (one pool per worker loop, as in Envoy). RDS route tables are looked up by name in `routes`.
  package static func register(
    into registry: inout NetworkFilterRegistry, routes: RouteConfigRegistry = RouteConfigRegistry()
  ) {
    let pools = HTTPUpstreamPoolDirectory()
    registry.register(
      typeName: HTTPConnectionManagerConfig.Proto.protoMessageName, filterName: filterName
    ) { any, context throws(ProxyConfigError) in
      let proto: HTTPConnectionManagerConfig.Proto
      do {
        proto = try HTTPConnectionManagerConfig.Proto(serializedBytes: any.value)
      } catch {
        throw ProxyConfigError("", "cannot decode http_connection_manager config: \(error)")
      }
      let config = try HTTPConnectionManagerConfig(proto, accessLog: context.accessLog)
      context.warnings.add(config.warnings)
      return try HTTPConnectionManagerFilter(
        config: config, stats: context.stats, pools: pools, routes: routes)
    }
  }
}
