internal import EnvoyAPI
package import Foundation
package import Logging
package import ProxyCore
package import ProxyHTTP
package import SwiftProtobuf
internal import Synchronization

/// The proxy's side of xDS: validates each update of clusters, endpoints, listeners and route tables (all of
/// it, before anything changes: a bad resource rejects the update and the last good config keeps serving),
/// applies it to the cluster manager, the listener manager and the RDS route tables, and says which EDS and
/// RDS names are needed next. Keeps what was accepted (version, resource, time) for `/config_dump`.
/// Updates are applied one at a time, in arrival order.
package final class DynamicResources: Sendable {
  /// An accepted resource, as `/config_dump` shows it.
  package struct Accepted: Sendable {
    package var version: String
    package var resource: Google_Protobuf_Any
    package var lastUpdated: Date
    /// The resource's comparison key (`ResourceUpdate.Resource.key`).
    var key: [UInt8]
  }

  private struct State {
    var accepted: [ResourceType: [String: Accepted]] = [:]
    /// The last accepted `version_info` per type.
    var versionInfo: [ResourceType: String] = [:]
    /// Types that have had their first update (or their initial fetch timed out).
    var initialized: Set<ResourceType> = []
    var warned: Set<String> = []
  }

  private let state = Mutex(State())
  private let updates = AsyncSerializer()
  private let clusters: ClusterManager
  private let listeners: ListenerManager
  private let routes: RouteConfigRegistry
  private let filters: NetworkFilterRegistry
  private let buildContext: FilterBuildContext
  private let staticClusterNames: Set<String>
  private let staticListenerNames: Set<String>
  private let drainTime: Duration
  private let stats: StatsStore
  private let logger: Logger

  package init(
    clusters: ClusterManager, listeners: ListenerManager, routes: RouteConfigRegistry,
    filters: NetworkFilterRegistry, buildContext: FilterBuildContext, staticClusterNames: Set<String>,
    staticListenerNames: Set<String>, drainTime: Duration, stats: StatsStore, logger: Logger
  ) {
    self.clusters = clusters
    self.listeners = listeners
    self.routes = routes
    self.filters = filters
    self.buildContext = buildContext
    self.staticClusterNames = staticClusterNames
    self.staticListenerNames = staticListenerNames
    self.drainTime = drainTime
    self.stats = stats
    self.logger = logger
  }

  /// The EDS service names the clusters need.
  package var neededEndpointNames: Set<String> { clusters.edsServiceNames }

  /// The RDS route table names the listeners (active and warming) need.
  package var neededRouteNames: Set<String> {
    var names = Set<String>()
    for listener in listeners.listeners + listeners.warmingListeners {
      for chain in listener.allChains {
        if let name = (chain.terminal as? HTTPConnectionManagerFilter)?.config.rdsRouteConfigName {
          names.insert(name)
        }
      }
    }
    return names
  }

  /// Whether every HCM of `listener` has its route table (a listener warms until then).
  package static func isWarm(_ listener: ActiveListener) -> Bool {
    listener.allChains.allSatisfy { chain in
      (chain.terminal as? HTTPConnectionManagerFilter)?.routes.isReady ?? true
    }
  }

  /// Accepted resources of `type`, by name.
  package func accepted(_ type: ResourceType) -> [String: Accepted] {
    state.withLock { $0.accepted[type] ?? [:] }
  }

  /// The last accepted `version_info` of `type`.
  package func versionInfo(_ type: ResourceType) -> String { state.withLock { $0.versionInfo[type] ?? "" } }

  package func isInitialized(_ type: ResourceType) -> Bool {
    state.withLock { $0.initialized.contains(type) }
  }

  /// Marks `type` initialized without an update (its initial fetch timed out): warming clusters or
  /// listeners go active with what they have.
  package func initialFetchTimedOut(_ type: ResourceType) async {
    let first = state.withLock { $0.initialized.insert(type).inserted }
    guard first else { return }
    stats.counter(type.statPrefix + ".init_fetch_timeout").inc()
    logger.warning(
      "initial fetch timed out; going on without it", metadata: ["proxy.xds.type": "\(type.shortName)"])
    switch type {
    case .endpoint: _ = clusters.activateWarming()
    case .route: await listeners.activateWarmListeners(drainTime: drainTime, force: true)
    case .cluster, .listener: break
    }
  }

  /// Validates and applies `update`. Returns nil when it was accepted, or the rejection (every bad
  /// resource with its field path) to send back as a NACK; a rejected update changes nothing.
  package func apply(_ update: ResourceUpdate) async -> String? {
    await updates.run {
      let prefix = update.type.statPrefix
      stats.counter(prefix + ".update_attempt").inc()
      let result: String?
      switch update.type {
      case .cluster: result = await applyClusters(update)
      case .endpoint: result = applyEndpoints(update)
      case .listener: result = await applyListeners(update)
      case .route: result = await applyRoutes(update)
      }
      if let result {
        stats.counter(prefix + ".update_rejected").inc()
        logger.warning(
          "xDS update rejected; keeping the last good config",
          metadata: [
            "proxy.xds.type": "\(update.type.shortName)", "proxy.xds.version": "\(update.versionInfo)",
            "error": "\(result)",
          ])
        return result
      }
      stats.counter(prefix + ".update_success").inc()
      stats.gauge(prefix + ".update_time").set(UInt64(max(0, Date().timeIntervalSince1970 * 1000)))
      state.withLock { state in
        state.versionInfo[update.type] = update.versionInfo
        state.initialized.insert(update.type)
      }
      logger.debug(
        "xDS update applied",
        metadata: [
          "proxy.xds.type": "\(update.type.shortName)", "proxy.xds.version": "\(update.versionInfo)",
          "proxy.xds.resources": "\(update.resources.count)", "proxy.xds.removed": "\(update.removed.count)",
        ])
      return nil
    }
  }

  /// The update counters of `type` (for sources that fail before an update exists, such as an unreadable
  /// file).
  package func stats(_ type: ResourceType) -> UpdateCounters {
    UpdateCounters(
      attempt: stats.counter(type.statPrefix + ".update_attempt"),
      rejected: stats.counter(type.statPrefix + ".update_rejected"))
  }

  package struct UpdateCounters: Sendable {
    let attempt: Counter
    let rejectedCounter: Counter

    init(attempt: Counter, rejected: Counter) {
      self.attempt = attempt
      self.rejectedCounter = rejected
    }

    /// An attempt that failed.
    package func rejected() {
      attempt.inc()
      rejectedCounter.inc()
    }
  }

  // MARK: Per type

  /// Decodes every resource of the update as `M`, checking type URL and name; the errors name the resource.
  private func decode<M: SwiftProtobuf.Message>(
    _ update: ResourceUpdate, as type: M.Type, name: (M) -> String, errors: inout [String]
  ) -> [(ResourceUpdate.Resource, M)] {
    var out: [(ResourceUpdate.Resource, M)] = []
    var seen = Set<String>()
    for (i, resource) in update.resources.enumerated() {
      let label = resource.name.isEmpty ? "resources[\(i)]" : "'\(resource.name)'"
      guard resource.resource.typeURL == update.type.rawValue else {
        errors.append("\(label): type \(resource.resource.typeURL) is not \(update.type.rawValue)")
        continue
      }
      let message: M
      do {
        message = try M(serializedBytes: resource.resource.value)
      } catch {
        errors.append("\(label): cannot decode \(M.protoMessageName): \(error)")
        continue
      }
      let own = name(message)
      if !resource.name.isEmpty, own != resource.name {
        errors.append("\(label): the resource's own name is '\(own)'")
        continue
      }
      guard seen.insert(own).inserted else {
        errors.append("'\(own)': sent twice in one update")
        continue
      }
      var named = resource
      named.name = own
      out.append((named, message))
    }
    return out
  }

  /// What went away: the update's removals, and for a complete (state-of-the-world) CDS/LDS update every
  /// accepted name it does not list.
  private func removedNames(_ update: ResourceUpdate, kept: [String]) -> [String] {
    var removed = Set(update.removed)
    if update.stateOfTheWorld && update.type.isWildcard {
      let present = Set(kept)
      let known = state.withLock { Array(($0.accepted[update.type] ?? [:]).keys) }
      for name in known where !present.contains(name) { removed.insert(name) }
    }
    return removed.sorted()
  }

  /// Records accepted resources (`/config_dump`), skipping those whose bytes did not change.
  private func record(_ type: ResourceType, _ resources: [ResourceUpdate.Resource], removed: [String]) {
    let now = Date()
    state.withLock { state in
      // Taken out while it changes (uniquely referenced: no copy of every accepted resource per update).
      var table = state.accepted.removeValue(forKey: type) ?? [:]
      for name in removed { table[name] = nil }
      for resource in resources {
        if let known = table[resource.name], known.key == resource.key {
          table[resource.name]?.version = resource.version
          continue
        }
        table[resource.name] = Accepted(
          version: resource.version, resource: resource.resource, lastUpdated: now, key: resource.key)
      }
      state.accepted[type] = table
    }
  }

  /// Resources whose bytes equal what was accepted before (state-of-the-world resends everything).
  private func unchanged(_ type: ResourceType, _ resource: ResourceUpdate.Resource) -> Bool {
    state.withLock { $0.accepted[type]?[resource.name]?.key == resource.key }
  }

  private func warn(_ warnings: [ProxyConfigWarning], in label: String) {
    let fresh = state.withLock { state -> [String] in
      var out: [String] = []
      for warning in warnings {
        let text = "\(label).\(warning)"
        guard state.warned.count < 10_000, state.warned.insert(warning.description).inserted else { continue }
        out.append(text)
      }
      return out
    }
    for text in fresh { logger.warning("\(text)") }
  }

  private func applyClusters(_ update: ResourceUpdate) async -> String? {
    var errors: [String] = []
    let decoded = decode(update, as: Envoy_Config_Cluster_V3_Cluster.self, name: \.name, errors: &errors)
    var models: [Cluster] = []
    for (resource, proto) in decoded {
      if staticClusterNames.contains(proto.name) {
        errors.append(
          "clusters['\(proto.name)']: a static cluster of that name exists; CDS cannot replace it")
        continue
      }
      if unchanged(.cluster, resource) { continue }
      var warnings: [ProxyConfigWarning] = []
      do {
        models.append(try Cluster(proto, addedViaAPI: true, warnings: &warnings))
        warn(warnings, in: "clusters['\(proto.name)']")
      } catch {
        errors.append(error.prefixed("clusters['\(proto.name)']").description)
      }
    }
    if !errors.isEmpty { return errors.joined(separator: "; ") }
    let removed = removedNames(update, kept: decoded.map(\.0.name)).filter {
      !staticClusterNames.contains($0)
    }
    let warming = await clusters.apply(models, removed: removed)
    record(.cluster, decoded.map(\.0), removed: removed)
    clusters.pruneAssignments(keeping: clusters.edsServiceNames)
    if !models.isEmpty || !removed.isEmpty {
      logger.info(
        "clusters updated",
        metadata: [
          "proxy.xds.version": "\(update.versionInfo)", "proxy.xds.changed": "\(models.count)",
          "proxy.xds.removed": "\(removed.count)", "proxy.xds.warming": "\(warming.count)",
        ])
    }
    return nil
  }

  private func applyEndpoints(_ update: ResourceUpdate) -> String? {
    var errors: [String] = []
    let decoded = decode(
      update, as: Envoy_Config_Endpoint_V3_ClusterLoadAssignment.self, name: \.clusterName, errors: &errors)
    var assignments: [(String, [Cluster.Endpoint])] = []
    for (resource, proto) in decoded {
      if unchanged(.endpoint, resource), isInitialized(.endpoint) {
        // Unchanged, but a warming cluster of this service may be waiting for it (Envoy warms on receipt).
        if clusters.isWarming(service: proto.clusterName) {
          if let endpoints = try? Cluster.endpoints(
            proto, discovery: .eds(serviceName: proto.clusterName), path: "")
          {
            assignments.append((proto.clusterName, endpoints))
          }
        }
        continue
      }
      do {
        let endpoints = try Cluster.endpoints(
          proto, discovery: .eds(serviceName: proto.clusterName), path: "endpoints")
        assignments.append((proto.clusterName, endpoints))
      } catch {
        errors.append(error.prefixed("cluster_load_assignments['\(proto.clusterName)']").description)
      }
    }
    if !errors.isEmpty { return errors.joined(separator: "; ") }
    for (service, endpoints) in assignments { clusters.updateEndpoints(service: service, endpoints) }
    for name in update.removed { clusters.removeEndpoints(service: name) }
    record(.endpoint, decoded.map(\.0), removed: update.removed)
    return nil
  }

  private func applyListeners(_ update: ResourceUpdate) async -> String? {
    var errors: [String] = []
    let decoded = decode(update, as: Envoy_Config_Listener_V3_Listener.self, name: \.name, errors: &errors)
    var models: [Listener] = []
    for (resource, proto) in decoded {
      if staticListenerNames.contains(proto.name) {
        errors.append(
          "listeners['\(proto.name)']: a static listener of that name exists; LDS cannot replace it")
        continue
      }
      if unchanged(.listener, resource) { continue }
      var warnings: [ProxyConfigWarning] = []
      do {
        models.append(try Listener(proto, filters: filters, context: buildContext, warnings: &warnings))
        warnings += buildContext.warnings.take()
        warn(warnings, in: "listeners['\(proto.name)']")
      } catch {
        _ = buildContext.warnings.take()
        errors.append(error.prefixed("listeners['\(proto.name)']").description)
      }
    }
    if !errors.isEmpty { return errors.joined(separator: "; ") }
    let removed = removedNames(update, kept: decoded.map(\.0.name)).filter {
      !staticListenerNames.contains($0)
    }
    do {
      try await listeners.apply(models, removed: removed, drainTime: drainTime)
    } catch {
      // Listeners that could not be bound are reported; the rest of the update stands.
      record(
        .listener, decoded.map(\.0).filter { r in !error.failures.contains { $0.listener == r.name } },
        removed: removed)
      return error.description
    }
    record(.listener, decoded.map(\.0), removed: removed)
    routes.retain(only: neededRouteNames)
    if !models.isEmpty || !removed.isEmpty {
      logger.info(
        "listeners updated",
        metadata: [
          "proxy.xds.version": "\(update.versionInfo)", "proxy.xds.changed": "\(models.count)",
          "proxy.xds.removed": "\(removed.count)", "proxy.xds.warming": "\(listeners.warmingListeners.count)",
        ])
    }
    return nil
  }

  private func applyRoutes(_ update: ResourceUpdate) async -> String? {
    var errors: [String] = []
    let decoded = decode(
      update, as: Envoy_Config_Route_V3_RouteConfiguration.self, name: \.name, errors: &errors)
    var tables: [(RouteConfigProvider, RouteTable)] = []
    for (resource, proto) in decoded {
      guard let provider = routes.existing(named: proto.name) else { continue }  // not (any more) needed
      if unchanged(.route, resource), provider.isReady { continue }
      var notes = UnsupportedFieldNotes()
      do {
        let config = try RouteConfiguration(proto, notes: &notes)
        tables.append((provider, RouteTable(config, version: resource.version)))
        warn(notes.warnings, in: "route_configs['\(proto.name)']")
      } catch {
        errors.append(error.prefixed("route_configs['\(proto.name)']").description)
      }
    }
    if !errors.isEmpty { return errors.joined(separator: "; ") }
    for (provider, table) in tables { provider.publish(table) }
    record(.route, decoded.map(\.0), removed: update.removed)
    await listeners.activateWarmListeners(drainTime: drainTime)
    return nil
  }
}

extension ResourceType {
  /// Envoy's stat prefix for the subscription (`cluster_manager.cds`, `listener_manager.lds`, …).
  var statPrefix: String {
    switch self {
    case .cluster: "cluster_manager.cds"
    case .endpoint: "cluster_manager.eds"
    case .listener: "listener_manager.lds"
    case .route: "http.rds"
    }
  }
}
