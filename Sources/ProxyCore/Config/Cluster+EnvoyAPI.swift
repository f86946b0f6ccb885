package import EnvoyAPI
package import NIOCore
internal import SwiftProtobuf

extension Cluster {
  /// Validates a cluster resource. Errors carry the field path inside the cluster; accepted but unused
  /// features (health checks, outlier detection) are reported in `warnings`.
  package init(
    _ proto: Envoy_Config_Cluster_V3_Cluster, addedViaAPI: Bool = false, warnings: inout [ProxyConfigWarning]
  ) throws(ProxyConfigError) {
    guard !proto.name.isEmpty else { throw ProxyConfigError("name", "cluster has no name") }
    self.init(name: proto.name)
    self.addedViaAPI = addedViaAPI
    statName = String(
      (proto.altStatName.isEmpty ? proto.name : proto.altStatName).map { $0 == ":" ? "_" : $0 })
    switch proto.clusterDiscoveryType {
    case .type(let type)?:
      switch type {
      case .static: discovery = .static
      case .strictDns: discovery = .strictDNS
      case .logicalDns: discovery = .logicalDNS
      case .originalDst: discovery = .originalDestination
      case .eds:
        let service = proto.edsClusterConfig.serviceName
        discovery = .eds(serviceName: service.isEmpty ? proto.name : service)
      default: throw ProxyConfigError("type", "unknown cluster type \(type)")
      }
    case .clusterType(let custom)?:
      throw ProxyConfigError("cluster_type", "custom cluster type \"\(custom.name)\" is not supported")
    case nil:
      discovery = .static
    }
    if proto.hasConnectTimeout {
      connectTimeout = try DurationConversion.timeAmount(proto.connectTimeout, path: "connect_timeout")
      guard connectTimeout > .zero else {
        throw ProxyConfigError("connect_timeout", "must be greater than 0")
      }
    }
    if proto.hasPerConnectionBufferLimitBytes {
      perConnectionBufferLimitBytes = Int(proto.perConnectionBufferLimitBytes.value)
    }
    loadBalancing = try Self.loadBalancing(proto, discovery: discovery)
    if proto.hasCircuitBreakers {
      for (i, thresholds) in proto.circuitBreakers.thresholds.enumerated() {
        var converted = Thresholds()
        if thresholds.hasMaxConnections { converted.maxConnections = Int(thresholds.maxConnections.value) }
        if thresholds.hasMaxPendingRequests {
          converted.maxPendingRequests = Int(thresholds.maxPendingRequests.value)
        }
        if thresholds.hasMaxRequests { converted.maxRequests = Int(thresholds.maxRequests.value) }
        if thresholds.hasMaxRetries { converted.maxRetries = Int(thresholds.maxRetries.value) }
        switch thresholds.priority {
        case .high: highThresholds = converted
        case .default: defaultThresholds = converted
        default:
          throw ProxyConfigError("circuit_breakers.thresholds[\(i)].priority", "unknown routing priority")
        }
      }
    }
    if proto.hasUpstreamBindConfig {
      let bind = proto.upstreamBindConfig
      if bind.hasSourceAddress {
        sourceAddresses.append(
          try Self.sourceAddress(bind.sourceAddress, path: "upstream_bind_config.source_address"))
      }
      for (i, extra) in bind.extraSourceAddresses.enumerated() {
        sourceAddresses.append(
          try Self.sourceAddress(
            extra.address, path: "upstream_bind_config.extra_source_addresses[\(i)].address"))
      }
    }
    if proto.hasDnsRefreshRate {
      dnsRefreshRate = try DurationConversion.timeAmount(proto.dnsRefreshRate, path: "dns_refresh_rate")
      guard dnsRefreshRate >= .milliseconds(1) else {
        throw ProxyConfigError("dns_refresh_rate", "must be at least 1ms")
      }
    }
    switch proto.dnsLookupFamily {
    case .v4Only: dnsLookupFamily = .v4Only
    case .v6Only: dnsLookupFamily = .v6Only
    case .v4Preferred: dnsLookupFamily = .v4Preferred
    case .all: dnsLookupFamily = .all
    default: dnsLookupFamily = .auto
    }
    if proto.hasTransportSocket || !proto.transportSocketMatches.isEmpty {
      let typeURL: String =
        if case .typedConfig(let any)? = proto.transportSocket.configType { any.typeURL } else { "" }
      if proto.hasTransportSocket, !typeURL.hasSuffix("RawBuffer"),
        !proto.transportSocket.name.hasSuffix("raw_buffer")
      {
        throw ProxyConfigError(
          "transport_socket", "transport socket \"\(proto.transportSocket.name)\" is not supported yet (TLS)")
      }
      if !proto.transportSocketMatches.isEmpty {
        warnings.append(
          ProxyConfigWarning(
            "transport_socket_matches", "not applied yet: upstream connections use plain TCP"))
      }
    }
    if !proto.healthChecks.isEmpty {
      warnings.append(ProxyConfigWarning("health_checks", "active health checking is not supported; ignored"))
    }
    if proto.hasOutlierDetection {
      warnings.append(ProxyConfigWarning("outlier_detection", "outlier detection is not supported; ignored"))
    }
    if proto.hasCommonLbConfig {
      switch proto.commonLbConfig.localityConfigSpecifier {
      case .localityWeightedLbConfig?:
        warnings.append(
          ProxyConfigWarning(
            "common_lb_config.locality_weighted_lb_config",
            "locality weights are not applied yet: hosts of the top priority are balanced as one set"))
      case .zoneAwareLbConfig?:
        // Envoy routes by zone only with cluster_manager.local_cluster_name, which Istio does not set:
        // without it Envoy balances across zones too, as here.
        break
      case nil:
        break
      }
    }
    for (i, filter) in proto.filters.enumerated() {
      let path = "filters[\(i)]"
      let typeURL = filter.hasTypedConfig ? ExtensionTypes.effectiveTypeURL(filter.typedConfig) : ""
      guard ExtensionTypes.isIstioExtension(typeURL) || (typeURL.isEmpty && filter.name.hasPrefix("istio."))
      else {
        throw ProxyConfigError(
          path + ".typed_config",
          "upstream network filter \"\(filter.name)\" (\(ExtensionTypes.messageName(typeURL))) is not supported"
        )
      }
      let name = typeURL.isEmpty ? filter.name : ExtensionTypes.messageName(typeURL)
      warnings.append(
        ProxyConfigWarning(
          path, "Istio upstream filter \(name) accepted and skipped (no metadata exchange yet)"))
    }
    let httpOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    if let any = proto.typedExtensionProtocolOptions[httpOptionsKey] {
      // Decoded here, once: the data path never touches the Any, and a bad value fails the load.
      let path = "typed_extension_protocol_options[\(httpOptionsKey)]"
      guard let options = try? Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions(unpackingAny: any)
      else {
        throw ProxyConfigError(path, "is not a valid \(httpOptionsKey)")
      }
      if options.hasCommonHTTPProtocolOptions && options.commonHTTPProtocolOptions.hasIdleTimeout {
        let idle = try DurationConversion.timeAmount(
          options.commonHTTPProtocolOptions.idleTimeout,
          path: path + ".common_http_protocol_options.idle_timeout")
        upstreamHTTPIdleTimeout = idle == .zero ? nil : idle
      }
    }
    if proto.hasLoadAssignment {
      endpoints = try Self.endpoints(proto.loadAssignment, discovery: discovery, path: "load_assignment")
    }
    switch discovery {
    case .strictDNS, .logicalDNS:
      guard !endpoints.isEmpty else {
        throw ProxyConfigError(
          "load_assignment",
          "a \(discovery == .strictDNS ? "STRICT_DNS" : "LOGICAL_DNS") cluster needs endpoints")
      }
      if discovery == .logicalDNS, endpoints.count != 1 {
        throw ProxyConfigError("load_assignment", "a LOGICAL_DNS cluster takes exactly one endpoint")
      }
    case .originalDestination:
      guard endpoints.isEmpty else {
        throw ProxyConfigError("load_assignment", "an ORIGINAL_DST cluster takes no endpoints")
      }
    case .static, .eds:
      break
    }
  }

