package import NIOCore

/// What one finished connection (tcp_proxy) or request (HTTP) contributes to an access log line.
package struct AccessLogEntry: Sendable {
  package var startTime: Int64  // ns since the epoch
  package var durationMs: Int64 = 0
  package var downstreamRemote: SocketAddress?
  package var downstreamLocal: SocketAddress?
  package var upstreamHost: String?
  package var upstreamLocal: SocketAddress?
  /// The cluster's name (`%UPSTREAM_CLUSTER_RAW%`).
  package var upstreamCluster: String?
  /// The cluster's observability name, `alt_stat_name` when set (`%UPSTREAM_CLUSTER%`); nil: the name.
  package var upstreamClusterObservabilityName: String?
  package var bytesReceived: UInt64 = 0
  package var bytesSent: UInt64 = 0
  /// Envoy response flags, e.g. `UF` (upstream connect failure), `UO` (overflow), `UH` (no healthy host).
  package var responseFlags: [String] = []
  package var requestedServerName: String?
  package var protocolName: String?
  package var responseCode: Int?
  /// Why the response code is what it is (`via_upstream`, `route_not_found` …), HTTP only.
  package var responseCodeDetails: String?
  /// Why the upstream connection could not be used (the connect error), as Envoy's
  /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`.
  package var upstreamTransportFailureReason: String?
  package var connectionTerminationDetails: String?
  package var routeName: String?
  /// Request headers by lower-cased name (`:method`, `:path`, `:authority` included), HTTP only.
  package var requestHeader: (@Sendable (String) -> String?)?
  package var responseHeader: (@Sendable (String) -> String?)?

  package init(startTime: Int64) { self.startTime = startTime }
}
