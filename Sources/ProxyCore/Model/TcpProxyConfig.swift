package import NIOCore

/// Envoy's `tcp_proxy` network filter, validated.
package struct TcpProxyConfig: Sendable {
  package enum Route: Sendable, Equatable {
    case cluster(String)
    /// Clusters with weights; a connection picks one in proportion to its weight.
    case weighted([(name: String, weight: Int)])

    package static func == (lhs: Route, rhs: Route) -> Bool {
      switch (lhs, rhs) {
      case (.cluster(let a), .cluster(let b)): a == b
      case (.weighted(let a), .weighted(let b)):
        a.map(\.name) == b.map(\.name) && a.map(\.weight) == b.map(\.weight)
      default: false
      }
    }

    /// Every cluster this route may use.
    package var clusterNames: [String] {
      switch self {
      case .cluster(let name): [name]
      case .weighted(let clusters): clusters.map(\.name)
      }
    }
  }

  package var statPrefix: String
  package var route: Route
  /// No bytes either way for this long closes both sides; nil disables (Envoy: default 1h, `0s` = off).
  package var idleTimeout: TimeAmount? = .hours(1)
  /// Upstream connect attempts before giving up (Envoy's `max_connect_attempts`, default 1).
  package var maxConnectAttempts: Int = 1
  package var accessLogs: [AccessLogConfig] = []

  package init(statPrefix: String, route: Route) {
    self.statPrefix = statPrefix
    self.route = route
  }
}
