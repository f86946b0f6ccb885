package import NIOCore

/// An upstream cluster as the data path sees it (Envoy's `Cluster`), validated once when the config
/// arrives. How hosts are found is `discovery`; how one is chosen is `loadBalancing`.
package struct Cluster: Sendable {
  package enum Discovery: Sendable, Equatable {
    /// `STATIC`: the load assignment lists IP (or pipe) endpoints.
    case `static`
    /// `STRICT_DNS`: every address every name resolves to is a host; re-resolved every `dnsRefreshRate`.
    case strictDNS
    /// `LOGICAL_DNS`: one host per name, the first address of the latest resolution.
    case logicalDNS
    /// `ORIGINAL_DST`: the host is the downstream connection's original destination.
    case originalDestination
    /// `EDS`: hosts arrive by endpoint discovery (service name).
    case eds(serviceName: String)
  }

  package enum DNSLookupFamily: Sendable, Equatable {
    case auto, v4Only, v6Only, v4Preferred, all
  }

  package struct Endpoint: Sendable, Equatable {
    package var address: UpstreamAddress
    package var weight: Int = 1
    package var priority: Int = 0
    package var healthy: Bool = true
    package var hostname: String = ""
    package var region: String = ""
    package var zone: String = ""
    package var subZone: String = ""
    /// The locality's `load_balancing_weight` (locality-weighted balancing), when set.
    package var localityWeight: Int?
    /// The endpoint's `metadata.filter_metadata`, string values only, by filter name: what
    /// `transport_socket_matches` (`envoy.transport_socket_match`, Istio's `tlsMode`) and telemetry (`istio`)
    /// read.
    package var metadata: [String: [String: String]] = [:]

    package init(address: UpstreamAddress) { self.address = address }
  }

  /// Envoy's circuit-breaker thresholds for one routing priority (defaults 1024/1024/1024/3).
  package struct Thresholds: Sendable, Equatable {
    package var maxConnections: Int = 1024
    package var maxPendingRequests: Int = 1024
    package var maxRequests: Int = 1024
    package var maxRetries: Int = 3
    package init() {}
  }

  package var name: String
  /// The name used in stats (`alt_stat_name`, else `name`).
  package var statName: String
  package var discovery: Discovery = .static
  package var connectTimeout: TimeAmount = .seconds(5)
  package var loadBalancing: LoadBalancingPolicy = .roundRobin
  package var endpoints: [Endpoint] = []
  package var defaultThresholds = Thresholds()
  package var highThresholds = Thresholds()
  /// `upstream_bind_config`: source addresses to bind before connecting, first of the host's family wins.
  package var sourceAddresses: [SocketAddress] = []
  package var dnsRefreshRate: TimeAmount = .seconds(5)
  package var dnsLookupFamily: DNSLookupFamily = .auto
  package var perConnectionBufferLimitBytes: Int = 1024 * 1024
  /// `HttpProtocolOptions.common_http_protocol_options.idle_timeout` (in `typed_extension_protocol_options`,
  /// decoded at load): pooled HTTP connections idle this long are closed. Envoy's default is 1 h (Istio
  /// sets it from DestinationRule); nil (`0s`) keeps them.
  package var upstreamHTTPIdleTimeout: TimeAmount? = .hours(1)
  /// The cluster was added by the bootstrap (false) or by CDS (true): `/clusters` prints it.
  package var addedViaAPI = false

  package init(name: String) {
    self.name = name
    self.statName = name
  }
}

/// How a cluster picks a host. One case per Envoy `lb_policy` the proxy implements.
package enum LoadBalancingPolicy: Sendable, Equatable {
  case roundRobin
  /// Power of `choiceCount` choices on active requests (Envoy's default choice count is 2).
  case leastRequest(choiceCount: Int)
  case random
  /// The cluster decides (ORIGINAL_DST).
  case clusterProvided
}
