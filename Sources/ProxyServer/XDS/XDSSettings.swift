package import EnvoyAPI
package import ProxyCore

/// What the bootstrap's `dynamic_resources` asks for: an ADS stream (which variant, to which server, with
/// which node) and where CDS and LDS come from. Validated once, with errors that name the field.
package struct XDSSettings: Sendable {
  package enum API: Sendable, Equatable { case delta, stateOfTheWorld }

  package enum Server: Sendable, Equatable {
    case unix(path: String)
    case tcp(host: String, port: Int)
  }

  package struct ADS: Sendable {
    package var api: API
    package var server: Server
    /// The `xds-grpc`-style static cluster the stream goes to.
    package var clusterName: String
    package var setNodeOnFirstMessageOnly: Bool
    package var node: Envoy_Config_Core_V3_Node
  }

  /// Where one resource type comes from.
  package enum Source: Sendable, Equatable {
    /// Over the ADS stream; nil timeout = wait for the first update forever (`initial_fetch_timeout: 0s`).
    case ads(initialFetchTimeout: Duration?)
    /// A file holding a DiscoveryResponse, re-read when it changes.
    case file(path: String)
  }

  package var ads: ADS?
  package var clusters: Source?
  package var listeners: Source?

  /// Nothing dynamic: static resources only.
  package init() {}

  package init(
    _ bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap, staticClusters: [Cluster], options: ProxyOptions
  ) throws(ProxyConfigError) {
    guard bootstrap.hasDynamicResources else { return }
    let dynamic = bootstrap.dynamicResources
    let root = "dynamic_resources"
    if dynamic.hasAdsConfig {
      let path = root + ".ads_config"
      let config = dynamic.adsConfig
      let api: API
      switch config.apiType {
      case .grpc, .aggregatedGrpc: api = .stateOfTheWorld
      case .deltaGrpc, .aggregatedDeltaGrpc: api = .delta
      default:
        throw ProxyConfigError(path + ".api_type", "must be GRPC or DELTA_GRPC, not \(config.apiType)")
      }
      guard config.grpcServices.count == 1 else {
        throw ProxyConfigError(path + ".grpc_services", "needs exactly one gRPC service")
      }
      guard case .envoyGrpc(let grpc)? = config.grpcServices[0].targetSpecifier else {
        throw ProxyConfigError(
          path + ".grpc_services[0]", "only envoy_grpc (a static cluster) is supported, not google_grpc")
      }
      guard let cluster = staticClusters.first(where: { $0.name == grpc.clusterName }) else {
        throw ProxyConfigError(
          path + ".grpc_services[0].envoy_grpc.cluster_name",
          "'\(grpc.clusterName)' is not a static cluster")
      }
      let server: Server
      switch cluster.endpoints.first?.address {
      case .pipe(let socket)?: server = .unix(path: socket)
      case .socket(let address)?:
        guard let host = address.ipAddress, let port = address.port else {
          throw ProxyConfigError(
            path + ".grpc_services[0].envoy_grpc.cluster_name",
            "cluster '\(cluster.name)' has no usable address")
        }
        server = .tcp(host: host, port: port)
      case .dns(let host, let port)?: server = .tcp(host: host, port: port)
      case nil:
        throw ProxyConfigError(
          path + ".grpc_services[0].envoy_grpc.cluster_name", "cluster '\(cluster.name)' has no endpoint")
      }
      var node = bootstrap.node
      if let id = options.serviceNode { node.id = id }
      if let name = options.serviceCluster { node.cluster = name }
      node.userAgentName = "envoy"
      ads = ADS(
        api: api, server: server, clusterName: cluster.name,
        setNodeOnFirstMessageOnly: config.setNodeOnFirstMessageOnly, node: node)
    }
    if dynamic.hasCdsConfig {
      clusters = try Self.source(dynamic.cdsConfig, path: root + ".cds_config", hasADS: ads != nil)
    }
    if dynamic.hasLdsConfig {
      listeners = try Self.source(dynamic.ldsConfig, path: root + ".lds_config", hasADS: ads != nil)
    }
  }

  private static func source(
    _ config: Envoy_Config_Core_V3_ConfigSource, path: String, hasADS: Bool
  ) throws(ProxyConfigError) -> Source {
    switch config.configSourceSpecifier {
    case .ads?:
      guard hasADS else { throw ProxyConfigError(path + ".ads", "needs dynamic_resources.ads_config") }
      var timeout: Duration? = .seconds(15)
      if config.hasInitialFetchTimeout {
        let amount = try DurationConversion.timeAmount(
          config.initialFetchTimeout, path: path + ".initial_fetch_timeout")
        timeout = amount == .zero ? nil : .nanoseconds(amount.nanoseconds)
      }
      return .ads(initialFetchTimeout: timeout)
    case .pathConfigSource(let file)?:
      guard !file.path.isEmpty else { throw ProxyConfigError(path + ".path_config_source.path", "is empty") }
      return .file(path: file.path)
    case .path(let file)?:
      guard !file.isEmpty else { throw ProxyConfigError(path + ".path", "is empty") }
      return .file(path: file)
    case .apiConfigSource?:
      throw ProxyConfigError(
        path + ".api_config_source", "a separate xDS stream per type is not supported; use ads: {}")
    case .self_p?:
      throw ProxyConfigError(path + ".self", "self config source is not supported here; use ads: {}")
    case nil:
      throw ProxyConfigError(path, "needs ads or path_config_source")
    }
  }
}
