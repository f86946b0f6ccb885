package import EnvoyAPI
internal import SwiftProtobuf

/// The first semantic pass over a decoded bootstrap, before any model is built: every static listener has
/// a unique name and a socket or pipe address, every static cluster a unique name, every cluster named by
/// a tcp_proxy or an inline route exists (unless CDS may still provide it), and a serving proxy has an
/// admin address. Errors carry the field path in the bootstrap.
package struct BootstrapValidator {
  package var source: String
  /// Serving needs the admin endpoint (pilot-agent polls it); validation does not.
  package var requireAdmin: Bool

  package init(source: String, requireAdmin: Bool) {
    self.source = source
    self.requireAdmin = requireAdmin
  }

  package func validate(_ bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap) throws(BootstrapError) {
    let resources = bootstrap.staticResources
    var clusterNames: Set<String> = []
    for (i, cluster) in resources.clusters.enumerated() {
      let path = "static_resources.clusters[\(i)]"
      guard !cluster.name.isEmpty else { throw fail(path, "cluster has no name") }
      guard clusterNames.insert(cluster.name).inserted else {
        throw fail(path, "duplicate cluster name \"\(cluster.name)\"")
      }
    }
    let cdsMayProvide = bootstrap.hasDynamicResources && bootstrap.dynamicResources.hasCdsConfig
    var listenerNames: Set<String> = []
    for (i, listener) in resources.listeners.enumerated() {
      let path = "static_resources.listeners[\(i)]"
      guard !listener.name.isEmpty else { throw fail(path, "listener has no name") }
      guard listenerNames.insert(listener.name).inserted else {
        throw fail(path, "duplicate listener name \"\(listener.name)\"")
      }
      try checkAddress(
        listener.hasAddress ? listener.address : nil, path: path + ".address", what: "listener")
      var chains = listener.filterChains.enumerated().map {
        ("\(path).filter_chains[\($0.offset)]", $0.element)
      }
      if listener.hasDefaultFilterChain {
        chains.append(("\(path).default_filter_chain", listener.defaultFilterChain))
      }
      for (chainPath, chain) in chains {
        for (k, filter) in chain.filters.enumerated() {
          guard case .typedConfig(let any)? = filter.configType else { continue }
          let configPath = "\(chainPath).filters[\(k)].typed_config"
          for (refPath, name) in try clusterReferences(in: any, path: configPath)
          where !clusterNames.contains(name) && !cdsMayProvide {
            throw fail(refPath, "unknown cluster \"\(name)\"")
          }
        }
      }
    }
    if requireAdmin || bootstrap.admin.hasAddress {
      try checkAddress(
        bootstrap.admin.hasAddress ? bootstrap.admin.address : nil, path: "admin.address", what: "admin")
    }
  }

  private func checkAddress(
    _ address: Envoy_Config_Core_V3_Address?, path: String, what: String
  ) throws(BootstrapError) {
    switch address?.address {
    case .socketAddress(let socket)?:
      guard !socket.address.isEmpty else {
        throw fail(path + ".socket_address.address", "\(what) address is empty")
      }
      if case .portValue(let port)? = socket.portSpecifier, port > 65535 {
        throw fail(path + ".socket_address.port_value", "\(port) is not a port number (0-65535)")
      }
    case .pipe(let pipe)?:
      guard !pipe.path.isEmpty else { throw fail(path + ".pipe.path", "\(what) pipe path is empty") }
    case .envoyInternalAddress?:
      return
    case nil:
      throw fail(path, "\(what) needs a socket_address or pipe address")
    }
  }

  /// Cluster names a network filter refers to, with their paths.
  private func clusterReferences(
    in any: Google_Protobuf_Any, path: String
  ) throws(BootstrapError) -> [(String, String)] {
    do {
      if any.isA(Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy.self) {
        let proxy = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: any)
        switch proxy.clusterSpecifier {
        case .cluster(let name)?: return [(path + ".cluster", name)]
        case .weightedClusters(let weighted)?:
          return weighted.clusters.enumerated().map {
            ("\(path).weighted_clusters.clusters[\($0.offset)].name", $0.element.name)
          }
        case nil: throw fail(path, "tcp_proxy needs cluster or weighted_clusters")
        }
      }
      if any.isA(Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.self) {
        let hcm = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(
          unpackingAny: any)
        guard case .routeConfig(let routes)? = hcm.routeSpecifier else { return [] }
        var refs: [(String, String)] = []
        for (v, host) in routes.virtualHosts.enumerated() {
          for (r, route) in host.routes.enumerated() {
            guard case .route(let action)? = route.action else { continue }
            let actionPath = "\(path).route_config.virtual_hosts[\(v)].routes[\(r)].route"
            switch action.clusterSpecifier {
            case .cluster(let name)?: refs.append((actionPath + ".cluster", name))
            case .weightedClusters(let weighted)?:
              for (w, cluster) in weighted.clusters.enumerated() {
                refs.append(("\(actionPath).weighted_clusters.clusters[\(w)].name", cluster.name))
              }
            default: break
            }
          }
        }
        return refs
      }
    } catch let error as BootstrapError {
      throw error
    } catch {
      throw fail(path, "cannot decode \(any.typeURL) (\(error))")
    }
    return []
  }

  private func fail(_ path: String, _ message: String) -> BootstrapError {
    BootstrapError(code: .invalidConfig, source: source, path: path, message: message)
  }
}
