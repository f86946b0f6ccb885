/// How inbound TCP reaches the proxy.
package enum InboundInterceptionMode: String, Sendable, Hashable, CaseIterable {
  /// NAT REDIRECT to the inbound capture port (the original destination is read with SO_ORIGINAL_DST).
  case redirect = "REDIRECT"
  /// Transparent proxying: packets are marked and delivered unchanged; needs policy routing.
  case tproxy = "TPROXY"
}

/// Which inbound ports are captured (`-b`).
package enum InboundPortSelection: Sendable, Hashable {
  /// `""`: no inbound capture.
  case none
  /// `*`: every port except the local exclude list (`-d`).
  case all
  case ports([UInt16])
}

/// Which outbound destinations are captured (`-i`).
package enum OutboundRangeSelection: Sendable, Hashable {
  /// `""`: no outbound capture.
  case none
  /// `*`: every destination.
  case all
  case ranges([CIDR])
}

/// The complete, validated input of the rule builder: istio-iptables' flags with everything resolved
/// (group names to gids, resolv.conf to servers, the families the kernel supports).
package struct CaptureConfig: Sendable, Hashable {
  package var proxyPort: UInt16 = 15001
  package var inboundCapturePort: UInt16 = 15006
  package var inboundTunnelPort: UInt16 = 15008
  package var proxyUIDs: [UInt32] = [1337]
  package var proxyGIDs: [UInt32] = [1337]
  package var inboundMode: InboundInterceptionMode = .redirect
  package var inboundPorts: InboundPortSelection = .none
  package var inboundExcludePorts: [UInt16] = []
  package var excludeInterfaces: [String] = []
  package var outboundRanges: OutboundRangeSelection = .none
  package var outboundExcludeRanges: [CIDR] = []
  package var outboundIncludePorts: [UInt16] = []
  package var outboundExcludePorts: [UInt16] = []
  package var kubeVirtInterfaces: [String] = []
  package var tproxyMark: UInt32 = 1337
  package var tproxyRouteTable: UInt32 = 133
  package var redirectDNS = false
  package var captureAllDNS = false
  /// Upstream DNS servers read from resolv.conf; used when DNS is redirected but not all of it.
  package var dnsServers: [CIDR] = []
  package var dnsCapturePort: UInt16 = 15053
  package var dropInvalid = false
  /// Owner groups whose traffic is captured (`*` when nil): `ISTIO_OUTBOUND_OWNER_GROUPS`.
  package var ownerGroupsInclude: [UInt32]? = nil
  /// Owner groups whose traffic is never captured: `ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE`.
  package var ownerGroupsExclude: [UInt32] = []
  package var ipv4LoopbackRange: CIDR = .ipv4Loopback
  /// Families to install rules for; IPv6 only when asked for and supported by the kernel.
  package var families: [IPFamily] = [.v4]

  package init() {}

  package var ipv6: Bool { families.contains(.v6) }

  package func loopback(_ family: IPFamily) -> CIDR { family == .v4 ? ipv4LoopbackRange : .ipv6Loopback }

  /// Whether any outbound include range is a loopback range (then local traffic by other users is captured).
  package var includesLoopbackRange: Bool {
    if case .ranges(let ranges) = outboundRanges { return ranges.contains(where: \.isLoopback) }
    return false
  }

  /// The routing this configuration needs, if any: in TPROXY mode the policy routing (and `::6` on `lo`
  /// with IPv6); in REDIRECT mode with IPv6 only `::6` on `lo`, the source the proxy's inbound passthrough
  /// binds (`InboundPassthroughCluster`'s `::6`) — without it IPv6 inbound passthrough cannot connect.
  package var tproxyRouting: TProxyRouting? {
    guard inboundPorts != .none else { return nil }
    switch inboundMode {
    case .tproxy:
      return TProxyRouting(
        mark: tproxyMark, table: tproxyRouteTable, families: families, ipv6PassthroughAddress: ipv6)
    case .redirect:
      guard ipv6 else { return nil }
      return TProxyRouting(
        mark: tproxyMark, table: tproxyRouteTable, families: [.v6], ipv6PassthroughAddress: true,
        policyRoutes: false)
    }
  }
}
