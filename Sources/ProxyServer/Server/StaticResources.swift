package import EnvoyAPI
internal import Foundation
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
    for (i, proto) in Self.namingListeners(bootstrap).staticResources.listeners.enumerated() {
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

extension StaticResources {
  /// The bootstrap with a name for every static listener that has none: a random UUID, as Envoy gives
  /// one, unique among the listeners. Only static listeners are named so; an LDS resource without a name
  /// stays an error (`Listener(_:filters:context:warnings:)` rejects it).
  package static func namingListeners(
    _ bootstrap: Envoy_Config_Bootstrap_V3_Bootstrap
  ) -> Envoy_Config_Bootstrap_V3_Bootstrap {
    let listeners = bootstrap.staticResources.listeners
    guard listeners.contains(where: \.name.isEmpty) else { return bootstrap }
    var taken = Set(listeners.map(\.name))
    var named = bootstrap
    for i in named.staticResources.listeners.indices where named.staticResources.listeners[i].name.isEmpty {
      var name = UUID().uuidString.lowercased()
      while !taken.insert(name).inserted { name = UUID().uuidString.lowercased() }
      named.staticResources.listeners[i].name = name
    }
    return named
  }
}