  private static func loadBalancing(
    _ proto: Envoy_Config_Cluster_V3_Cluster, discovery: Discovery
  ) throws(ProxyConfigError) -> LoadBalancingPolicy {
    if discovery == .originalDestination {
      guard proto.lbPolicy == .clusterProvided else {
        throw ProxyConfigError(
          "lb_policy", "an ORIGINAL_DST cluster needs lb_policy CLUSTER_PROVIDED, not \(proto.lbPolicy)")
      }
      return .clusterProvided
    }
    switch proto.lbPolicy {
    case .roundRobin: return .roundRobin
    case .random: return .random
    case .leastRequest:
      var choices = 2
      if case .leastRequestLbConfig(let config)? = proto.lbConfig, config.hasChoiceCount {
        guard config.choiceCount.value >= 2 else {
          throw ProxyConfigError("least_request_lb_config.choice_count", "must be at least 2")
        }
        choices = Int(config.choiceCount.value)
      }
      return .leastRequest(choiceCount: choices)
    case .clusterProvided:
      throw ProxyConfigError("lb_policy", "CLUSTER_PROVIDED is only valid for ORIGINAL_DST clusters")
    default:
      throw ProxyConfigError("lb_policy", "load balancing policy \(proto.lbPolicy) is not supported")
    }
  }

