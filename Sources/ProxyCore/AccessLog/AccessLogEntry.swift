package import NIOCore

/// What one finished connection (tcp_proxy) or request (HTTP) contributes to an access log line.
package struct AccessLogEntry: Sendable {
  package var startTime: Int64  // ns since the epoch
  package var durationMs: Int64 = 0
  package var downstreamRemote: SocketAddress?
  package var downstreamLocal: SocketAddress?
  package var upstreamHost: String?
  package var upstreamLocal: SocketAddress?
  package var upstreamCluster: String?
  package var bytesReceived: UInt64 = 0
  package var bytesSent: UInt64 = 0
  /// Envoy response flags, e.g. `UF` (upstream connect failure), `UO` (overflow), `UH` (no healthy host).
  package var responseFlags: [String] = []
  package var requestedServerName: String?
  package var protocolName: String?
  package var responseCode: Int?
  package var connectionTerminationDetails: String?
  package var routeName: String?
  /// Request headers by lower-cased name (`:method`, `:path`, `:authority` included), HTTP only.
  package var requestHeader: (@Sendable (String) -> String?)?
  package var responseHeader: (@Sendable (String) -> String?)?

  package init(startTime: Int64) { self.startTime = startTime }
}
