package import NIOCore

/// Envoy's filter-chain selection. Criteria are applied in a fixed order — destination port, destination
/// IP, server name, transport protocol, application protocols, direct source IP, source type, source IP,
/// source port — and at each step only the most specific candidates survive (an exact port beats "any
/// port", a longer prefix beats a shorter one, an exact server name beats a wildcard). Like Envoy, a more
/// specific branch that later fails does not fall back to a less specific one: the connection then gets
/// the default filter chain, or none.
package struct FilterChainSelector: Sendable {
  package let chains: [FilterChain]
  package let defaultChain: FilterChain?
  /// Set when every chain matches everything: selection is then always the first chain, decided here
  /// once instead of per connection (the common single-chain listener).
  private let unconditional: Int?

  package init(chains: [FilterChain], defaultChain: FilterChain?) {
    self.chains = chains
    self.defaultChain = defaultChain
    self.unconditional = !chains.isEmpty && chains.allSatisfy { $0.match.matchesEverything } ? 0 : nil
  }

  /// True when some chain's criteria need bytes from the connection (SNI, ALPN, transport protocol).
  package var needsInspection: Bool { chains.contains { $0.match.needsInspection } }

  package func select(_ connection: DownstreamConnection) -> FilterChain? {
    guard let index = selectIndex(connection) else { return defaultChain }
    return chains[index]
  }

  package func selectIndex(_ connection: DownstreamConnection) -> Int? {
    if let unconditional { return unconditional }
    var candidates = Array(chains.indices)
    let destination = connection.localAddress
    let source = connection.remoteAddress

    // 1. Destination port.
    let port = destination.port ?? 0
    candidates = narrow(candidates) { m in m.destinationPort.map { $0 == port ? 1 : nil } ?? 0 }
    // 2. Destination IP: longest matching prefix.
    candidates = narrow(candidates) { m in Self.prefixScore(m.prefixRanges, destination) }
    // 3. Server name: exact, then the longest wildcard suffix.
    candidates = narrow(candidates) { m in Self.serverNameScore(m.serverNames, connection.serverName) }
    // 4. Transport protocol.
    candidates = narrow(candidates) { m in
      m.transportProtocol.isEmpty ? 0 : (m.transportProtocol == connection.transportProtocol ? 1 : nil)
    }
    // 5. Application protocols: any of the connection's.
    candidates = narrow(candidates) { m in
      m.applicationProtocols.isEmpty
        ? 0 : (m.applicationProtocols.contains { connection.applicationProtocols.contains($0) } ? 1 : nil)
    }
    // 6. Direct source IP (the peer; no PROXY protocol support, so the same as the source).
    candidates = narrow(candidates) { m in Self.prefixScore(m.directSourcePrefixRanges, source) }
    // 7. Source type.
    candidates = narrow(candidates) { m in
      switch m.sourceType {
      case .any: return 0
      case .sameIPOrLoopback: return Self.isLocal(source, destination) ? 1 : nil
      case .external: return Self.isLocal(source, destination) ? nil : 1
      }
    }
    // 8. Source IP.
    candidates = narrow(candidates) { m in Self.prefixScore(m.sourcePrefixRanges, source) }
    // 9. Source port.
    let sourcePort = source.port ?? 0
    candidates = narrow(candidates) { m in
      m.sourcePorts.isEmpty ? 0 : (m.sourcePorts.contains(sourcePort) ? 1 : nil)
    }
    return candidates.first
  }

  /// Keeps the candidates with the highest score; nil scores do not match. Score 0 means "criterion not
  /// set", which only survives when no candidate matches specifically.
  private func narrow(_ candidates: [Int], score: (FilterChainMatch) -> Int?) -> [Int] {
    var best = -1
    var kept: [Int] = []
    for index in candidates {
      guard let s = score(chains[index].match) else { continue }
      if s > best {
        best = s
        kept = [index]
      } else if s == best {
        kept.append(index)
      }
    }
    return kept
  }

  /// 0 when no ranges are set, 1 + the longest matching prefix length, or nil when none matches.
  private static func prefixScore(_ ranges: [CIDRRange], _ address: SocketAddress) -> Int? {
    if ranges.isEmpty { return 0 }
    let lengths = ranges.filter { $0.contains(address) }.map(\.prefixLength)
    return lengths.max().map { $0 + 1 }
  }

  private static func serverNameScore(_ names: [String], _ serverName: String?) -> Int? {
    if names.isEmpty { return 0 }
    guard let serverName = serverName?.lowercased(), !serverName.isEmpty else { return nil }
    var best: Int?
    for name in names {
      let pattern = name.lowercased()
      if pattern == serverName { return Int.max }
      if pattern.hasPrefix("*.") {
        let suffix = pattern.dropFirst(1)  // ".example.com"
        if serverName.hasSuffix(suffix), serverName.count > suffix.count {
          best = max(best ?? 0, suffix.count)
        }
      }
    }
    return best
  }

  private static func isLocal(_ source: SocketAddress, _ destination: SocketAddress) -> Bool {
    if let bytes = source.addressBytes {
      if bytes.count == 4 && bytes[0] == 127 { return true }
      if bytes.count == 16 && bytes == [UInt8](repeating: 0, count: 15) + [1] { return true }
    }
    return source.addressBytes == destination.addressBytes
  }
}
