import Testing

@testable import ProxyCore

@Suite("Stats store: creation, caching, scopes, counters and gauges")
struct StatsStoreTests {
  @Test func sameNameGivesSameInstance() throws {
    let store = try StatsStore(config: StatsConfig())
    let a = store.counter("cluster.a.upstream_cx_total")
    let b = store.counter("cluster.a.upstream_cx_total")
    #expect(a === b)
    #expect(store.gauge("x") === store.gauge("x"))
    #expect(store.histogram("h") === store.histogram("h"))
    a.inc()
    b.add(4)
    #expect(store.counterValue("cluster.a.upstream_cx_total") == 5)
  }

  @Test func counterGaugeAndHistogramNamespacesAreSeparate() throws {
    let store = try StatsStore(config: StatsConfig())
    store.counter("same").add(3)
    store.gauge("same").set(9)
    #expect(store.counterValue("same") == 3)
    #expect(store.gaugeValue("same") == 9)
    #expect(store.counterValue("missing") == nil)
    #expect(store.gaugeValue("missing") == nil)
  }

  @Test func scopeJoinsWithADot() throws {
    let store = try StatsStore(config: StatsConfig())
    let scope = store.scope("cluster.xds-grpc")
    #expect(scope.counter("upstream_cx_total") === store.counter("cluster.xds-grpc.upstream_cx_total"))
    #expect(scope.gauge("upstream_cx_active") === store.gauge("cluster.xds-grpc.upstream_cx_active"))
    #expect(
      scope.histogram("upstream_cx_length_ms") === store.histogram("cluster.xds-grpc.upstream_cx_length_ms"))
    #expect(
      scope.scope("circuit_breakers").scope("default").gauge("cx_open").name
        == "cluster.xds-grpc.circuit_breakers.default.cx_open")
    // A trailing dot on the prefix is dropped, as Envoy does for scope prefixes.
    #expect(store.scope("tcp.inbound.").counter("x") === store.counter("tcp.inbound.x"))
  }

  @Test func colonsAreSanitizedLikeEnvoy() throws {
    let store = try StatsStore(config: StatsConfig())
    let scoped = store.scope("cluster.outbound|8080||svc:8080").counter("upstream_cx_total")
    #expect(scoped.name == "cluster.outbound|8080||svc_8080.upstream_cx_total")
    #expect(store.counter("cluster.outbound|8080||svc:8080.upstream_cx_total") === scoped)
    #expect(StatsStore.sanitize("a::b") == "a__b")
    #expect(StatsStore.sanitize("a://b") == "a_b")
    #expect(StatsStore.sanitize("a:/b") == "a_b")
    #expect(StatsStore.sanitize("a.\0") == "a._")
  }

  @Test func usedFlags() throws {
    let store = try StatsStore(config: StatsConfig())
    let c = store.counter("c")
    let g = store.gauge("server.state")
    let h = store.histogram("h")
    #expect(!c.used && !g.used && !h.used)
    c.add(0)
    g.set(0)  // pilot-agent needs `server.state: 0` under usedonly
    h.record(3)
    #expect(c.used && g.used && h.used)
    #expect(store.renderText(usedOnly: true).contains("server.state: 0\n"))
  }

  @Test func gaugeArithmetic() throws {
    let store = try StatsStore(config: StatsConfig())
    let g = store.gauge("g")
    g.set(10)
    g.inc()
    g.add(5)
    g.dec()
    g.sub(3)
    #expect(g.value == 12)
  }

  @Test func resetCountersZeroesCountersOnly() throws {
    let store = try StatsStore(config: StatsConfig())
    store.counter("c1").add(5)
    store.counter("c2").inc()
    store.gauge("g").set(7)
    store.resetCounters()
    #expect(store.counterValue("c1") == 0)
    #expect(store.counterValue("c2") == 0)
    #expect(store.gaugeValue("g") == 7)
    // Envoy keeps the used flag, so they still show under usedonly.
    #expect(store.renderText(usedOnly: true) == "c1: 0\nc2: 0\ng: 7\n")
  }

  @Test func concurrentIncrementsAreExact() async throws {
    let store = try StatsStore(config: StatsConfig())
    let tasks = 16
    let perTask = 5_000
    let instances = await withTaskGroup(of: ObjectIdentifier.self) { group in
      for _ in 0..<tasks {
        group.addTask {
          let counter = store.counter("listener.0.0.0.0_15006.downstream_cx_total")
          let gauge = store.gauge("listener.0.0.0.0_15006.downstream_cx_active")
          let histogram = store.histogram("listener.0.0.0.0_15006.downstream_cx_length_ms")
          for _ in 0..<perTask {
            counter.inc()
            gauge.inc()
            histogram.record(1)
            gauge.dec()
          }
          return ObjectIdentifier(counter)
        }
      }
      var ids: Set<ObjectIdentifier> = []
      for await id in group { ids.insert(id) }
      return ids
    }
    #expect(instances.count == 1)
    #expect(store.counterValue("listener.0.0.0.0_15006.downstream_cx_total") == UInt64(tasks * perTask))
    #expect(store.gaugeValue("listener.0.0.0.0_15006.downstream_cx_active") == 0)
    let snapshot = store.histogram("listener.0.0.0.0_15006.downstream_cx_length_ms").snapshot(quantiles: [])
    #expect(snapshot.count == UInt64(tasks * perTask))
  }

  @Test func histogramBucketSettingsFirstMatchWins() throws {
    var config = StatsConfig()
    config.histogramBuckets = [1, 2]
    config.histogramBucketSettings = [
      .init(match: try StringMatcher(.prefix("cluster.")), buckets: [100, 10]),
      .init(match: try StringMatcher(.suffix("_ms")), buckets: [5]),
    ]
    let store = try StatsStore(config: config)
    #expect(store.histogram("cluster.a.upstream_cx_length_ms").snapshot(quantiles: []).bounds == [10, 100])
    #expect(store.histogram("listener.x.downstream_cx_length_ms").snapshot(quantiles: []).bounds == [5])
    #expect(store.histogram("server.other").snapshot(quantiles: []).bounds == [1, 2])
    config.histogramBucketSettings = [.init(match: try StringMatcher(.exact("x")), buckets: [])]
    #expect(throws: StatsConfigError.self) { try StatsStore(config: config) }
  }

  @Test func badHistogramBucketsAreRejected() {
    var config = StatsConfig()
    config.histogramBuckets = []
    #expect(throws: StatsConfigError.self) { try StatsStore(config: config) }
    config.histogramBuckets = [1, -2]
    #expect(throws: StatsConfigError.self) { try StatsStore(config: config) }
    config.histogramBuckets = [10, 1, 10]
    #expect((try? StatsStore(config: config))?.histogramBuckets == [1, 10])
  }
}

