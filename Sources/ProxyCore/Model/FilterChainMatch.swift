/// Envoy's `FilterChainMatch`: the criteria a connection must meet to use a filter chain. Empty criteria
/// match anything. Selection among chains follows Envoy's precedence (see `FilterChainSelector`).
package struct FilterChainMatch: Sendable, Equatable {
  package enum SourceType: Sendable, Equatable {
    case any, sameIPOrLoopback, external
  }

  package var destinationPort: Int?
  package var prefixRanges: [CIDRRange] = []
  package var serverNames: [String] = []
  package var transportProtocol: String = ""
  package var applicationProtocols: [String] = []
  package var directSourcePrefixRanges: [CIDRRange] = []
  package var sourceType: SourceType = .any
  package var sourcePrefixRanges: [CIDRRange] = []
  package var sourcePorts: [Int] = []

  package init() {}

  /// True when at least one criterion needs bytes from the connection (SNI, ALPN, transport protocol),
  /// i.e. a listener filter must run before this chain can be chosen.
  /// True when no criterion is set: the chain matches every connection.
  package var matchesEverything: Bool {
    destinationPort == nil && prefixRanges.isEmpty && serverNames.isEmpty && transportProtocol.isEmpty
      && applicationProtocols.isEmpty && directSourcePrefixRanges.isEmpty && sourceType == .any
      && sourcePrefixRanges.isEmpty && sourcePorts.isEmpty
  }

  package var needsInspection: Bool {
    !serverNames.isEmpty || !transportProtocol.isEmpty || !applicationProtocols.isEmpty
  }
}
