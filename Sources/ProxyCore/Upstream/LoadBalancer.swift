internal import Synchronization

/// Picks a host from a snapshot of a cluster's hosts. Weights are honoured by every policy; with fewer
/// than half of the hosts healthy the balancer uses all hosts (Envoy's default 50% panic threshold).
struct LoadBalancer: ~Copyable, Sendable {
  let policy: LoadBalancingPolicy
  private let next = Atomic<UInt64>(0)

  init(policy: LoadBalancingPolicy) { self.policy = policy }

  func pick(from hostSet: HostSet) -> UpstreamHost? {
    let candidates = hostSet.healthy.count * 2 < hostSet.all.count ? hostSet.all : hostSet.healthy
    guard !candidates.isEmpty else { return nil }
    if candidates.count == 1 { return candidates[0] }
    let uniform = hostSet.uniformWeights
    switch policy {
    case .roundRobin, .clusterProvided:
      let ticket = next.wrappingAdd(1, ordering: .relaxed).oldValue
      return uniform
        ? candidates[Int(ticket % UInt64(candidates.count))]
        : Self.weighted(candidates, ticket: ticket)
    case .random:
      return uniform
        ? candidates.randomElement() : Self.weighted(candidates, ticket: UInt64.random(in: 0..<UInt64.max))
    case .leastRequest(let choiceCount):
      if uniform {
        var best = candidates.randomElement()!
        for _ in 1..<max(2, choiceCount) {
          let other = candidates.randomElement()!
          if other.load < best.load { best = other }
        }
        return best
      }
      // Envoy's weighted least request: weight divided by (active + 1).
      var best: UpstreamHost?
      var bestScore = -1.0
      for host in candidates {
        let score = Double(host.weight) / Double(host.load + 1)
        if score > bestScore || (score == bestScore && Bool.random()) {
          best = host
          bestScore = score
        }
      }
      return best
    }
  }

  /// The host whose cumulative-weight interval contains `ticket mod total`.
  private static func weighted(_ hosts: [UpstreamHost], ticket: UInt64) -> UpstreamHost {
    let total = hosts.reduce(0) { $0 + UInt64($1.weight) }
    guard total > 0 else { return hosts[Int(ticket % UInt64(hosts.count))] }
    var point = ticket % total
    for host in hosts {
      if point < UInt64(host.weight) { return host }
      point -= UInt64(host.weight)
    }
    return hosts[hosts.count - 1]
  }
}

/// An immutable snapshot of a cluster's hosts, replaced as a whole on every membership change.
struct HostSet: Sendable {
  var all: [UpstreamHost]
  var healthy: [UpstreamHost]
  var uniformWeights: Bool

  init(_ hosts: [UpstreamHost]) {
    // Only the highest priority with hosts is used (priority failover beyond P0 comes with EDS).
    let top = hosts.map(\.priority).min() ?? 0
    let chosen = hosts.filter { $0.priority == top }
    self.all = chosen
    self.healthy = chosen.filter(\.healthy)
    self.uniformWeights = Set(chosen.map(\.weight)).count <= 1
  }

  static let empty = HostSet([])
}
