package import SwiftProtobuf

/// The type URLs of the resource types the client knows by name, and the order in which subscriptions are
/// (re)sent: CDS, EDS, LDS, RDS (Istio's push order, "make before break"), then any other type.
package enum XDSTypeURL {
  package static let cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  package static let endpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
  package static let listener = "type.googleapis.com/envoy.config.listener.v3.Listener"
  package static let route = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
  package static let secret = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
  /// The wrapper a state-of-the-world response may put around each resource
  /// (client feature `xds.config.supports-resource-in-sotw`).
  package static let resourceWrapper = "type.googleapis.com/envoy.service.discovery.v3.Resource"

  /// Types whose state-of-the-world responses carry the complete set: a resource missing from a response
  /// is removed.
  package static let fullState: Set<String> = [cluster, listener]

  private static let rank: [String: Int] = [cluster: 0, endpoint: 1, listener: 2, route: 3]

  /// True when `lhs` is (re)sent before `rhs`: the four known types in push order, then the others by name.
  package static func precedes(_ lhs: String, _ rhs: String) -> Bool {
    let left = rank[lhs] ?? rank.count
    let right = rank[rhs] ?? rank.count
    return left != right ? left < right : lhs < rhs
  }
}

/// The interest in one resource type.
package enum XDSSubscription: Sendable, Hashable {
  /// Every resource of the type (CDS and LDS as Envoy subscribes them).
  case wildcard
  /// These resources only; an empty set is no interest at all (unsubscribe everything of the type).
  case names(Set<String>)
}

/// One resource of an update, named and versioned.
package struct XDSResource: Sendable, Equatable {
  package var name: String
  /// The resource's version: delta `Resource.version`; state of the world: the `Resource` wrapper's version
  /// when the response used one, else the response's `version_info`.
  package var version: String
  /// The resource itself (unwrapped from `envoy.service.discovery.v3.Resource` when it came wrapped).
  package var resource: Google_Protobuf_Any

  package init(name: String, version: String, resource: Google_Protobuf_Any) {
    self.name = name
    self.version = version
    self.resource = resource
  }
}

/// One validated response, as the subscriber sees it; the same shape for both protocol variants.
package struct XDSUpdate: Sendable, Equatable {
  package var typeURL: String
  /// State of the world: `version_info`; delta: `system_version_info`.
  package var versionInfo: String
  /// State of the world: the complete set sent (minus resources not subscribed); delta: the resources added
  /// or changed.
  package var resources: [XDSResource]
  /// Names removed: delta `removed_resources`; state of the world, for the full-state types (CDS, LDS): the
  /// names present in the last accepted update and absent from this one. Other state-of-the-world types
  /// have no implicit removal.
  package var removed: [String]
  package var stateOfTheWorld: Bool

  package init(
    typeURL: String, versionInfo: String, resources: [XDSResource], removed: [String], stateOfTheWorld: Bool
  ) {
    self.typeURL = typeURL
    self.versionInfo = versionInfo
    self.resources = resources
    self.removed = removed
    self.stateOfTheWorld = stateOfTheWorld
  }
}

/// What the client hands validated updates to (the proxy's config builder).
package protocol ADSSubscriber: Sendable {
  /// Called serially, one update at a time, in arrival order. Returns nil to ACK, or a message to NACK (it
  /// names the resource and the field path; it goes into `error_detail` verbatim). Subscriptions changed
  /// from here (``ADSClient/setSubscription(_:_:)``) are sent before this update's ACK or NACK.
  func apply(_ update: XDSUpdate) async -> String?
  /// The stream to the control plane connected (its response headers arrived) or was lost.
  func connectionStateChanged(connected: Bool) async
}