  private static func sourceAddress(
    _ socket: Envoy_Config_Core_V3_SocketAddress, path: String
  ) throws(ProxyConfigError) -> SocketAddress {
    var socket = socket
    if socket.portSpecifier == nil { socket.portValue = 0 }
    return try SocketAddress(socket, path: path)
  }

  package static func endpoints(
    _ assignment: Envoy_Config_Endpoint_V3_ClusterLoadAssignment, discovery: Discovery, path: String
  ) throws(ProxyConfigError) -> [Endpoint] {
    var out: [Endpoint] = []
    for (i, locality) in assignment.endpoints.enumerated() {
      for (j, lbEndpoint) in locality.lbEndpoints.enumerated() {
        let endpointPath = "\(path).endpoints[\(i)].lb_endpoints[\(j)]"
        guard case .endpoint(let endpoint)? = lbEndpoint.hostIdentifier else {
          throw ProxyConfigError(endpointPath, "needs an endpoint")
        }
        let address = try upstreamAddress(
          endpoint.hasAddress ? endpoint.address : nil, discovery: discovery,
          path: endpointPath + ".endpoint.address")
        var converted = Endpoint(address: address)
        if lbEndpoint.hasLoadBalancingWeight {
          guard lbEndpoint.loadBalancingWeight.value >= 1 else {
            throw ProxyConfigError(endpointPath + ".load_balancing_weight", "must be at least 1")
          }
          converted.weight = Int(lbEndpoint.loadBalancingWeight.value)
        }
        converted.priority = Int(locality.priority)
        converted.hostname = endpoint.hostname
        converted.region = locality.locality.region
        converted.zone = locality.locality.zone
        converted.subZone = locality.locality.subZone
        if locality.hasLoadBalancingWeight {
          guard locality.loadBalancingWeight.value >= 1 else {
            throw ProxyConfigError(
              "\(path).endpoints[\(i)].load_balancing_weight", "must be at least 1")
          }
          converted.localityWeight = Int(locality.loadBalancingWeight.value)
        }
        if lbEndpoint.hasMetadata {
          converted.metadata = Self.stringMetadata(lbEndpoint.metadata)
        }
        switch lbEndpoint.healthStatus {
        case .unhealthy, .draining, .timeout: converted.healthy = false
        default: converted.healthy = true
        }
        out.append(converted)
      }
    }
    return out
  }

  /// The string-valued fields of each filter's metadata.
  static func stringMetadata(_ metadata: Envoy_Config_Core_V3_Metadata) -> [String: [String: String]] {
    var out: [String: [String: String]] = [:]
    for (filter, fields) in metadata.filterMetadata {
      var strings: [String: String] = [:]
      for (key, value) in fields.fields {
        if case .stringValue(let text)? = value.kind { strings[key] = text }
      }
      if !strings.isEmpty { out[filter] = strings }
    }
    return out
  }

  private static func upstreamAddress(
    _ address: Envoy_Config_Core_V3_Address?, discovery: Discovery, path: String
  ) throws(ProxyConfigError) -> UpstreamAddress {
    switch address?.address {
    case .socketAddress(let socket)?:
      if discovery == .strictDNS || discovery == .logicalDNS {
        guard case .portValue(let port)? = socket.portSpecifier, port <= 65535 else {
          throw ProxyConfigError(path + ".socket_address.port_value", "needs a port_value")
        }
        guard !socket.address.isEmpty else {
          throw ProxyConfigError(path + ".socket_address.address", "is empty")
        }
        if let literal = try? SocketAddress(ipAddress: socket.address, port: Int(port)) {
          return .socket(literal)
        }
        return .dns(host: socket.address, port: Int(port))
      }
      return .socket(try SocketAddress(socket, path: path + ".socket_address"))
    case .pipe(let pipe)?:
      guard !pipe.path.isEmpty else { throw ProxyConfigError(path + ".pipe.path", "is empty") }
      guard pipe.path.utf8.count < 108 else {
        throw ProxyConfigError(
          path + ".pipe.path", "\"\(pipe.path)\" is longer than a Unix socket path may be")
      }
      return .pipe(path: pipe.path)
    case .envoyInternalAddress?:
      throw ProxyConfigError(path + ".envoy_internal_address", "internal addresses are not supported")
    case nil:
      throw ProxyConfigError(path, "needs a socket_address or pipe")
    }
  }
}
