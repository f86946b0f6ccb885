package import NIOCore
package import ProxyCore

/// Envoy's `http_connection_manager` network filter, validated: HTTP/1.1 only, an inline route table or one
/// by RDS, the router as the only HTTP filter that runs.
package struct HTTPConnectionManagerConfig: Sendable {
  package enum ServerHeaderTransformation: Sendable, Equatable {
    case overwrite, appendIfAbsent, passThrough
  }

  package enum StripPortMode: Sendable, Equatable {
    case none
    /// `strip_matching_host_port`: drop the Host port when it is the listener's (destination) port.
    case matching
    /// `strip_any_host_port`.
    case any
  }

  package var statPrefix: String
  /// The inline `route_config` (empty when the routes come by RDS).
  package var routeConfig: RouteConfiguration
  /// `rds.route_config_name`: the route table arrives by RDS under this name.
  package var rdsRouteConfigName: String?
  /// `server` on responses (default `envoy`).
  package var serverName = "envoy"
  package var serverHeaderTransformation = ServerHeaderTransformation.overwrite
  /// Append the peer address to `x-forwarded-for` and overwrite `x-forwarded-proto` (edge proxy).
  package var useRemoteAddress = false
  package var xffNumTrustedHops = 0
  /// Add `x-request-id` (a UUID v4) when the request has none.
  package var generateRequestID = true
  /// Forward `Expect: 100-continue` (true) or answer `100 Continue` locally and drop it (Envoy's default).
  package var proxy100Continue = false
  /// No bytes for this long on an active stream answers 408 or resets it; nil = off (Envoy: 5 min).
  package var streamIdleTimeout: TimeAmount? = .minutes(5)
  /// The whole request must arrive within this; nil = off (Envoy's default).
  package var requestTimeout: TimeAmount?
  /// The request head must be complete this long after its first byte (408, then close); nil = off
  /// (Envoy's default). A partial head is also bound by `streamIdleTimeout` and `requestTimeout`.
  package var requestHeadersTimeout: TimeAmount?
  /// A connection with no active request for this long is closed; nil = off (Envoy: 1 h).
  package var idleTimeout: TimeAmount? = .hours(1)
  /// Accepted for HTTP/2 GOAWAY; HTTP/1 connections close after their current response when draining.
  package var drainTimeout: TimeAmount = .seconds(5)
  /// Largest request head (`max_request_headers_kb`, Envoy default 60 KiB) and header count.
  package var limits = HTTP1Limits()
  /// Upgrade types allowed (lower-cased), e.g. `websocket`.
  package var upgradeTypes: Set<String> = []
  package var stripPortMode = StripPortMode.none
  package var accessLogs: [AccessLogConfig] = []
  /// Things accepted but not acted on (Istio HTTP filters, unsupported options).
  package var warnings: [ProxyConfigWarning] = []

  package init(statPrefix: String, routeConfig: RouteConfiguration) {
    self.statPrefix = statPrefix
    self.routeConfig = routeConfig
  }

  /// Every cluster a route may use.
  package var clusterNames: [String] {
    var seen = Set<String>()
    var out: [String] = []
    for vhost in routeConfig.virtualHosts {
      for route in vhost.routes {
        for name in route.action.clusterNames where seen.insert(name).inserted { out.append(name) }
      }
    }
    return out
  }
}
