import NIOCore
import Testing

@testable import ProxyCore

@Suite("Load balancing policies")
struct LoadBalancerTests {
  func hosts(_ weights: [Int], healthy: [Bool]? = nil) throws -> [UpstreamHost] {
    try weights.enumerated().map { i, weight in
      var endpoint = Cluster.Endpoint(
        address: .socket(try SocketAddress(ipAddress: "10.0.0.\(i + 1)", port: 80)))
      endpoint.weight = weight
      endpoint.healthy = healthy?[i] ?? true
      return UpstreamHost(endpoint: endpoint)
    }
  }

  func tally(_ policy: LoadBalancingPolicy, _ hosts: [UpstreamHost], picks: Int = 3000) -> [Int] {
    let balancer = LoadBalancer(policy: policy)
    let set = HostSet(hosts)
    var counts = [Int](repeating: 0, count: hosts.count)
    for _ in 0..<picks {
      let host = balancer.pick(from: set)!
      counts[hosts.firstIndex { $0 === host }!] += 1
    }
    return counts
  }

  @Test func roundRobinIsExactForEqualWeights() throws {
    #expect(tally(.roundRobin, try hosts([1, 1, 1])) == [1000, 1000, 1000])
  }

  @Test func weightsAreHonoured() throws {
    #expect(tally(.roundRobin, try hosts([1, 2, 3]), picks: 600) == [100, 200, 300])
    let random = tally(.random, try hosts([1, 3]), picks: 4000)
    #expect((800...1200).contains(random[0]), "\(random)")
  }

  @Test func leastRequestPrefersIdleHosts() throws {
    let all = try hosts([1, 1, 1, 1])
    all[0].requestsActive.store(50, ordering: .relaxed)
    all[1].requestsActive.store(50, ordering: .relaxed)
    let counts = tally(.leastRequest(choiceCount: 2), all, picks: 2000)
    // Two random choices: a busy host wins only when both choices are busy (1/4 of the time).
    #expect(counts[0] + counts[1] < 700, "\(counts)")
    #expect(counts[2] + counts[3] > 1300, "\(counts)")
  }

  @Test func unhealthyHostsAreSkippedUntilPanic() throws {
    #expect(
      tally(.roundRobin, try hosts([1, 1, 1], healthy: [true, false, true]), picks: 300) == [150, 0, 150])
    // Fewer than half healthy: Envoy's panic mode balances over all hosts.
    #expect(
      tally(.roundRobin, try hosts([1, 1, 1], healthy: [true, false, false]), picks: 300) == [100, 100, 100])
    #expect(LoadBalancer(policy: .roundRobin).pick(from: HostSet([])) == nil)
  }
}
