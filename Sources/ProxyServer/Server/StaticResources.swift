package import EnvoyAPI
package import ProxyCore

/// The bootstrap's static listeners and clusters turned into ProxyCore models, with every error's path
/// rooted at the bootstrap (`static_resources.listeners[1].filter_chains[0]…`).
package struct StaticResources: Sendable {
  package var listeners: [Listener]
  package var clusters: [Cluster]
  package var warnings: [ProxyConfigWarning]

  package init(
    _ bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap, registry: NetworkFilterRegistry,
    context: FilterBuildContext
  ) throws(ProxyConfigError) {
    var warnings: [ProxyConfigWarning] = []
    var clusters: [Cluster] = []
    for (i, proto) in bootstrap.staticResources.clusters.enumerated() {
      let path = "static_resources.clusters[\(i)]"
      var local: [ProxyConfigWarning] = []
      do {
        clusters.append(try Cluster(proto, warnings: &local))
      } catch {
        throw error.prefixed(path)
      }
      warnings += local.map { ProxyConfigWarning(path + "." + $0.path, $0.message) }
    }
    var listeners: [Listener] = []
    for (i, proto) in bootstrap.staticResources.listeners.enumerated() {
      let path = "static_resources.listeners[\(i)]"
      var local: [ProxyConfigWarning] = []
      do {
        listeners.append(try Listener(proto, filters: registry, context: context, warnings: &local))
      } catch {
        throw error.prefixed(path)
      }
      warnings += local.map { ProxyConfigWarning(path + "." + $0.path, $0.message) }
    }
    // Two listeners may not bind the same address.
    var bound: [String: Int] = [:]
    for (i, listener) in listeners.enumerated() where listener.bindToPort && listener.address.port != 0 {
      let key = listener.address.envoyDescription
      if let other = bound[key] {
        throw ProxyConfigError(
          "static_resources.listeners[\(i)].address",
          "\(key) is already used by static_resources.listeners[\(other)] (\(listeners[other].name))")
      }
      bound[key] = i
    }
    self.listeners = listeners
    self.clusters = clusters
    self.warnings = warnings
  }
}
