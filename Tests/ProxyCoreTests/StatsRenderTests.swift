import Foundation
import TestSupport
import Testing

@testable import ProxyCore

@Suite("Admin output: /stats text and JSON, /stats/prometheus")
struct StatsRenderTests {
  /// A small store: tagged counters, an unused counter, gauges (one set to 0), a used and an unused histogram.
  static func smallStore(buckets: [Double] = [1, 10, 100]) throws -> StatsStore {
    var config = StatsConfig()
    config.histogramBuckets = buckets
    let store = try StatsStore(config: config)
    store.counter("cluster.xds-grpc.upstream_rq_200").add(7)
    store.counter("cluster.xds-grpc.upstream_rq_503").inc()
    store.counter("cluster.xds-grpc.upstream_cx_total").add(3)
    _ = store.counter("listener_manager.listener_added")
    store.gauge("server.state").set(0)
    store.gauge("cluster.xds-grpc.upstream_cx_active").set(2)
    store.histogram("cluster.xds-grpc.upstream_cx_connect_ms").record(1)
    _ = store.histogram("server.initialization_time_ms")
    return store
  }

  @Test func textGolden() throws {
    let store = try Self.smallStore()
    #expect(
      store.renderText() == """
        cluster.xds-grpc.upstream_cx_active: 2
        cluster.xds-grpc.upstream_cx_total: 3
        cluster.xds-grpc.upstream_rq_200: 7
        cluster.xds-grpc.upstream_rq_503: 1
        listener_manager.listener_added: 0
        server.state: 0
        cluster.xds-grpc.upstream_cx_connect_ms: P0(nan,1) P25(nan,1.025) P50(nan,1.05) P75(nan,1.075) \
        P90(nan,1.09) P95(nan,1.095) P99(nan,1.099) P99.5(nan,1.0995) P99.9(nan,1.0999) P100(nan,1.1)
        server.initialization_time_ms: No recorded values

        """)
    store.mergeHistograms()
    store.histogram("cluster.xds-grpc.upstream_cx_connect_ms").record(1)
    #expect(
      store.renderText(usedOnly: true) == """
        cluster.xds-grpc.upstream_cx_active: 2
        cluster.xds-grpc.upstream_cx_total: 3
        cluster.xds-grpc.upstream_rq_200: 7
        cluster.xds-grpc.upstream_rq_503: 1
        server.state: 0
        cluster.xds-grpc.upstream_cx_connect_ms: P0(1,1) P25(1.025,1.025) P50(1.05,1.05) P75(1.075,1.075) \
        P90(1.09,1.09) P95(1.095,1.095) P99(1.099,1.099) P99.5(1.0995,1.0995) P99.9(1.0999,1.0999) P100(1.1,1.1)

        """)
  }

  @Test func textFilterIsAPartialMatchOnTheFullName() throws {
    let store = try Self.smallStore()
    let rq = try StatsStore.compileFilter(#"upstream_rq_\d"#)
    #expect(
      store.renderText(filter: rq)
        == "cluster.xds-grpc.upstream_rq_200: 7\ncluster.xds-grpc.upstream_rq_503: 1\n")
    // The full name still holds the cluster name that tag extraction removes.
    let byCluster = try StatsStore.compileFilter("xds-grpc")
    #expect(store.renderText(usedOnly: true, filter: byCluster).split(separator: "\n").count == 5)
    #expect(store.renderText(filter: try StatsStore.compileFilter("envoy_cluster_name")) == "")
    #expect(
      store.renderText(filter: try StatsStore.compileFilter("^server")).hasPrefix(
        "server.state: 0\nserver.initialization_time_ms: No recorded values\n"))
  }

  @Test func badFilterIsAnError() {
    #expect(throws: StatsConfigError.self) { try StatsStore.compileFilter("(") }
    do {
      _ = try StatsStore.compileFilter("a[")
    } catch {
      #expect(error.code == .invalidRegex)
      #expect(error.description.contains("a["))
    }
  }

  @Test func jsonGolden() throws {
    let store = try Self.smallStore()
    let nulls = Array(repeating: #"{"cumulative":null,"interval":null}"#, count: 10).joined(separator: ",")
    let one = ["1", "1.025", "1.05", "1.075", "1.09", "1.095", "1.099", "1.0995", "1.0999", "1.1"]
      .map { #"{"cumulative":\#($0),"interval":null}"# }.joined(separator: ",")
    let expected =
      #"{"stats":[{"name":"cluster.xds-grpc.upstream_cx_active","value":2},"#
      + #"{"name":"cluster.xds-grpc.upstream_cx_total","value":3},"#
      + #"{"name":"cluster.xds-grpc.upstream_rq_200","value":7},"#
      + #"{"name":"cluster.xds-grpc.upstream_rq_503","value":1},"#
      + #"{"name":"listener_manager.listener_added","value":0},"#
      + #"{"name":"server.state","value":0},"#
      + #"{"histograms":{"supported_quantiles":[0,25,50,75,90,95,99,99.5,99.9,100],"computed_quantiles":["#
      + #"{"name":"cluster.xds-grpc.upstream_cx_connect_ms","values":[\#(one)]},"#
      + #"{"name":"server.initialization_time_ms","values":[\#(nulls)]}]}}]}"#
    let json = store.renderJSON()
    #expect(json == expected)
    // And it is JSON.
    let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
    #expect((parsed?["stats"] as? [Any])?.count == 7)
  }

  @Test func jsonUsedOnlyAndFilter() throws {
    let store = try Self.smallStore()
    #expect(
      store.renderJSON(usedOnly: true, filter: try StatsStore.compileFilter("state|listener"))
        == #"{"stats":[{"name":"server.state","value":0}]}"#)
    store.counter("weird.\"name\"\n").inc()
    #expect(
      store.renderJSON(filter: try StatsStore.compileFilter("weird"))
        == #"{"stats":[{"name":"weird.\"name\"\n","value":1}]}"#)
  }

  @Test func prometheusGolden() throws {
    let store = try Self.smallStore()
    #expect(
      store.renderPrometheus() == #"""
        # TYPE envoy_cluster_upstream_cx_total counter
        envoy_cluster_upstream_cx_total{envoy_cluster_name="xds-grpc"} 3
        # TYPE envoy_cluster_upstream_rq counter
        envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="xds-grpc"} 7
        envoy_cluster_upstream_rq{envoy_response_code="503",envoy_cluster_name="xds-grpc"} 1
        # TYPE envoy_listener_manager_listener_added counter
        envoy_listener_manager_listener_added{} 0
        # TYPE envoy_cluster_upstream_cx_active gauge
        envoy_cluster_upstream_cx_active{envoy_cluster_name="xds-grpc"} 2
        # TYPE envoy_server_state gauge
        envoy_server_state{} 0
        # TYPE envoy_cluster_upstream_cx_connect_ms histogram
        envoy_cluster_upstream_cx_connect_ms_bucket{envoy_cluster_name="xds-grpc",le="1"} 1
        envoy_cluster_upstream_cx_connect_ms_bucket{envoy_cluster_name="xds-grpc",le="10"} 1
        envoy_cluster_upstream_cx_connect_ms_bucket{envoy_cluster_name="xds-grpc",le="100"} 1
        envoy_cluster_upstream_cx_connect_ms_bucket{envoy_cluster_name="xds-grpc",le="+Inf"} 1
        envoy_cluster_upstream_cx_connect_ms_sum{envoy_cluster_name="xds-grpc"} 1
        envoy_cluster_upstream_cx_connect_ms_count{envoy_cluster_name="xds-grpc"} 1
        # TYPE envoy_server_initialization_time_ms histogram
        envoy_server_initialization_time_ms_bucket{le="1"} 0
        envoy_server_initialization_time_ms_bucket{le="10"} 0
        envoy_server_initialization_time_ms_bucket{le="100"} 0
        envoy_server_initialization_time_ms_bucket{le="+Inf"} 0
        envoy_server_initialization_time_ms_sum{} 0
        envoy_server_initialization_time_ms_count{} 0

        """#)
  }

  @Test func prometheusUsedOnlyFilterAndDefaultBuckets() throws {
    let store = try Self.smallStore(buckets: StatsConfig.defaultHistogramBuckets)
    let text = store.renderPrometheus(
      usedOnly: true, filter: try StatsStore.compileFilter("rq_200|connect_ms"))
    let lines = text.split(separator: "\n")
    #expect(lines.first == "# TYPE envoy_cluster_upstream_rq counter")
    #expect(
      lines[1] == #"envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="xds-grpc"} 7"#)
    #expect(lines[2] == "# TYPE envoy_cluster_upstream_cx_connect_ms histogram")
    let les = lines.compactMap { line -> String? in
      guard let r = line.range(of: #"le=""#) else { return nil }
      return String(line[r.upperBound...].prefix { $0 != "\"" })
    }
    #expect(
      les == [
        "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "30000",
        "60000",
        "300000", "600000", "1800000", "3600000", "+Inf",
      ])
    #expect(!text.contains("listener_added") && !text.contains("initialization_time"))
  }

  @Test func prometheusLabelEscapingAndSanitizing() throws {
    var config = StatsConfig()
    config.tagSpecifiers = [.init(name: "my.tag-name", value: .fixedValue("a\"b\\c\nd"))]
    let store = try StatsStore(config: config)
    store.gauge("some-thing.with:colon").set(1)
    #expect(
      store.renderPrometheus() == #"""
        # TYPE envoy_some_thing_with_colon gauge
        envoy_some_thing_with_colon{my_tag_name="a\"b\\c\nd"} 1

        """#)
  }

  @Test func familiesMergeAcrossTagValuesAndSanitizedNames() throws {
    let store = try StatsStore(config: StatsConfig())
    store.counter("cluster.b.upstream_cx_total").inc()
    store.counter("cluster.a.upstream_cx_total").add(2)
    store.counter("tcp.x.downstream_cx_total").inc()
    store.counter("tcp_downstream.cx_total").inc()  // sanitizes to the same metric name as the stat above
    let text = store.renderPrometheus()
    #expect(
      text == """
        # TYPE envoy_cluster_upstream_cx_total counter
        envoy_cluster_upstream_cx_total{envoy_cluster_name="a"} 2
        envoy_cluster_upstream_cx_total{envoy_cluster_name="b"} 1
        # TYPE envoy_tcp_downstream_cx_total counter
        envoy_tcp_downstream_cx_total{envoy_tcp_prefix="x"} 1
        envoy_tcp_downstream_cx_total{} 1

        """)
  }

  /// Both regexes lack a literal prefix, so they run in configuration order.
  @Test func istioStoreRendersDelimitedClusterNames() throws {
    var config = StatsStoreTestsSupport.istioDelimited
    config.histogramBuckets = [1]
    let store = try StatsStore(config: config)
    store.scope("cluster.outbound|9080||reviews.default.svc.cluster.local;").counter("upstream_rq_200").add(3)
    #expect(
      store.renderPrometheus() == """
        # TYPE envoy_cluster_upstream_rq counter
        envoy_cluster_upstream_rq{cluster_name="outbound|9080||reviews.default.svc.cluster.local",response_code="200"} 3

        """)
  }

  static let promtool: String? = [
    "/usr/bin/promtool", "/usr/local/bin/promtool", "/opt/homebrew/bin/promtool",
  ]
  .first { FileManager.default.isExecutableFile(atPath: $0) }

  /// `promtool check metrics` exits 1 on a parse error and 3 on lint findings only (no HELP lines, counters
  /// without `_total` — Envoy's output has both). Skipped only when promtool is not installed.
  static let toolsMandatory =
    TestEnvironment.mandatory

  @Test(
    .enabled(
      if: promtool != nil || toolsMandatory, "promtool not installed (Debian: apt-get install prometheus)"))
  func promtoolAcceptsTheOutput() throws {
    let promtool = try #require(Self.promtool, "promtool is not installed; CI=true makes this test mandatory")
    var config = StatsConfig()
    config.tagSpecifiers = [.init(name: "odd\"tag", value: .fixedValue("v\\\"\n"))]
    let store = try StatsStore(config: config)
    for cluster in ["xds-grpc", "outbound|9080||reviews.default.svc.cluster.local", "inbound|8080||"] {
      let scope = store.scope("cluster.\(cluster)")
      scope.counter("upstream_rq_200").add(5)
      scope.counter("upstream_rq_2xx").add(5)
      scope.counter("upstream_cx_total").inc()
      scope.gauge("upstream_cx_active").set(1)
      scope.histogram("upstream_rq_time").record(12.5)
      scope.histogram("upstream_cx_length_ms").record(0)
    }
    store.gauge("server.state").set(0)
    store.counter("listener.0.0.0.0_15006.downstream_cx_total").inc()
    store.counter("listener.0.0.0.0_15006.worker_0.downstream_cx_total").inc()
    store.counter("http.inbound_0.0.0.0_8080.downstream_rq_5xx").inc()
    _ = store.histogram("server.initialization_time_ms")
    let output = try Self.run(promtool, ["check", "metrics"], stdin: store.renderPrometheus())
    #expect(output.status != 1, "promtool: \(output.text)")
    #expect(!output.text.contains("error"), "promtool: \(output.text)")
  }

  private static func run(_ path: String, _ args: [String], stdin: String) throws -> (
    status: Int32, text: String
  ) {
    let child = try ChildProcess.run(path, args, input: Data(stdin.utf8), timeout: .seconds(60))
    // A signal or a timeout is reported as a status promtool never uses for success.
    return (child.exitStatus ?? 1, child.stdoutText + child.stderrText)
  }
}

enum StatsStoreTestsSupport {
  static var istioDelimited: StatsConfig {
    var config = StatsConfig()
    config.useAllDefaultTags = false
    config.tagSpecifiers = [
      .init(name: "cluster_name", value: .regex(#"^cluster(\.(.+);)"#)),
      .init(name: "response_code", value: .regex(#"_rq(_(\d{3}))$"#)),
    ]
    return config
  }
}
