import Testing

@testable import ProxyCore

private func tags(_ pairs: KeyValuePairs<String, String>) -> [StatTag] {
  pairs.map { StatTag(name: $0.key, value: $0.value) }
}

@Suite("Tag extraction")
struct StatsTagExtractionTests {
  static let defaultCases: [(String, String, [StatTag])] = [
    (
      "cluster.xds-grpc.upstream_rq_200", "cluster.upstream_rq",
      tags(["envoy.response_code": "200", "envoy.cluster_name": "xds-grpc"])
    ),
    (
      "cluster.xds-grpc.upstream_rq_2xx", "cluster.upstream_rq_xx",
      tags(["envoy.response_code_class": "2", "envoy.cluster_name": "xds-grpc"])
    ),
    (
      "cluster.xds-grpc.upstream_cx_total", "cluster.upstream_cx_total",
      tags(["envoy.cluster_name": "xds-grpc"])
    ),
    ("cluster_manager.cds.update_success", "cluster_manager.cds.update_success", []),
    ("server.state", "server.state", []),
    (
      "http.ingress_http.downstream_rq_total", "http.downstream_rq_total",
      tags(["envoy.http_conn_manager_prefix": "ingress_http"])
    ),
    (
      "listener.0.0.0.0_15006.downstream_cx_total", "listener.downstream_cx_total",
      tags(["envoy.listener_address": "0.0.0.0_15006"])
    ),
    (
      "listener.[__1]_8080.downstream_cx_total", "listener.downstream_cx_total",
      tags(["envoy.listener_address": "[__1]_8080"])
    ),
    ("listener.admin.downstream_cx_total", "listener.admin.downstream_cx_total", []),
    (
      "listener.0.0.0.0_80.http.ingress.downstream_rq_2xx", "listener.http.downstream_rq_xx",
      tags([
        "envoy.response_code_class": "2", "envoy.http_conn_manager_prefix": "ingress",
        "envoy.listener_address": "0.0.0.0_80",
      ])
    ),
    (
      // Envoy's worker regex removes only the number: `envoy_listener_worker_downstream_cx_total`.
      "listener.0.0.0.0_80.worker_3.downstream_cx_total", "listener.worker_downstream_cx_total",
      tags(["envoy.worker_id": "3", "envoy.listener_address": "0.0.0.0_80"])
    ),
    (
      "listener_manager.worker_0.dispatcher.loop_duration_us",
      "listener_manager.worker_dispatcher.loop_duration_us",
      tags(["envoy.worker_id": "0"])
    ),
    (
      "tcp.inbound_9080.downstream_cx_total", "tcp.downstream_cx_total",
      tags(["envoy.tcp_prefix": "inbound_9080"])
    ),
    (
      "vhost.example.vcluster.other.upstream_rq_time", "vhost.vcluster.upstream_rq_time",
      tags(["envoy.virtual_cluster": "other", "envoy.virtual_host": "example"])
    ),
    (
      "http.ingress.rds.my.route.cfg.update_success", "http.rds.update_success",
      tags(["envoy.rds_route_config": "my.route.cfg", "envoy.http_conn_manager_prefix": "ingress"])
    ),
    (
      "cluster.xds-grpc.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256", "cluster.ssl.ciphers",
      tags(["cipher_suite": "ECDHE-RSA-AES128-GCM-SHA256", "envoy.cluster_name": "xds-grpc"])
    ),
    // Default regexes stop at the first dot: why Istio brings its own.
    (
      "cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_cx_total",
      "cluster.default.svc.cluster.local.upstream_cx_total",
      tags(["envoy.cluster_name": "outbound|9080||reviews"])
    ),
  ]

  @Test(arguments: defaultCases)
  func defaultExtractors(name: String, extracted: String, expected: [StatTag]) throws {
    let producer = try TagProducer(config: StatsConfig())
    let identity = producer.identity(of: name)
    #expect(identity.tagExtractedName == extracted)
    #expect(identity.tags == expected)
  }

