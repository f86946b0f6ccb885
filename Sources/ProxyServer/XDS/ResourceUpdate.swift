internal import ProxyCore
package import SwiftProtobuf

/// The four resource types the proxy takes by xDS, by type URL.
package enum ResourceType: String, Sendable, CaseIterable, Comparable {
  case cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
  case endpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
  case listener = "type.googleapis.com/envoy.config.listener.v3.Listener"
  case route = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

  /// Envoy's order: clusters, their endpoints, listeners, their routes.
  package static func < (lhs: ResourceType, rhs: ResourceType) -> Bool { lhs.rank < rhs.rank }

  private var rank: Int {
    switch self {
    case .cluster: 0
    case .endpoint: 1
    case .listener: 2
    case .route: 3
    }
  }

  /// CDS and LDS are wildcard subscriptions whose state-of-the-world responses are complete.
  package var isWildcard: Bool { self == .cluster || self == .listener }

  /// The short name used in logs and stats (`cds`, `eds`, `lds`, `rds`).
  package var shortName: String {
    switch self {
    case .cluster: "cds"
    case .endpoint: "eds"
    case .listener: "lds"
    case .route: "rds"
    }
  }
}

/// One update of one resource type, from ADS (either variant) or a watched file: what arrived and what
/// went away. State-of-the-world sources send every resource each time; `stateOfTheWorld` says so, and for
/// CDS and LDS the names not sent are removed.
package struct ResourceUpdate: Sendable {
  package struct Resource: Sendable {
    package var name: String
    package var version: String
    package var resource: Google_Protobuf_Any
    /// What tells an unchanged resource from a changed one: the wire bytes (a control plane encodes
    /// deterministically), or for resources read from JSON/YAML their canonical form.
    package var key: [UInt8]

    package init(name: String, version: String, resource: Google_Protobuf_Any) {
      self.name = name
      self.version = version
      self.resource = resource
      self.key = Array(resource.value)
    }

    /// A resource decoded from JSON or YAML, compared by its canonical form.
    package init(name: String, version: String, decodedFromText resource: Google_Protobuf_Any) {
      self.init(name: name, version: version, resource: resource)
      key = resource.deterministicBytes
    }
  }

  package var type: ResourceType
  package var versionInfo: String
  package var resources: [Resource]
  package var removed: [String]
  package var stateOfTheWorld: Bool

  package init(
    type: ResourceType, versionInfo: String, resources: [Resource], removed: [String] = [],
    stateOfTheWorld: Bool
  ) {
    self.type = type
    self.versionInfo = versionInfo
    self.resources = resources
    self.removed = removed
    self.stateOfTheWorld = stateOfTheWorld
  }
}
