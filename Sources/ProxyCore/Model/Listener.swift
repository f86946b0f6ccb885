package import NIOCore

/// A listener as the data path sees it (Envoy's `Listener`), validated once when the config arrives.
package struct Listener: Sendable {
  package enum TrafficDirection: Sendable, Equatable {
    case unspecified, inbound, outbound
  }

  package var name: String
  package var address: SocketAddress
  /// `listener.<stat prefix>.…`; Envoy uses `stat_prefix` or the address (`0.0.0.0_15001`).
  package var statPrefix: String
  /// False: the listener only receives connections handed off by a `use_original_dst` listener.
  package var bindToPort = true
  /// Hand accepted connections to the listener matching their original destination.
  package var useOriginalDestination = false
  /// `transparent`: IP_TRANSPARENT on the socket (TPROXY interception).
  package var transparent = false
  /// IPv6 listeners are v6-only unless `ipv4_compat` asks for dual stack (as in Envoy).
  package var ipv4Compatible = false
  package var trafficDirection: TrafficDirection = .unspecified
  package var listenerFilters: [ListenerFilter] = []
  /// How long listener filters may wait for bytes; nil = forever (Envoy: default 15s, `0s` = none).
  package var listenerFiltersTimeout: TimeAmount? = .seconds(15)
  /// On that timeout, go on with what is known (true) or close (false).
  package var continueOnListenerFiltersTimeout = false
  package var filterChains: [FilterChain] = []
  package var defaultFilterChain: FilterChain?
  package var perConnectionBufferLimitBytes: Int = 1024 * 1024
  /// Connections accepted concurrently; beyond it new ones are closed (`downstream_cx_overflow`). Envoy
  /// takes it from the runtime key `envoy.resource_limits.listener.<name>.connection_limit`.
  package var maxConnections: Int?
  /// `ignore_global_conn_limit`: exempt from the overload manager's global connection limit.
  package var ignoresGlobalConnectionLimit = false
  package var backlog: Int = 1024
  /// `enable_reuse_port` (default on, as Envoy on Linux): each worker binds its own SO_REUSEPORT socket;
  /// off, the workers share one socket.
  package var reusePort = true
  /// The listener's config without its filter chains (deterministic protobuf bytes): equal keys mean an
  /// update changed filter chains only, which is applied in place.
  package var configKey: [UInt8] = []

  package init(name: String, address: SocketAddress) {
    self.name = name
    self.address = address
    self.statPrefix = address.statName
  }
}

/// One filter chain: what it matches and the network filters that serve a connection.
package struct FilterChain: Sendable {
  package var name: String
  package var match = FilterChainMatch()
  /// The filter that owns the connection (tcp_proxy, http_connection_manager).
  package var terminal: any TerminalNetworkFilter
  /// Filters accepted but not run (Istio's stats and metadata-exchange filters), for /config_dump.
  package var skippedFilters: [String] = []
  /// The chain's config (deterministic protobuf bytes): an update with the same bytes keeps this chain,
  /// its filter and its connections.
  package var configKey: [UInt8] = []
  /// The chain's transport socket is TLS (`DownstreamTlsContext`), which the data path cannot terminate
  /// yet: such connections are closed.
  package var terminatesTLS = false
  /// Set when an update removed or changed this chain: its connections drain.
  package let drain = ChainDrain()

  package init(name: String, terminal: any TerminalNetworkFilter) {
    self.name = name
    self.terminal = terminal
  }
}

/// A listener filter and the predicate under which it is skipped (`filter_disabled`).
package struct ListenerFilter: Sendable, Equatable {
  package enum Kind: Sendable, Equatable {
    /// Restores the connection's original destination (SO_ORIGINAL_DST) as its local address.
    case originalDestination
    /// Reads the TLS ClientHello: transport protocol `tls`, SNI, ALPN.
    case tlsInspector
    /// Reads the first request line: ALPN `http/1.0`, `http/1.1` or `h2c` for plaintext.
    case httpInspector
  }

  package var kind: Kind
  package var disabled: ListenerFilterPredicate?

  package init(_ kind: Kind, disabled: ListenerFilterPredicate? = nil) {
    self.kind = kind
    self.disabled = disabled
  }
}

/// Envoy's `ListenerFilterChainMatchPredicate`.
package indirect enum ListenerFilterPredicate: Sendable, Equatable {
  case any
  case or([ListenerFilterPredicate])
  case and([ListenerFilterPredicate])
  case not(ListenerFilterPredicate)
  /// `[start, end)`, on the connection's destination port.
  case destinationPortRange(Range<Int>)

  package func matches(destinationPort: Int) -> Bool {
    switch self {
    case .any: true
    case .or(let rules): rules.contains { $0.matches(destinationPort: destinationPort) }
    case .and(let rules): rules.allSatisfy { $0.matches(destinationPort: destinationPort) }
    case .not(let rule): !rule.matches(destinationPort: destinationPort)
    case .destinationPortRange(let range): range.contains(destinationPort)
    }
  }
}