  /// Istio's bootstrap: `use_all_default_tags: false` and its own regexes, tag names without a prefix.
  static var istioConfig: StatsConfig {
    var config = StatsConfig()
    config.useAllDefaultTags = false
    config.tagSpecifiers = [
      .init(name: "cluster_name", value: .regex(#"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"#)),
      .init(name: "tcp_prefix", value: .regex(#"^tcp\.((.*?)\.)\w+?$"#)),
      .init(name: "response_code", value: .regex(#"_rq(_(\d{3}))$"#)),
      .init(name: "response_code_class", value: .regex(#"_rq(_(\dxx))$"#)),
      .init(
        name: "listener_address",
        value: .regex(#"^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"#)),
    ]
    return config
  }

  static let istioCases: [(String, String, [StatTag])] = [
    (
      "cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_200", "cluster.upstream_rq",
      tags(["response_code": "200", "cluster_name": "outbound|9080||reviews.default.svc.cluster.local"])
    ),
    (
      "cluster.outbound|80||foo.ns.svc.cluster.local.upstream_rq_5xx", "cluster.upstream_rq",
      tags(["response_code_class": "5xx", "cluster_name": "outbound|80||foo.ns.svc.cluster.local"])
    ),
    ("cluster.xds-grpc.upstream_cx_total", "cluster.upstream_cx_total", tags(["cluster_name": "xds-grpc"])),
    ("tcp.inbound_9080.downstream_cx_total", "tcp.downstream_cx_total", tags(["tcp_prefix": "inbound_9080"])),
    (
      "listener.0.0.0.0_15006.downstream_cx_total", "listener.downstream_cx_total",
      tags(["listener_address": "0.0.0.0_15006"])
    ),
    ("http.inbound_0.0.0.0_8080.downstream_rq_total", "http.inbound_0.0.0.0_8080.downstream_rq_total", []),
  ]

  @Test(arguments: istioCases)
  func istioSpecifiers(name: String, extracted: String, expected: [StatTag]) throws {
    let producer = try TagProducer(config: Self.istioConfig)
    let identity = producer.identity(of: name)
    #expect(identity.tagExtractedName == extracted)
    #expect(identity.tags == expected)
  }

  /// Istio's `;`-delimited stat prefixes (`DelimitedStatsPrefix`) with regexes that run up to the `;`.
  @Test func istioDelimitedPrefixes() throws {
    var config = StatsConfig()
    config.useAllDefaultTags = false
    config.tagSpecifiers = [
      .init(name: "cluster_name", value: .regex(#"^cluster(\.(.+);)"#)),
      .init(name: "http_conn_manager_prefix", value: .regex(#"^http(\.(.+);)"#)),
      .init(name: "response_code", value: .regex(#"_rq(_(\d{3}))$"#)),
    ]
    let producer = try TagProducer(config: config)
    let cluster = producer.identity(
      of: "cluster.outbound|9080||reviews.default.svc.cluster.local;.upstream_rq_503")
    #expect(cluster.tagExtractedName == "cluster.upstream_rq")
    #expect(
      cluster.tags
        == tags(["cluster_name": "outbound|9080||reviews.default.svc.cluster.local", "response_code": "503"]))
    let http = producer.identity(of: "http.inbound_0.0.0.0_8080;.downstream_rq_total")
    #expect(http.tagExtractedName == "http.downstream_rq_total")
    #expect(http.tags == tags(["http_conn_manager_prefix": "inbound_0.0.0.0_8080"]))
  }

  @Test func fixedValueIsAddedToEveryStatAndRemovesNothing() throws {
    var config = StatsConfig()
    config.tagSpecifiers = [.init(name: "mesh", value: .fixedValue("m1"))]
    let producer = try TagProducer(config: config)
    #expect(
      producer.identity(of: "server.live")
        == StatIdentity(name: "server.live", tagExtractedName: "server.live", tags: tags(["mesh": "m1"])))
    // Extractors without a prefix run first (defaults, then configured), then the name's prefix bucket.
    #expect(
      producer.identity(of: "cluster.a.upstream_rq_200").tags
        == tags(["envoy.response_code": "200", "mesh": "m1", "envoy.cluster_name": "a"]))
  }

  @Test func firstMatchingExtractorOfANameWins() throws {
    var config = StatsConfig()
    // Anchored on `cluster\.`: same prefix bucket as the default, registered after it, so the default wins.
    config.tagSpecifiers = [.init(name: "envoy.cluster_name", value: .regex(#"^cluster\.((.+);\.)"#))]
    var identity = try TagProducer(config: config).identity(of: "cluster.a.b;.upstream_cx_total")
    #expect(identity.tags == tags(["envoy.cluster_name": "a"]))
    #expect(identity.tagExtractedName == "cluster.b;.upstream_cx_total")
    // Without a literal prefix it runs before every prefixed extractor, so it wins.
    config.tagSpecifiers = [.init(name: "envoy.cluster_name", value: .regex(#"^cluster(\.(.+);)"#))]
    identity = try TagProducer(config: config).identity(of: "cluster.a.b;.upstream_cx_total")
    #expect(identity.tags == tags(["envoy.cluster_name": "a.b"]))
    #expect(identity.tagExtractedName == "cluster.upstream_cx_total")
  }

  @Test func configuredRegexValueGroupRules() throws {
    var config = StatsConfig()
    config.useAllDefaultTags = false
    config.tagSpecifiers = [
      // One group: removed and used as the value.
      .init(name: "one", value: .regex(#"^a\.(\w+)\."#)),
      // A second group that did not take part gives an empty value (std::regex semantics).
      .init(name: "two", value: .regex(#"(\.z(\d)?)$"#)),
    ]
    let identity = try TagProducer(config: config).identity(of: "a.bc.d.z")
    #expect(identity.tags == tags(["two": "", "one": "bc"]))
    #expect(identity.tagExtractedName == "a..d")
  }

  @Test func emptyRegexSelectsTheDefaultOfThatName() throws {
    var config = StatsConfig()
    config.useAllDefaultTags = false
    config.tagSpecifiers = [.init(name: "envoy.cluster_name", value: .regex(""))]
    let identity = try TagProducer(config: config).identity(of: "cluster.a.upstream_rq_200")
    #expect(identity.tags == tags(["envoy.cluster_name": "a"]))
    #expect(identity.tagExtractedName == "cluster.upstream_rq_200")
  }

  @Test func regexPrefixFollowsEnvoysRule() {
    #expect(TagExtractor.regexPrefix(#"^cluster\.((.+?)\.)"#) == "cluster")
    #expect(TagExtractor.regexPrefix(#"^listener(?=\.).*?\.http\."#) == "listener")
    #expect(TagExtractor.regexPrefix(#"^cluster(\.(.+);)"#) == "")
    #expect(TagExtractor.regexPrefix(#"^server$"#) == "server")
    #expect(TagExtractor.regexPrefix(#"_rq(_(\d{3}))$"#) == "")
    #expect(TagExtractor.regexPrefix(#"^(?:listener|server)\."#) == "")
  }

  @Test func badSpecifiersThrowNamingTheTag() {
    var config = StatsConfig()
    config.tagSpecifiers = [.init(name: "cluster_name", value: .regex("^cluster(\\.(.+);"))]
    do {
      _ = try StatsStore(config: config)
      Issue.record("expected a throw")
    } catch {
      #expect(error.code == .invalidRegex)
      #expect(error.description.contains("cluster_name"))
      #expect(error.description.contains("^cluster(\\.(.+);"))
    }
    config.tagSpecifiers = [.init(name: "", value: .regex("x(y)"))]
    #expect(
      throws: StatsConfigError(.invalidTagSpecifier, "stats_tags[0]: tag_name cannot be empty")
    ) {
      try StatsStore(config: config)
    }
    config.tagSpecifiers = [.init(name: "nope", value: .regex(""))]
    #expect(throws: StatsConfigError.self) { try StatsStore(config: config) }
  }

  @Test func storeRecordsIdentityOnce() throws {
    let store = try StatsStore(config: Self.istioConfig)
    _ = store.counter("cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_200")
    let identity = store.identity(
      of: "cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_200")
    #expect(identity?.tagExtractedName == "cluster.upstream_rq")
  }
}
