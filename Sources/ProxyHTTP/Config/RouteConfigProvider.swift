package import ProxyCore
internal import Synchronization

/// One route table, immutable once published: what a request is routed by from start to end (its
/// response header mutations come from the same table even if RDS replaces it meanwhile).
package final class RouteTable: Sendable {
  package let config: RouteConfiguration
  /// The RDS resource version it came from (empty for an inline route_config).
  package let version: String

  package init(_ config: RouteConfiguration, version: String = "") {
    self.config = config
    self.version = version
  }
}

/// Where an HTTP connection manager gets its route table: fixed (inline `route_config`) or by name from
/// RDS, replaced whenever an update for that name is accepted. A connection reads the table once and
/// re-reads it only when the generation moved, so the request path takes no lock while nothing changes.
package final class RouteConfigProvider: Sendable {
  /// The RDS `route_config_name`; nil for an inline route table.
  package let rdsName: String?
  private let cell: ConfigCell<RouteTable?>

  /// A fixed table (inline `route_config`).
  package init(inline config: RouteConfiguration) {
    rdsName = nil
    cell = ConfigCell(RouteTable(config))
  }

  /// A table that arrives by RDS under `name`; nil until the first update.
  package init(rdsName name: String) {
    rdsName = name
    cell = ConfigCell(nil)
  }

  /// Bumped on every published table.
  package var generation: UInt64 { cell.generation }

  /// The current table (nil while an RDS table has not arrived).
  package var current: RouteTable? { cell.current }

  /// Publishes a new table (RDS).
  package func publish(_ new: RouteTable) { cell.publish(new) }

  /// Whether the table is there (an HCM on RDS keeps its listener warming until it is).
  package var isReady: Bool { current != nil }
}

/// The route tables that arrive by RDS, by `route_config_name`: one provider per name, shared by every HTTP
/// connection manager that names it. The composition root publishes accepted updates here and drops names no
/// listener uses any more.
package final class RouteConfigRegistry: Sendable {
  private let providers = Mutex<[String: RouteConfigProvider]>([:])

  package init() {}

  /// The provider for `name`, created (empty) on first use.
  package func provider(named name: String) -> RouteConfigProvider {
    providers.withLock { all in
      if let known = all[name] { return known }
      let made = RouteConfigProvider(rdsName: name)
      all[name] = made
      return made
    }
  }

  /// The provider for `name` if some HCM asked for it.
  package func existing(named name: String) -> RouteConfigProvider? { providers.withLock { $0[name] } }

  /// Forgets every name not in `names` (no listener references it any more).
  package func retain(only names: Set<String>) {
    providers.withLock { all in all = all.filter { names.contains($0.key) } }
  }

  /// Every name with its current table (for /config_dump).
  package var all: [(name: String, table: RouteTable?)] {
    providers.withLock { all in all.map { ($0.key, $0.value.current) } }.sorted { $0.name < $1.name }
  }
}
