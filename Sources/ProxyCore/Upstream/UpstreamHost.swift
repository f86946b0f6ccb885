package import NIOCore
package import Synchronization

/// One upstream endpoint of a cluster, shared by every event loop. Counters are relaxed atomics so the
/// data path never takes a lock; `/clusters` reads them.
package final class UpstreamHost: Sendable {
  package let address: UpstreamAddress
  package let weight: Int
  package let priority: Int
  package let hostname: String
  package let region: String
  package let zone: String
  package let subZone: String
  package let healthy: Bool
  /// The endpoint's locality weight and string metadata (transport-socket matching, telemetry).
  package let localityWeight: Int?
  package let metadata: [String: [String: String]]

  package let connectionsActive = Atomic<Int>(0)
  package let connectionsTotal = Atomic<UInt64>(0)
  package let connectFailures = Atomic<UInt64>(0)
  package let requestsActive = Atomic<Int>(0)
  package let requestsTotal = Atomic<UInt64>(0)
  package let requestErrors = Atomic<UInt64>(0)
  package let requestSuccesses = Atomic<UInt64>(0)
  package let requestTimeouts = Atomic<UInt64>(0)

  package init(endpoint: Cluster.Endpoint) {
    self.address = endpoint.address
    self.weight = max(1, endpoint.weight)
    self.priority = endpoint.priority
    self.hostname = endpoint.hostname
    self.region = endpoint.region
    self.zone = endpoint.zone
    self.subZone = endpoint.subZone
    self.healthy = endpoint.healthy
    self.localityWeight = endpoint.localityWeight
    self.metadata = endpoint.metadata
  }

  /// Whether `endpoint` describes this host exactly (an EDS update that repeats it keeps this object, its
  /// stats and its pooled connections).
  package func matches(_ endpoint: Cluster.Endpoint) -> Bool {
    address == endpoint.address && weight == max(1, endpoint.weight) && healthy == endpoint.healthy
      && priority == endpoint.priority && hostname == endpoint.hostname && region == endpoint.region
      && zone == endpoint.zone && subZone == endpoint.subZone && localityWeight == endpoint.localityWeight
      && metadata == endpoint.metadata
  }

  package convenience init(address: UpstreamAddress) {
    self.init(endpoint: Cluster.Endpoint(address: address))
  }

  /// Load for least-request balancing: active requests plus active TCP-proxied connections.
  package var load: Int {
    requestsActive.load(ordering: .relaxed) + connectionsActive.load(ordering: .relaxed)
  }
}
