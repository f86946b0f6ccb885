package import NIOCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// What is known about an accepted connection by the time its filter chain is chosen: addresses (the
/// local address is the original destination once restored), and what the listener filters read.
package struct DownstreamConnection: Sendable {
  package var id: UInt64
  /// The listener that serves the connection (after any original-destination hand-off).
  package var listener: ListenerInfo
  package var remoteAddress: SocketAddress
  /// The local address, or the original destination when SO_ORIGINAL_DST / TPROXY restored it.
  package var localAddress: SocketAddress
  /// True when `localAddress` is a restored original destination (not the listener's own socket).
  package var localAddressRestored = false
  /// `raw_buffer`, or `tls` when tls_inspector saw a ClientHello.
  package var transportProtocol = "raw_buffer"
  package var serverName: String?
  package var applicationProtocols: [String] = []
  /// Wall-clock start, for access logs.
  package var startTime: Int64
  package var startDeadline: NIODeadline
  /// The drain of the filter chain serving the connection (set once the chain is chosen).
  package var chainDrain: ChainDrain?

  package init(
    id: UInt64, listener: ListenerInfo, remoteAddress: SocketAddress, localAddress: SocketAddress
  ) {
    self.id = id
    self.listener = listener
    self.remoteAddress = remoteAddress
    self.localAddress = localAddress
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    self.startTime = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    self.startDeadline = .now()
  }

  /// The original destination for ORIGINAL_DST clusters: only a restored address, so a connection made
  /// straight to a listener is never proxied back to that listener.
  package var originalDestination: SocketAddress? { localAddressRestored ? localAddress : nil }
}

/// The parts of a listener that per-connection code needs, without the filter chains.
package struct ListenerInfo: Sendable {
  package var name: String
  package var statPrefix: String
  package var direction: Listener.TrafficDirection
  package var perConnectionBufferLimitBytes: Int
}

/// The network filter that owns a connection once its filter chain is chosen (tcp_proxy,
/// http_connection_manager): its config, for validation and for the data path that serves it.
package protocol TerminalNetworkFilter: Sendable {
  /// Envoy's filter name, e.g. `envoy.filters.network.tcp_proxy`.
  var filterName: String { get }
  /// Clusters the filter may route to, for validation.
  var clusterNames: [String] { get }
}
