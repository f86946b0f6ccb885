import Testing

@testable import ProxyCore

@Suite("StringMatcher and the stats matcher")
struct StatsMatcherTests {
  @Test(arguments: [
    (StringMatcher.Pattern.exact("cluster.a"), false, "cluster.a", true),
    (.exact("cluster.a"), false, "Cluster.A", false),
    (.exact("cluster.a"), true, "Cluster.A", true),
    (.exact("cluster.a"), false, "cluster.ab", false),
    (.prefix("cluster."), false, "cluster.a.x", true),
    (.prefix("cluster."), false, "CLUSTER.a.x", false),
    (.prefix("cluster."), true, "CLUSTER.a.x", true),
    (.prefix("cluster."), false, "cluster_manager.x", false),
    (.suffix("_total"), false, "a.cx_total", true),
    (.suffix("_total"), true, "a.cx_TOTAL", true),
    (.suffix("_total"), false, "total", false),
    (.contains("upstream"), false, "cluster.a.upstream_cx", true),
    (.contains("upstream"), false, "cluster.a.UPSTREAM_cx", false),
    (.contains("upstream"), true, "cluster.a.UPSTREAM_cx", true),
    (.contains("upstream"), false, "upstrea", false),
    // safe_regex is a full match, and ignore_case does not apply to it (as in Envoy).
    (.safeRegex(#"cluster\.[^.]+\.upstream_rq_\d+"#), false, "cluster.a.upstream_rq_200", true),
    (.safeRegex(#"upstream_rq_\d+"#), false, "cluster.a.upstream_rq_200", false),
    (.safeRegex("cluster.*"), true, "CLUSTER.a", false),
  ])
  func stringMatcher(pattern: StringMatcher.Pattern, ignoreCase: Bool, value: String, expected: Bool) throws {
    let matcher = try StringMatcher(pattern, ignoreCase: ignoreCase)
    #expect(matcher.matches(value) == expected)
  }

  @Test func invalidMatchersThrow() {
    #expect(throws: StatsConfigError.self) { try StringMatcher(.safeRegex("(unclosed")) }
    #expect(throws: StatsConfigError.self) { try StringMatcher(.prefix("")) }
    #expect(throws: StatsConfigError.self) { try StringMatcher(.suffix("")) }
    #expect(throws: StatsConfigError.self) { try StringMatcher(.contains("")) }
    #expect((try? StringMatcher(.exact(""))) != nil)
    do {
      _ = try StringMatcher(.safeRegex("a(b"))
      Issue.record("expected a throw")
    } catch {
      #expect(error.code == .invalidRegex)
      #expect(error.description.contains("a(b"))
    }
  }

  @Test func inclusionListKeepsOnlyMatchingStats() throws {
    var config = StatsConfig()
    config.matcher = .inclusion([
      try StringMatcher(.prefix("cluster_manager.")),
      try StringMatcher(.exact("server.state")),
      try StringMatcher(.safeRegex(#"cluster\.xds-grpc\..*"#)),
    ])
    let store = try StatsStore(config: config)
    store.counter("cluster_manager.cluster_added").inc()
    store.gauge("server.state").set(0)
    store.counter("cluster.xds-grpc.upstream_cx_total").inc()
    let rejected = store.counter("cluster.outbound|80||a.upstream_cx_total")
    rejected.add(5)
    store.gauge("server.live").set(1)
    #expect(store.counterValue("cluster.outbound|80||a.upstream_cx_total") == nil)
    #expect(store.gaugeValue("server.live") == nil)
    #expect(rejected === store.counter("another.rejected"))
    #expect(
      store.renderText(usedOnly: false)
        == "cluster.xds-grpc.upstream_cx_total: 1\ncluster_manager.cluster_added: 1\nserver.state: 0\n")
    #expect(!store.renderPrometheus().contains("outbound"))
  }

  @Test func exclusionListDropsMatchingStats() throws {
    var config = StatsConfig()
    config.matcher = .exclusion([try StringMatcher(.suffix("_ms")), try StringMatcher(.contains("ssl"))])
    let store = try StatsStore(config: config)
    store.histogram("cluster.a.upstream_cx_connect_ms").record(1)
    store.counter("listener.0.0.0.0_443.ssl.handshake").inc()
    store.counter("cluster.a.upstream_cx_total").inc()
    #expect(store.renderText(usedOnly: false) == "cluster.a.upstream_cx_total: 1\n")
  }

  @Test func rejectAllListsNothing() throws {
    var config = StatsConfig()
    config.matcher = .rejectAll
    let store = try StatsStore(config: config)
    store.counter("a").inc()
    store.gauge("b").set(1)
    store.histogram("c").record(1)
    #expect(store.renderText(usedOnly: false) == "")
    #expect(store.renderJSON(usedOnly: false) == #"{"stats":[]}"#)
    #expect(store.renderPrometheus() == "")
  }

  @Test func emptyListIsRejected() {
    var config = StatsConfig()
    config.matcher = .inclusion([])
    #expect(
      throws: StatsConfigError(
        .invalidMatcher, "stats_matcher: the list must have at least one pattern")
    ) {
      try StatsStore(config: config)
    }
  }
}
