package import EnvoyAPI
internal import SwiftProtobuf

/// The configuration istiod would push to a sidecar in an empty mesh, as static resources, for running
/// with no control plane: the outbound capture listener on 15001 (`use_original_dst`, passthrough to the
/// original destination, a blackhole chain for connections aimed at 15001 itself) and the inbound capture
/// listener on 15006 (`original_dst` listener filter, passthrough to the application from 127.0.0.6), plus
/// the PassthroughCluster, InboundPassthroughCluster and BlackHoleCluster they use. Names, stat prefixes and
/// chain names are Istio's, so dashboards and `istioctl proxy-config` read the same.
extension BootstrapGenerator {
  package static let outboundCapturePort = 15001
  package static let inboundCapturePort = 15006

  /// IPv6 listeners are added when the pod has an IPv6 address.
  var hasIPv6: Bool { pod.instanceIPs.contains { $0.contains(":") } }

  var interceptsWithTPROXY: Bool {
    pod.environment["ISTIO_META_INTERCEPTION_MODE"] == "TPROXY"
  }

  package func staticSidecarListeners() throws -> [Envoy_Config_Listener_V3_Listener] {
    var outbound = Envoy_Config_Listener_V3_Listener()
    outbound.name = "virtualOutbound"
    outbound.address = Self.socketAddress("0.0.0.0", Self.outboundCapturePort)
    outbound.useOriginalDst = .init(true)
    outbound.trafficDirection = .outbound
    if interceptsWithTPROXY { outbound.transparent = .init(true) }
    var blackhole = Envoy_Config_Listener_V3_FilterChain()
    blackhole.name = "virtualOutbound-blackhole"
    blackhole.filterChainMatch.destinationPort = .init(UInt32(Self.outboundCapturePort))
    blackhole.filters = [try Self.tcpProxy(statPrefix: "BlackHoleCluster", cluster: "BlackHoleCluster")]
    var catchAll = Envoy_Config_Listener_V3_FilterChain()
    catchAll.name = "virtualOutbound-catchall-tcp"
    catchAll.filters = [try Self.tcpProxy(statPrefix: "PassthroughCluster", cluster: "PassthroughCluster")]
    outbound.filterChains = [blackhole, catchAll]

    var inbound = Envoy_Config_Listener_V3_Listener()
    inbound.name = "virtualInbound"
    inbound.address = Self.socketAddress("0.0.0.0", Self.inboundCapturePort)
    inbound.trafficDirection = .inbound
    if interceptsWithTPROXY { inbound.transparent = .init(true) }
    var originalDst = Envoy_Config_Listener_V3_ListenerFilter()
    originalDst.name = "envoy.filters.listener.original_dst"
    originalDst.typedConfig = try Google_Protobuf_Any(
      message: Envoy_Extensions_Filters_Listener_OriginalDst_V3_OriginalDst())
    inbound.listenerFilters = [originalDst]
    var inboundBlackhole = Envoy_Config_Listener_V3_FilterChain()
    inboundBlackhole.name = "virtualInbound-blackhole"
    inboundBlackhole.filterChainMatch.destinationPort = .init(UInt32(Self.inboundCapturePort))
    inboundBlackhole.filters = [
      try Self.tcpProxy(statPrefix: "BlackHoleCluster", cluster: "BlackHoleCluster")
    ]
    var passthrough = Envoy_Config_Listener_V3_FilterChain()
    passthrough.name = "virtualInbound"
    passthrough.filters = [
      try Self.tcpProxy(statPrefix: "InboundPassthroughCluster", cluster: "InboundPassthroughCluster")
    ]
    inbound.filterChains = [inboundBlackhole, passthrough]

    guard hasIPv6 else { return [outbound, inbound] }
    // The v4 listeners bind 0.0.0.0; their IPv6 twins bind :: (v6-only), as Istio's dual-stack listeners.
    var outbound6 = outbound
    outbound6.name = "virtualOutbound6"
    outbound6.address = Self.socketAddress("::", Self.outboundCapturePort)
    var inbound6 = inbound
    inbound6.name = "virtualInbound6"
    inbound6.address = Self.socketAddress("::", Self.inboundCapturePort)
    return [outbound, inbound, outbound6, inbound6]
  }

  package func staticSidecarClusters() -> [Envoy_Config_Cluster_V3_Cluster] {
    var passthrough = Envoy_Config_Cluster_V3_Cluster()
    passthrough.name = "PassthroughCluster"
    passthrough.type = .originalDst
    passthrough.lbPolicy = .clusterProvided
    passthrough.connectTimeout = .init(seconds: 10)
    var inbound = passthrough
    inbound.name = "InboundPassthroughCluster"
    var source = Envoy_Config_Core_V3_SocketAddress()
    source.address = "127.0.0.6"
    source.portValue = 0
    inbound.upstreamBindConfig.sourceAddress = source
    if hasIPv6 {
      var extra = Envoy_Config_Core_V3_ExtraSourceAddress()
      extra.address.address = "::6"
      extra.address.portValue = 0
      inbound.upstreamBindConfig.extraSourceAddresses = [extra]
    }
    var blackhole = Envoy_Config_Cluster_V3_Cluster()
    blackhole.name = "BlackHoleCluster"
    blackhole.type = .static
    blackhole.connectTimeout = .init(seconds: 10)
    return [blackhole, passthrough, inbound]
  }

  static func tcpProxy(statPrefix: String, cluster: String) throws -> Envoy_Config_Listener_V3_Filter {
    var proxy = Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy()
    proxy.statPrefix = statPrefix
    proxy.cluster = cluster
    var filter = Envoy_Config_Listener_V3_Filter()
    filter.name = "envoy.filters.network.tcp_proxy"
    filter.typedConfig = try Google_Protobuf_Any(message: proxy)
    return filter
  }
}