@Suite("Histogram bins and quantiles")
struct StatsHistogramTests {
  @Test func binsHaveTwoSignificantDigits() {
    func bin(_ v: Double) -> (Double, Double) {
      let b = LogLinearBins.bin(for: v)
      return (b.lower, b.width)
    }
    #expect(bin(1) == (1, 0.1))
    #expect(bin(1234) == (1200, 100))
    #expect(bin(99.99) == (99, 1))
    #expect(bin(100) == (100, 10))
    #expect(bin(0.3) == (0.3, 0.01))
    #expect(bin(0) == (0, 0))
    #expect(bin(-5) == (0, 0))
  }

  @Test func quantilesInterpolateInsideTheBin() {
    var bins = LogLinearBins()
    for v in [1.0, 2, 3, 4] { bins.insert(v) }
    let q = bins.quantiles([0, 0.25, 0.5, 1])
    #expect(q[0] == 1)
    #expect(abs(q[1] - 1.1) < 1e-9)
    #expect(abs(q[2] - 2.1) < 1e-9)
    #expect(abs(q[3] - 4.1) < 1e-9)
    #expect(LogLinearBins().quantiles([0.5])[0].isNaN)
  }

  @Test func insertionOrderAndMergingDoNotChangeQuantiles() {
    let values: [Double] = [250, 0.5, 12, 0, 3.3, 12.4, 0.5, 9999, 1, 47, 3.31, 0.02]
    var ascending = LogLinearBins()
    for v in values.sorted() { ascending.insert(v) }
    var shuffled = LogLinearBins()
    for v in values.reversed() { shuffled.insert(v) }
    var merged = LogLinearBins()
    var half = LogLinearBins()
    for (i, v) in values.enumerated() {
      if i % 2 == 0 { merged.insert(v) } else { half.insert(v) }
    }
    merged.merge(half)
    let qs = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1]
    #expect(shuffled == ascending)
    #expect(merged == ascending)
    #expect(ascending.total == UInt64(values.count))
    // The median falls in the bin of the 6th and 7th smallest values, 3.3 and 3.31: [3.3, 3.4).
    let median = ascending.quantiles([0.5])[0]
    #expect(median >= 3.3 && median < 3.4)
    #expect(shuffled.quantiles(qs) == ascending.quantiles(qs))
  }

  @Test func intervalIsTheLastClosedInterval() throws {
    let store = try StatsStore(config: StatsConfig())
    let h = store.histogram("h")
    h.record(10)
    var s = h.snapshot(quantiles: [0])
    #expect(s.intervalQuantiles[0].isNaN)
    #expect(s.cumulativeQuantiles[0] == 10)
    store.mergeHistograms()
    h.record(20)
    s = h.snapshot(quantiles: [0, 1])
    #expect(s.intervalQuantiles[0] == 10)
    #expect(s.cumulativeQuantiles == [10, 21])
    store.mergeHistograms()
    store.mergeHistograms()
    s = h.snapshot(quantiles: [0])
    #expect(s.intervalQuantiles[0].isNaN)
    #expect(s.count == 2 && s.sum == 30)
  }

  @Test func bucketCountsAreCumulativeAndInclusive() throws {
    var config = StatsConfig()
    config.histogramBuckets = [1, 10, 100]
    let store = try StatsStore(config: config)
    let h = store.histogram("h")
    for v in [0.5, 1, 5, 10, 50, 500] { h.record(v) }
    let s = h.snapshot(quantiles: [])
    #expect(s.cumulativeBuckets == [2, 4, 5])
    #expect(s.count == 6)
    #expect(s.sum == 566.5)
  }
}
